"""Model setup for QLoRA fine-tuning, the Trainer with two learning rates, and the merged export.

`train_with_trainer.py` reads the arguments and calls these in order; the comparison and benchmark commands reuse
`load_backbone_for_training` so that every readout is trained on the same backbone with the same settings.
"""

import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch
from transformers import BitsAndBytesConfig, Trainer, TrainerCallback

from configuration_omni_regressor import OmniRegressorConfig
from modeling_omni_regressor import Qwen2_5OmniForSentimentRegression

from .architectures import lora_config_for

# Towers and the head stay unquantised: several real tower shapes are not valid for the CPU 4-bit kernels, and the
# head is trained in full.
QUANTIZATION_SKIP_MODULES = ["thinker.audio_tower", "thinker.visual", "head", "lm_head"]


def compute_dtype() -> torch.dtype:
    """bf16 where the hardware supports it (CUDA with bf16, or CPU), else fp32."""
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16


def local_device_map():
    """One device map per process: each DDP rank holds its own full (quantised) copy."""
    if torch.cuda.is_available():
        return {"": int(os.environ.get("LOCAL_RANK", 0))}
    return None


def quantization_config_for(quantization: str, skip_modules=QUANTIZATION_SKIP_MODULES) -> BitsAndBytesConfig | None:
    if quantization not in ("4bit", "none"):
        raise ValueError(f"`quantization` must be '4bit' or 'none', got {quantization!r}.")
    if quantization == "none":
        return None
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype(),
        llm_int8_skip_modules=list(skip_modules),
    )


def disable_cpu_bf16_repacking(model: torch.nn.Module) -> int:
    """CPU only: a no-grad eval forward repacks 4-bit weights and breaks the next training step (STACK-NOTES)."""
    import bitsandbytes as bnb

    patched = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            patched += 1
    return patched


def load_kwargs_for(quantization: str, skip_modules=QUANTIZATION_SKIP_MODULES) -> dict:
    """`from_pretrained` keyword arguments: this rank's device map, sdpa, and the 4-bit config when asked."""
    quantization_config = quantization_config_for(quantization, skip_modules)
    load_kwargs = {"device_map": local_device_map(), "attn_implementation": "sdpa"}
    if quantization_config is not None:
        load_kwargs.update(quantization_config=quantization_config, dtype=compute_dtype())
    return load_kwargs


def prepare_for_training(model, quantized: bool, lora_preset: str, lora_overrides: dict | None,
                         gradient_checkpointing: bool, modules_to_save=("head",)):
    """k-bit preparation (or plain checkpointing) then the LoRA preset; shared by both readouts."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    if quantized:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
        if not torch.cuda.is_available():
            disable_cpu_bf16_repacking(model)
    elif gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lora_config = lora_config_for(lora_preset, modules_to_save=modules_to_save, **(lora_overrides or {}))
    return get_peft_model(model, lora_config) if lora_config is not None else model


def load_regressor_for_training(
    model_name_or_path: str,
    quantization: str = "4bit",
    lora_preset: str = "paper",
    lora_overrides: dict | None = None,
    gradient_checkpointing: bool = True,
    **readout_kwargs,
):
    """Regressor (original checkpoint or saved regressor) -> 4-bit/full -> peft LoRA (head in `modules_to_save`)."""
    model = Qwen2_5OmniForSentimentRegression.from_pretrained(
        model_name_or_path, **load_kwargs_for(quantization), **readout_kwargs
    )
    return prepare_for_training(model, quantization != "none", lora_preset, lora_overrides, gradient_checkpointing)


def is_head_parameter(name: str) -> bool:
    return ".head." in f".{name}"


def label_statistics(labels) -> tuple[float, float]:
    """Mean and standard deviation of the training labels (std floored so a constant split still trains)."""
    labels = np.asarray(labels, dtype=np.float64)
    return float(labels.mean()), float(max(labels.std(), 1e-3))


class OmniRegressorTrainer(Trainer):
    """The HF Trainer with one more hook: the head gets its own learning rate (`head_learning_rate`)."""

    def __init__(self, *args, head_learning_rate: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.head_learning_rate = head_learning_rate

    def create_optimizer(self, model=None):
        if self.optimizer is not None or self.head_learning_rate is None:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        decay_parameters = set(self.get_decay_parameter_names(opt_model))
        groups = {}
        for name, parameter in opt_model.named_parameters():
            if not parameter.requires_grad:
                continue
            learning_rate = self.head_learning_rate if is_head_parameter(name) else self.args.learning_rate
            weight_decay = self.args.weight_decay if name in decay_parameters else 0.0
            groups.setdefault((learning_rate, weight_decay), []).append(parameter)
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        self.optimizer = optimizer_cls(
            [{"params": params, "lr": lr, "weight_decay": wd} for (lr, wd), params in groups.items()],
            **optimizer_kwargs,
        )
        return self.optimizer


def peak_memory_bytes() -> int:
    """CUDA max allocated on this rank, or this process's peak RSS on CPU."""
    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


