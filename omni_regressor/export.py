"""Writing trained models for users: the adapter folder, the merged Hub folder, the code they carry, the upload.

    adapter/   LoRA + head (peft), the regressor config, the Hub code and the processor: loads with peft's own API,
               `PeftModel.from_pretrained(AutoModel.from_pretrained(adapter, trust_remote_code=True), adapter)` or
               `AutoPeftModelForSequenceClassification.from_pretrained(adapter, trust_remote_code=True)`
    model/     the base with the LoRA merged, the head, the Hub code (configuration, modeling, processing, pipeline),
               the processor and the model card: `AutoModel` / `pipeline(...)` with `trust_remote_code=True`
"""

import json
import shutil
from pathlib import Path

import configuration_omni_regressor
import modeling_omni_regressor
import pipeline_omni_regressor
import processing_omni_regressor
from configuration_omni_regressor import OmniRegressorConfig

from .model_setup import export_dtype


# The files a saved regressor folder carries besides weights and processor: everything needed to load and score
# (name in the folder -> source). The denoiser keeps one source, `omni_regressor/denoise.py`.
HUB_CODE_FILES = {
    **{Path(module.__file__).name: Path(module.__file__) for module in (
        configuration_omni_regressor, modeling_omni_regressor, processing_omni_regressor, pipeline_omni_regressor)},
    "denoise_omni_regressor.py": Path(__file__).with_name("denoise.py"),
    "app.py": Path(__file__).with_name("space_app.py"),  # the web page: the folder runs as a Gradio Space
}
# What a Space (or a user) installs to run the folder's code: no omni-regressor package.
SPACE_REQUIREMENTS = "torch\ntransformers>=5.24\nav>=18.1\nnumpy\ngradio>=5\nmatplotlib\n"


def install_hub_code(folder, regressor_class_name: str) -> Path:
    """Copies the Hub code into a saved regressor folder and declares its auto classes and pipeline in config.json."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder}: no config.json; save the model or its config first.")
    for name, source in HUB_CODE_FILES.items():
        shutil.copyfile(source, folder / name)
    (folder / "requirements.txt").write_text(SPACE_REQUIREMENTS, encoding="utf-8")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["auto_map"] = {
        "AutoConfig": "configuration_omni_regressor.OmniRegressorConfig",
        "AutoModel": f"modeling_omni_regressor.{regressor_class_name}",
        "AutoModelForSequenceClassification": f"modeling_omni_regressor.{regressor_class_name}",
    }
    config["custom_pipelines"] = {
        pipeline_omni_regressor.PIPELINE_TASK: {
            "impl": "pipeline_omni_regressor.OmniSentimentRegressionPipeline",
            "pt": ["AutoModel"],
            "type": "multimodal",
        }
    }
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def save_adapter_export(trainer, encoder, adapter_dir) -> Path:
    """LoRA + head (peft `modules_to_save`), the regressor config naming the base, the Hub code and the processor.

    The folder is its own base: its config.json is a regressor without weights, which loads the base checkpoint it
    names (`base_model_name_or_path`) with this readout's settings, so peft's loaders find the right head size.
    """
    adapter_dir = Path(adapter_dir).resolve()
    trainer.save_model(adapter_dir)
    encoder.save_pretrained(adapter_dir)
    config_dict = trainer.model.config.to_dict()
    for key in ("quantization_config", "_pre_quantization_dtype", "dtype", "auto_map", "architectures"):
        config_dict.pop(key, None)
    config = OmniRegressorConfig.from_dict(config_dict)
    config.architectures = [type(trainer.model.get_base_model()).__name__]
    config.save_pretrained(adapter_dir)
    install_hub_code(adapter_dir, config.architectures[0])
    adapter_config_path = adapter_dir / "adapter_config.json"
    adapter_config = json.loads(adapter_config_path.read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = str(adapter_dir)
    adapter_config["task_type"] = "SEQ_CLS"  # AutoPeftModelForSequenceClassification -> AutoModelForSequenceClassification
    adapter_config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return adapter_dir


def load_regressor_with_adapter(adapter_dir, dtype=None):
    """An adapter export on its base, unmerged (the same as peft's `PeftModel.from_pretrained` on `AutoModel`)."""
    from peft import PeftModel
    from transformers import AutoModel

    base = AutoModel.from_pretrained(adapter_dir, trust_remote_code=True, dtype=dtype)
    return PeftModel.from_pretrained(base, adapter_dir)


def merged_export(adapter_dir, output_dir):
    """The adapter applied to its base reloaded in bf16 (CUDA) or fp32 (CPU), merged, saved as one regressor.

    Merging into the 4-bit model would re-quantise the merged weights; the full-precision base keeps them exact.
    """
    dtype = export_dtype()
    merged = load_regressor_with_adapter(adapter_dir, dtype=dtype).merge_and_unload()
    merged.config.dtype = dtype
    merged.save_pretrained(output_dir)
    install_hub_code(output_dir, type(merged).__name__)
    return merged


def save_full_model(trainer, encoder, output_dir) -> Path:
    """A fully fine-tuned regressor (no LoRA): the model as trained, with its Hub code and processor."""
    trainer.save_model(output_dir)
    encoder.save_pretrained(output_dir)
    install_hub_code(output_dir, type(trainer.model).__name__)
    return Path(output_dir)


def push_export(export_dir, repo_id: str, token: str | None = None, private: bool | None = None) -> str:
    """Uploads an exported folder (weights, Hub code, processor, card) to the Hub as one commit."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, folder_path=str(export_dir), commit_message="Upload omni-regressor export")
    return str(getattr(commit, "commit_url", commit))
