"""Model setup for fine-tuning, shared by every readout: 4-bit loading, k-bit preparation and the LoRA presets.

    load_kwargs_for(...)   -> `from_pretrained` keyword arguments (this rank's device, sdpa, NF4 config)
    prepare_for_training() -> frozen base, checkpointing, LoRA (peft) with the readout's fully trained modules

The unquantised towers and embeddings stay in their load dtype (bf16) during QLoRA: peft's
`prepare_model_for_kbit_training` would cast them (~1.9 B parameters at 7B) to fp32, about +3.7 GB, for nothing a
frozen weight needs; `upcast_frozen_weights=True` asks for that behaviour.
"""

import contextlib
import logging
import os

import torch
from transformers import BitsAndBytesConfig

LORA_DEFAULTS = {"r": 32, "alpha": 32, "dropout": 0.1}


def compute_dtype() -> torch.dtype:
    """bf16 where the hardware supports it (CUDA with bf16, or CPU), else fp32."""
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16


def export_dtype() -> torch.dtype:
    """The dtype a merged export is written in: bf16 on CUDA, fp32 on CPU."""
    return torch.bfloat16 if torch.cuda.is_available() else torch.float32


def local_device_map():
    """One device map per process: each DDP rank holds its own full (quantised) copy."""
    if torch.cuda.is_available():
        return {"": int(os.environ.get("LOCAL_RANK", 0))}
    return None


def quantization_config_for(quantization: str, skip_modules) -> BitsAndBytesConfig | None:
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


def load_kwargs_for(quantization: str, skip_modules) -> dict:
    """`from_pretrained` keyword arguments: this rank's device map, sdpa, and the 4-bit config when asked."""
    quantization_config = quantization_config_for(quantization, skip_modules)
    load_kwargs = {"device_map": local_device_map(), "attn_implementation": "sdpa"}
    if quantization_config is not None:
        load_kwargs.update(quantization_config=quantization_config, dtype=compute_dtype())
    return load_kwargs


def disable_cpu_bf16_repacking(model: torch.nn.Module) -> int:
    """CPU only: a no-grad eval forward repacks 4-bit weights and breaks the next training step (STACK-NOTES)."""
    import bitsandbytes as bnb

    patched = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            patched += 1
    return patched


def lora_config_for(backbone, preset: str, r=None, alpha=None, dropout=None, target_modules=None, modules_to_save=None):
    """A peft `LoraConfig` for a backbone's preset, or None for `none` (full fine-tuning).

    `modules_to_save` are trained in full and saved with the adapter (the regression head); the generative readout
    has none.
    """
    from peft import LoraConfig

    if preset == "none":
        return None
    return LoraConfig(
        r=r if r is not None else LORA_DEFAULTS["r"],
        lora_alpha=alpha if alpha is not None else LORA_DEFAULTS["alpha"],
        lora_dropout=dropout if dropout is not None else LORA_DEFAULTS["dropout"],
        target_modules=target_modules if target_modules is not None else backbone.lora_target_modules(preset),
        modules_to_save=list(modules_to_save) if modules_to_save else None,
        bias="none",
    )


def prepare_for_training(model, quantized: bool, lora_config, gradient_checkpointing: bool,
                         upcast_frozen_weights: bool = False, fp32_modules=()):
    """Frozen base (the towers and embeddings keep their dtype), checkpointing, then LoRA.

    `fp32_modules`: names of submodules trained in full that are cast to fp32 first (the regression head).
    """
    from peft import get_peft_model, prepare_model_for_kbit_training

    if quantized and upcast_frozen_weights:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    else:
        if quantized:
            for parameter in model.parameters():
                parameter.requires_grad_(False)
        if gradient_checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
    for name in fp32_modules:
        model.get_submodule(name).float()
    if quantized and not torch.cuda.is_available():
        disable_cpu_bf16_repacking(model)
    return get_peft_model(model, lora_config) if lora_config is not None else model


@contextlib.contextmanager
def quiet_head_warning():
    """While a base checkpoint is loaded where a new head is the point (training, the probe), the modeling file's
    "a new regression head was initialised" line says nothing the user can act on: it is held back."""
    modeling_logger = logging.getLogger("modeling_omni_regressor")
    level = modeling_logger.level
    modeling_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        modeling_logger.setLevel(level)