class PeakMemoryCallback(TrainerCallback):
    """Adds peak memory (MB) to every Trainer log line."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None:
            logs["peak_memory_mb"] = round(peak_memory_bytes() / 2**20, 1)


def save_adapter_export(trainer, encoder, adapter_dir) -> Path:
    """LoRA + head (peft `modules_to_save`), the processor and the regressor config (label statistics, processing),
    without quantisation settings: everything needed to rebuild the model on its base (`adapter_config.json` names
    the base)."""
    trainer.save_model(adapter_dir)
    encoder.save_pretrained(adapter_dir)
    config_dict = trainer.model.config.to_dict()
    for key in ("quantization_config", "_pre_quantization_dtype", "dtype", "auto_map"):
        config_dict.pop(key, None)
    OmniRegressorConfig.from_dict(config_dict).save_pretrained(adapter_dir)
    return Path(adapter_dir)


def load_regressor_with_adapter(adapter_dir, dtype=None):
    """An adapter-only export on its base (the one named in `adapter_config.json`), unmerged."""
    from peft import PeftConfig, PeftModel

    base_name = PeftConfig.from_pretrained(adapter_dir).base_model_name_or_path
    config = OmniRegressorConfig.from_pretrained(adapter_dir)
    base = Qwen2_5OmniForSentimentRegression.from_pretrained(base_name, config=config, dtype=dtype)
    return PeftModel.from_pretrained(base, adapter_dir)


def merged_export(adapter_dir, output_dir):
    """The adapter applied to its base reloaded in bf16 (CUDA) or fp32 (CPU), merged, saved as one regressor.

    Merging into the 4-bit model would re-quantise the merged weights; the full-precision base keeps them exact.
    """
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    merged = load_regressor_with_adapter(adapter_dir, dtype=dtype).merge_and_unload()
    merged.config.dtype = dtype
    merged.save_pretrained(output_dir)
    return merged


class BatchTimer(TrainerCallback):
    """Wall-clock time at the end of every batch of a pass (as a Trainer callback: every prediction step).

    `ms_per_clip` leaves the first batch out: it holds the one-off warm-up (kernel selection, first allocations),
    which would otherwise dominate small test sets. With a single batch it is all there is.
    """

    def __init__(self):
        self.start()

    def start(self):
        self.started, self.batch_ends, self.batch_sizes = time.perf_counter(), [], []

    def batch_done(self, size: int):
        self.batch_ends.append(time.perf_counter())
        self.batch_sizes.append(size)

    def on_prediction_step(self, args, state, control, **kwargs):
        self.batch_done(args.per_device_eval_batch_size * max(args.world_size, 1))

    def ms_per_clip(self, num_clips: int) -> float:
        if len(self.batch_ends) < 2:
            return 1000.0 * (self.batch_ends[-1] - self.started) / max(num_clips, 1) if self.batch_ends else float("nan")
        steady_clips = num_clips - self.batch_sizes[0]
        return 1000.0 * (self.batch_ends[-1] - self.batch_ends[0]) / max(steady_clips, 1)


def push_export(export_dir, repo_id: str, token: str | None = None, private: bool | None = None) -> str:
    """Uploads the exported folder (weights, both Hub .py files, processor, card) to the Hub as one commit."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, folder_path=str(export_dir), commit_message="Upload omni-regressor export")
    return str(getattr(commit, "commit_url", commit))


def write_json(path, payload):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, default=float) + "\n")


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
