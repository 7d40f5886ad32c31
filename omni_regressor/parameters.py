"""Parameter counts and weight memory of a regressor, at any preset shape, on the meta device (no memory, no download).

    omni-regressor params --arch 7b --lora_preset paper --memory

The model goes through exactly the preparation a training run applies — 4-bit replacement of the same linears
(`replace_with_bnb_linear`, transformers' own), the frozen-weight dtypes of `prepare_for_training`, the LoRA preset —
and its weights are counted by part.
"""

import math

import torch

from configuration_omni_regressor import OmniRegressorConfig

from .backbones import architecture
from .model_setup import compute_dtype, lora_config_for, prepare_for_training, quantization_config_for

MEMORY_PARTS = ("language_model", "audio_tower", "visual", "embeddings", "lora", "head")
NF4_BLOCK = 64  # weights per absmax block
NESTED_BLOCK = 256  # absmax values per second-level block (double quantisation)


def count_parameters(model: torch.nn.Module) -> dict:
    """Total and trainable parameters. 4-bit weights count by their logical size; the frozen copy of the head that
    peft keeps beside `modules_to_save` is not counted (it is the same weight before training)."""
    total = trainable = lora = head = 0
    for name, parameter in model.named_parameters():
        if "original_module" in name:
            continue
        count = _logical_numel(parameter)
        total += count
        if parameter.requires_grad:
            trainable += count
        if "lora_" in name:
            lora += count
        elif ".head." in f".{name}":
            head += count
    return {
        "total_params": total,
        "trainable_params": trainable,
        "trainable_percent": round(100.0 * trainable / total, 4) if total else 0.0,
        "lora_params": lora,
        "head_params": head,
    }


def _logical_numel(parameter) -> int:
    quant_state = getattr(parameter, "quant_state", None)
    if quant_state is not None:  # bitsandbytes Params4bit: two values per stored byte
        return torch.Size(quant_state.shape).numel()
    logical_shape = getattr(parameter, "_logical_shape", None)
    return torch.Size(logical_shape).numel() if logical_shape is not None else parameter.numel()


def nf4_bytes(numel: int) -> int:
    """Bytes of an NF4 weight with double quantisation: 4 bits per weight, an 8-bit absmax per 64 weights, an fp32
    scale per 256 absmax values (bitsandbytes' layout)."""
    blocks = math.ceil(numel / NF4_BLOCK)
    return numel // 2 + blocks + 4 * math.ceil(blocks / NESTED_BLOCK)


def memory_part(name: str) -> str:
    if "lora_" in name:
        return "lora"
    if ".head." in f".{name}":
        return "head"
    if ".audio_tower." in f".{name}":
        return "audio_tower"
    if ".visual." in f".{name}":
        return "visual"
    if "embed_tokens" in name:
        return "embeddings"
    return "language_model"


def weight_memory(model: torch.nn.Module) -> dict:
    """Bytes and dtypes of the weights, by part (`MEMORY_PARTS`); 4-bit linears count as NF4 with their scales."""
    import bitsandbytes as bnb

    quantized = {}
    for module_name, module in model.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            quantized[f"{module_name}.weight"] = module.in_features * module.out_features
    parts = {part: {"bytes": 0, "params": 0, "dtypes": set()} for part in MEMORY_PARTS}
    for name, parameter in model.named_parameters():
        if "original_module" in name:
            continue
        part = parts[memory_part(name)]
        if name in quantized:
            part["bytes"] += nf4_bytes(quantized[name])
            part["params"] += quantized[name]
            part["dtypes"].add("nf4")
        else:
            part["bytes"] += parameter.numel() * parameter.element_size()
            part["params"] += parameter.numel()
            part["dtypes"].add(str(parameter.dtype).removeprefix("torch."))
    report = {
        part: {"bytes": values["bytes"], "gb": round(values["bytes"] / 1e9, 3), "params": values["params"],
               "dtype": "+".join(sorted(values["dtypes"])) or "-"}
        for part, values in parts.items()
    }
    return {"weight_bytes_total": sum(values["bytes"] for values in report.values()), "memory": report}


def build_prepared_on_meta(arch: str, lora_preset: str, quantization: str = "4bit", head_hidden_size: int = 256,
                           upcast_frozen_weights: bool = False):
    """The regressor of `arch` on the meta device, prepared as for training (4-bit, frozen dtypes, LoRA)."""
    from transformers.integrations.bitsandbytes import replace_with_bnb_linear

    backbone, preset = architecture(arch)
    config = OmniRegressorConfig(thinker_config=backbone.thinker_config(preset), head_hidden_size=head_hidden_size)
    with torch.device("meta"):
        model = backbone.regressor_class(config)
    quantized = quantization == "4bit"
    if quantized:
        model.to(compute_dtype())  # the load dtype of a 4-bit run
        replace_with_bnb_linear(
            model,
            modules_to_not_convert=backbone.regressor_skip_modules(),
            quantization_config=quantization_config_for(quantization, backbone.regressor_skip_modules()),
        )
        for module in model.modules():  # new 4-bit linears: the bias in the load dtype, as a real 4-bit load has it
            if getattr(module, "bias", None) is not None and module.bias.dtype != compute_dtype():
                module.bias.data = module.bias.data.to(compute_dtype())
        model.is_loaded_in_4bit = True
    lora_config = lora_config_for(backbone, lora_preset, modules_to_save=["head"])
    model = prepare_for_training(
        model, quantized=quantized, lora_config=lora_config, gradient_checkpointing=False,
        upcast_frozen_weights=upcast_frozen_weights, fp32_modules=["head"],
    )
    return backbone, model


def params_report(arch: str, lora_preset: str, head_hidden_size: int = 256, memory: bool = False,
                  quantization: str = "4bit", upcast_frozen_weights: bool = False) -> dict:
    """Counts (and with `memory`, the weight bytes by part) of the regressor of `arch` with a LoRA preset."""
    backbone, model = build_prepared_on_meta(
        arch, lora_preset, quantization if memory else "none", head_hidden_size, upcast_frozen_weights
    )
    report = {"arch": arch, "backbone": backbone.name, "lora_preset": lora_preset, **count_parameters(model)}
    if memory:
        report.update(quantization=quantization, **weight_memory(model))
    return report
