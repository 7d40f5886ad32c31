"""`probe --export_best`: the best linear probe as a regressor folder like a trained one (same export code)."""

import json
from pathlib import Path

import torch

from configuration_omni_regressor import OmniRegressorConfig

from .backbones import backbone_of, num_decoder_layers, read_config_dict
from .export import install_hub_code
from .model_setup import export_dtype
from .model_setup import quiet_head_warning

CARD = """---
library_name: transformers
tags: [omni-regressor, sentiment-analysis, linear-probe]
---

# Linear probe on the frozen Thinker of {model}

Layer {layer} (0 = embeddings), {pooling} pooling, a ridge regression (penalty {penalty:g}, chosen on valid) as a
`Linear(H, 1)` head (`head_type="linear"`). No weight of the backbone was trained. Written by
`omni-regressor probe --export_best` on {dataset}; test MAE {MAE:.4f}, Corr {Corr:.4f}.

```python
from transformers import pipeline

sentiment = pipeline("omni-sentiment-regression", model="path/to/this/folder", trust_remote_code=True)
print(sentiment({{"path": "clip.mp4", "transcript": "I really liked this movie."}})["score"])
```
"""


def export_probe(model_name_or_path, probe: dict, best: dict, metadata: dict, score_range, export_dir, dataset_dir) -> Path:
    """The base (or trained regressor) with only the readout layer's decoder layers, the probe's pooling and its ridge
    weights as a linear head (labels in their own units: `label_mean` 0, `label_std` 1), saved in the export dtype with
    the Hub code, the processor and the processing settings the features were computed with."""
    from .export import public_base_name
    from .model_loading import load_processor

    num_layers = num_decoder_layers(model_name_or_path)  # the backbone's, whatever a trained regressor kept of them
    readout = {
        "head_type": "linear", "pooling": best["pooling"],
        "readout_layer": -1 if best["layer"] == num_layers else best["layer"],
        "label_mean": 0.0, "label_std": 1.0, "score_range": tuple(score_range),
        "processing": json.loads(metadata["processing"]), "clamp_predictions": False,
    }
    regressor_class, dtype = backbone_of(model_name_or_path).regressor_class, export_dtype()
    with quiet_head_warning():  # the new head gets the ridge weights below
        model = _load(regressor_class, model_name_or_path, readout, dtype)
    with torch.no_grad():
        model.head.out_proj.weight.copy_(torch.as_tensor(probe["weight"], dtype=dtype)[None, :])  # (1, hidden)
        model.head.out_proj.bias.fill_(probe["bias"])
    model.config.dtype = dtype
    model.config.base_model_name_or_path = public_base_name(model_name_or_path)  # no path of this machine
    export_dir = Path(export_dir)
    model.save_pretrained(export_dir)
    load_processor(model_name_or_path).save_pretrained(export_dir)  # before the Hub code, which registers it
    install_hub_code(export_dir, type(model).__name__)
    card = CARD.format(model=public_base_name(model_name_or_path), dataset=Path(dataset_dir).resolve().name, **best)
    (export_dir / "README.md").write_text(card, encoding="utf-8")
    return export_dir


def _load(regressor_class, model_name_or_path, readout: dict, dtype):
    """A base checkpoint with the readout settings, or a trained regressor with them replacing its own."""
    if read_config_dict(model_name_or_path).get("model_type") == OmniRegressorConfig.model_type:
        config = OmniRegressorConfig.from_pretrained(model_name_or_path)
        for key, value in readout.items():
            setattr(config, key, value)
        config.validate_readout()
        return regressor_class.from_pretrained(model_name_or_path, config=config, dtype=dtype, ignore_mismatched_sizes=True)
    return regressor_class.from_pretrained(model_name_or_path, dtype=dtype, **readout)
