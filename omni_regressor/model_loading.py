"""Loading a trained regressor for scoring: complete folders only, with this package's own classes.

`check_model_folder(folder)` refuses, in one line, what is not a trained regressor folder (a base checkpoint, an
adapter, a folder without weights or processor files) before anything loads; `load_regressor(folder)` is what
`predict`, `evaluate`, `inspect-inputs` and `SentimentScorer` use:

- **Complete or refused.** Before any weight loads, the tensor names and shapes in the folder's safetensors headers are
  compared with the tensors its config implies (the model built on the meta device, the checkpoint's key mapping
  applied): a missing tensor (the head, a decoder layer), an extra one, a wrong shape or an unreadable weight file is
  one `ModelFolderError` naming the folder and the tensor. (A base checkpoint with a fresh head is for `train` and
  `analyze`, which load through the model class itself.)
- **No code from the folder without consent.** The package's configuration and model classes are registered with
  `AutoConfig` / `AutoModel`, and the folder is loaded with `trust_remote_code=False`, so the `.py` files a folder
  carries are never imported; `trust_remote_code=True` (the commands' `--trust_remote_code`) runs them instead.
"""

import json
import re
from pathlib import Path

PROCESSOR_FILES = ("tokenizer.json", "tokenizer_config.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


class ModelFolderError(ValueError):
    """A `--model` that is not a trained regressor folder, said in one line with what to pass instead."""


def check_model_folder(model_dir) -> None:
    """Refuses, in one line, a folder that is not a trained regressor with its processor (before anything loads).

    Hub ids are not checked here (transformers reports what is missing there).
    """
    folder = Path(model_dir)
    if not folder.exists():
        if "/" in str(model_dir) and not str(model_dir).startswith((".", "/", "~")):
            return  # a Hub id
        raise ModelFolderError(f"{model_dir}: no such folder.")
    if not folder.is_dir():
        raise ModelFolderError(f"{model_dir} is a file; pass the exported model folder (<run>/model).")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelFolderError(f"{model_dir} has no config.json: not a model folder; pass the exported model (<run>/model).")
    try:
        model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as error:
        raise ModelFolderError(f"{config_path} cannot be read ({error}).") from None
    has_weights = any((folder / name).is_file() for name in WEIGHT_FILES)
    if model_type != "omni_regressor":
        raise ModelFolderError(
            f"{model_dir} is a `{model_type}` checkpoint, not a trained sentiment regressor: fine-tune it with "
            f"`omni-regressor train --model_name_or_path {model_dir} ...`, or score it as it is with `omni-regressor zero-shot`."
        )
    if (folder / "adapter_config.json").is_file() and not has_weights:
        raise ModelFolderError(
            f"{model_dir} is an adapter folder (LoRA + head): pass the merged model folder beside it (<run>/model), "
            "or load it with peft (see its README.md)."
        )
    if not has_weights:
        raise ModelFolderError(f"{model_dir} has no weights (model.safetensors): the export is incomplete.")
    missing = [name for name in PROCESSOR_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(
            f"{model_dir} lacks {', '.join(missing)} (the processor files written with the model); copy them from the "
            "base checkpoint the model was trained on, or export the model again."
        )


_registered = False


def register_auto_classes() -> None:
    """`AutoConfig` / `AutoModel` resolve `model_type: omni_regressor` to this package's classes (once per process)."""
    global _registered
    if _registered:
        return
    from transformers import AutoConfig, AutoModel

    from configuration_omni_regressor import OmniRegressorConfig
    from modeling_omni_regressor import Qwen2_5OmniForSentimentRegression

    AutoConfig.register(OmniRegressorConfig.model_type, OmniRegressorConfig, exist_ok=True)
    # One class per config class: the Qwen2.5 one, whose from_pretrained hands a Qwen3 folder to its own class.
    AutoModel.register(OmniRegressorConfig, Qwen2_5OmniForSentimentRegression, exist_ok=True)
    _registered = True


def stored_tensor_shapes(folder: Path) -> dict[str, tuple[int, ...]] | None:
    """Name -> shape of every tensor in the folder's safetensors files (sharded or not), read from the headers only;
    None when the folder holds no safetensors weights."""
    from safetensors import SafetensorError, safe_open

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError) as error:
            raise ModelFolderError(f"{index} cannot be read ({error}); export the model again.") from None
    elif (folder / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        return None
    shapes = {}
    for name in files:
        path = folder / name
        if not path.is_file():
            raise ModelFolderError(f"{folder}: weight file {name} is missing; export the model again.")
        try:
            with safe_open(str(path), framework="pt") as stored:
                for key in stored.keys():
                    shapes[key] = tuple(stored.get_slice(key).get_shape())
        except (SafetensorError, OSError, ValueError) as error:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ModelFolderError(f"{path} is not a readable safetensors file ({detail}); export the model again.") from None
    return shapes


def expected_tensor_shapes(config) -> dict[str, tuple[int, ...]]:
    """The tensors a regressor with `config` holds, from the model built on the meta device (no memory used)."""
    import torch

    from modeling_omni_regressor import REGRESSOR_CLASSES

    model_class = REGRESSOR_CLASSES.get(config.thinker_config.model_type)
    if model_class is None:
        raise ModelFolderError(f"config.json names a `{config.thinker_config.model_type}` Thinker; no regressor class "
                               f"exists for it (known: {', '.join(REGRESSOR_CLASSES)}).")
    with torch.device("meta"):
        model = model_class._from_config(config)
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def check_complete_weights(folder, config) -> None:
    """Refuses, in one line, a folder whose weights are not exactly the tensors its config implies."""
    from modeling_omni_regressor import CHECKPOINT_KEY_MAPPING, REGRESSOR_CLASSES

    folder = Path(folder)
    stored = stored_tensor_shapes(folder)
    if stored is None:
        return  # no safetensors (a .bin checkpoint): transformers' own loading reports it
    regressor_class = REGRESSOR_CLASSES.get(config.thinker_config.model_type)
    key_mapping = getattr(regressor_class, "checkpoint_key_mapping", CHECKPOINT_KEY_MAPPING)  # the class's own layout
    mapped = {}
    for key, shape in stored.items():
        for pattern, replacement in key_mapping.items():
            new_key, count = re.subn(pattern, replacement, key)
            if count:
                key = new_key
                break
        mapped[key] = shape
    expected = expected_tensor_shapes(config)
    missing = [name for name in expected if name not in mapped]
    if missing:
        more = f" (and {len(missing) - 1} more) are" if len(missing) > 1 else " is"
        raise ModelFolderError(f"{folder}: tensor {missing[0]}{more} missing from the weights: the folder is not a "
                               "complete trained regressor; export it again (a base checkpoint is for `train`).")
    wrong = [name for name in expected if mapped[name] != expected[name]]
    if wrong:
        name = wrong[0]
        raise ModelFolderError(f"{folder}: tensor {name} has shape {list(mapped[name])}, config.json implies "
                               f"{list(expected[name])}; the weights and config.json do not belong together.")
    extra = [name for name in mapped if name not in expected]
    if extra:
        raise ModelFolderError(f"{folder}: tensor {extra[0]} in the weights is not part of the model config.json "
                               "describes; the weights and config.json do not belong together.")


def load_config(model_dir, **hub_kwargs):
    """The folder's config with this package's class (no code from the folder runs); an invalid value (e.g. in the
    `processing` block) is one ModelFolderError naming the file."""
    from transformers import AutoConfig

    from processing_omni_regressor import ProcessingSettings

    from .backbones import backbone_for_model_type

    register_auto_classes()
    where = "config.json"
    try:
        config = AutoConfig.from_pretrained(model_dir, **hub_kwargs)
        if getattr(config, "model_type", None) == "omni_regressor":
            where = "config.json, `processing`"
            # the settings every clip is decoded with, checked before use (the official values fill the unset ones)
            spec = backbone_for_model_type(config.thinker_config.model_type)
            ProcessingSettings.from_config(config).resolve_for(image_factor=spec.image_factor,
                                                               extractor_seconds=spec.extractor_seconds).media_settings()
        return config
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelFolderError(f"{Path(model_dir) / 'config.json'}: {detail} ({where}; export the model again or fix "
                               "the value).") from None


def remote_model_class(model_dir):
    """The model class the folder's own code defines (its config's `auto_map["AutoModel"]`), imported from it."""
    from transformers import PretrainedConfig
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    config_dict, _ = PretrainedConfig.get_config_dict(model_dir)
    reference = (config_dict.get("auto_map") or {}).get("AutoModel")
    if reference is None:
        raise ModelFolderError(f"{model_dir}: --trust_remote_code, but config.json names no code (`auto_map`).")
    return get_class_from_dynamic_module(reference, model_dir)


def load_processor(model_name_or_path, trust_remote_code: bool = False):
    """The processor saved with a model (or a base checkpoint), without running code from its folder: the config it
    reads resolves to this package's class."""
    from transformers import AutoProcessor

    register_auto_classes()
    return AutoProcessor.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)


def load_regressor(model_dir, trust_remote_code: bool = False, **model_kwargs):
    """A trained regressor, complete, loaded with this package's classes (see the module docstring)."""
    from transformers import AutoModel

    config = load_config(model_dir)
    if Path(model_dir).is_dir():
        check_complete_weights(model_dir, config)
    try:
        if trust_remote_code:  # asked for: the folder's own classes (Auto classes would keep this package's)
            return remote_model_class(model_dir).from_pretrained(model_dir, **model_kwargs)
        return AutoModel.from_pretrained(model_dir, config=config, **model_kwargs)
    except (OSError, ValueError, RuntimeError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelFolderError(f"{model_dir}: the model cannot be loaded ({detail}).") from None
