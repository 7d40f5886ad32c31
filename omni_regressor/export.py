"""Writing trained models for users: the adapter folder, the merged Hub folder, the code they carry, the upload.

    adapter/   LoRA + head (peft, safetensors), the regressor config, the Hub code and the processor: loads with peft's
               own API, `PeftModel.from_pretrained(AutoModel.from_pretrained(adapter, trust_remote_code=True), adapter)`
               (anywhere it is copied) or `AutoPeftModelForSequenceClassification.from_pretrained(repo_id, ...)` from
               its Hub repository `<hub_model_id>-adapter`, which `adapter_config.json` names as its own base
    model/     the base with the LoRA merged, the head, the Hub code (configuration, modeling, processing, pipeline),
               the processor (`AutoProcessor` with `trust_remote_code=True`), `requirements.txt` and the model card:
               `AutoModel` / `pipeline(...)` with `trust_remote_code=True`

No exported file holds a path of the training machine: a base given as a Hub id is named by it, a local base by
`--base_model_id` or else by a placeholder `local:<folder name>` that the card explains (`public_base_name`). No
exported file is a pickle. The web page is not in these folders: `omni-regressor space` writes a Space folder.
"""

import json
import os
import shutil
from pathlib import Path

import configuration_omni_regressor
import modeling_omni_regressor
import pipeline_omni_regressor
import decoding_omni_regressor
import experts_omni_regressor
import processing_omni_regressor
from configuration_omni_regressor import OmniRegressorConfig

from .model_setup import export_dtype
from .requirements import folder_requirements, write_requirements


# The files a saved regressor folder carries besides weights and processor: everything needed to load and score
# (name in the folder -> source). The denoiser keeps one source, `omni_regressor/denoise.py`.
HUB_CODE_FILES = {
    **{Path(module.__file__).name: Path(module.__file__) for module in (
        configuration_omni_regressor, modeling_omni_regressor, experts_omni_regressor, processing_omni_regressor,
        decoding_omni_regressor, pipeline_omni_regressor)},
    "denoise_omni_regressor.py": Path(__file__).with_name("denoise.py"),
}
PROCESSOR_AUTO_CLASS = "processing_omni_regressor.OmniRegressorProcessor"
LOCAL_BASE_PREFIX = modeling_omni_regressor.LOCAL_BASE_PREFIX
# Files a Trainer or peft writes that users need not load (and a pickle, which `weights_only` loading refuses).
NOT_EXPORTED = ("training_args.bin",)


def public_base_name(model_name_or_path, base_model_id: str | None = None) -> str:
    """How an exported file names the base: `--base_model_id`, else the name the user gave when it is not a local
    folder (a Hub id), else `local:<folder name>` (a placeholder that the card explains)."""
    if base_model_id:
        return base_model_id
    if not os.path.exists(str(model_name_or_path)):
        return str(model_name_or_path)
    return f"{LOCAL_BASE_PREFIX}{Path(model_name_or_path).resolve().name}"


def name_base_in_config(folder, base_name: str) -> None:
    """Writes the public base name into a folder's config.json (`base_model_name_or_path`)."""
    config_path = Path(folder) / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_name
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def register_processor(folder) -> None:
    """`AutoProcessor.from_pretrained(folder, trust_remote_code=True)` -> the folder's `OmniRegressorProcessor`
    (without `trust_remote_code`, the backbone's processor as before). Call after the processor is saved."""
    processor_config_path = Path(folder) / "processor_config.json"
    if not processor_config_path.is_file():
        return
    processor_config = json.loads(processor_config_path.read_text(encoding="utf-8"))
    processor_config["auto_map"] = {**processor_config.get("auto_map", {}), "AutoProcessor": PROCESSOR_AUTO_CLASS}
    processor_config_path.write_text(json.dumps(processor_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def install_hub_code(folder, regressor_class_name: str, requirements: bool = True) -> Path:
    """Copies the Hub code into a saved regressor folder, declares its auto classes and pipeline in config.json, its
    processor in processor_config.json, and (`requirements`) writes the `requirements.txt` that runs its code."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder}: no config.json; save the model or its config first.")
    for name, source in HUB_CODE_FILES.items():
        shutil.copyfile(source, folder / name)
    for name in NOT_EXPORTED:
        (folder / name).unlink(missing_ok=True)
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if requirements:
        denoise = (config.get("processing") or {}).get("denoise", "none") != "none"
        write_requirements(folder / "requirements.txt", folder_requirements(denoise))
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
    register_processor(folder)
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
    install_hub_code(adapter_dir, config.architectures[0], requirements=False)
    adapter_config_path = adapter_dir / "adapter_config.json"
    adapter_config = json.loads(adapter_config_path.read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = str(adapter_dir)  # until `publish_adapter` names it publicly
    adapter_config["task_type"] = "SEQ_CLS"  # AutoPeftModelForSequenceClassification -> AutoModelForSequenceClassification
    adapter_config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return adapter_dir


def adapter_repo_id(hub_model_id: str | None) -> str | None:
    """The Hub repository of the adapter: its own repository beside the merged model's (peft's
    `AutoPeftModel...from_pretrained(repo_id)` reads `adapter_config.json` at a repository's root)."""
    return f"{hub_model_id}-adapter" if hub_model_id else None


def publish_adapter(adapter_dir, base_name: str, hub_model_id: str | None = None) -> None:
    """Replaces the training machine's paths in an adapter folder once the merge no longer needs them: its config
    names the base publicly; `adapter_config.json` names the adapter's Hub repository (its own base), or, with no
    Hub id, the same placeholder as the base (load a local copy with `PeftModel.from_pretrained`)."""
    adapter_dir = Path(adapter_dir)
    name_base_in_config(adapter_dir, base_name)
    adapter_config_path = adapter_dir / "adapter_config.json"
    adapter_config = json.loads(adapter_config_path.read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = adapter_repo_id(hub_model_id) or base_name
    adapter_config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_regressor_with_adapter(adapter_dir, dtype=None, base_model_name_or_path=None):
    """An adapter export on its base, unmerged (the same as peft's `PeftModel.from_pretrained` on `AutoModel`);
    `base_model_name_or_path`: where the base is when the folder names it by a placeholder (a local base)."""
    from peft import PeftModel

    from modeling_omni_regressor import OmniSentimentRegressionPreTrainedModel

    # The package's own classes (the folder's config names the backbone's class), never the folder's code.
    base_kwargs = {"base_model_name_or_path": str(base_model_name_or_path)} if base_model_name_or_path else {}
    base = OmniSentimentRegressionPreTrainedModel.from_pretrained(adapter_dir, dtype=dtype, **base_kwargs)
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


def push_run(output_dir, export_dir, hub_model_id: str, token: str | None = None, private: bool | None = None) -> dict:
    """Uploads the merged folder to `hub_model_id` and `adapter/` (when the run wrote one) to `<hub_model_id>-adapter`,
    the repository its `adapter_config.json` names: {"model": commit url, "adapter": commit url}."""
    adapter_dir = Path(output_dir) / "adapter"
    commits = {}
    if Path(export_dir).resolve() != adapter_dir.resolve():
        commits["model"] = push_export(export_dir, hub_model_id, token, private)
    if adapter_dir.is_dir():
        commits["adapter"] = push_export(adapter_dir, adapter_repo_id(hub_model_id), token, private)
    return commits
