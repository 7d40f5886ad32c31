"""Named Thinker shapes (`tiny`, `3b`, `7b`), LoRA presets and the parameter report.

The 7B and 3B values are those of the public Qwen2.5-Omni checkpoints' `thinker_config` (7B checked against
../shared/STACK-NOTES.md; never build the 7B shape from bare `Qwen2_5OmniThinkerConfig` defaults, whose vision
encoder width is not the checkpoint's).
"""

import json
import torch
from transformers.models.qwen2_5_omni.configuration_qwen2_5_omni import Qwen2_5OmniThinkerConfig

# Token ids of the real Qwen2.5-Omni vocabulary (the tiny backbone takes them from its own tokenizer).
QWEN_OMNI_TOKEN_IDS = {
    "audio_token_index": 151646,
    "audio_start_token_id": 151647,
    "audio_end_token_id": 151648,
    "image_token_index": 151655,
    "video_token_index": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "user_token_id": 872,
}

_AUDIO_ENCODER_REAL = {
    "num_mel_bins": 128,
    "encoder_layers": 32,
    "encoder_attention_heads": 20,
    "encoder_ffn_dim": 5120,
    "d_model": 1280,
    "max_source_positions": 1500,
    "n_window": 100,
}
_VISION_ENCODER_REAL = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [7, 15, 23, 31],
}

ARCHITECTURES = {
    "7b": {
        "text_config": {
            "vocab_size": 152064,
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
            "tie_word_embeddings": False,
        },
        "audio_config": {**_AUDIO_ENCODER_REAL, "output_dim": 3584},
        "vision_config": {**_VISION_ENCODER_REAL, "out_hidden_size": 3584},
        **QWEN_OMNI_TOKEN_IDS,
    },
    "3b": {
        "text_config": {
            "vocab_size": 151936,
            "hidden_size": 2048,
            "intermediate_size": 11008,
            "num_hidden_layers": 36,
            "num_attention_heads": 16,
            "num_key_value_heads": 2,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
            "tie_word_embeddings": False,
        },
        "audio_config": {**_AUDIO_ENCODER_REAL, "output_dim": 2048},
        "vision_config": {**_VISION_ENCODER_REAL, "out_hidden_size": 2048},
        **QWEN_OMNI_TOKEN_IDS,
    },
    # Small enough for CPU tests: ~0.2 M parameters, a text+audio+video forward in milliseconds.
    "tiny": {
        "text_config": {
            "vocab_size": 1024,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "tie_word_embeddings": False,
        },
        "audio_config": {
            "num_mel_bins": 128,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "d_model": 32,
            "max_source_positions": 1500,
            "n_window": 100,
            "output_dim": 64,
        },
        "vision_config": {
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [0],
            "out_hidden_size": 64,
        },
        **QWEN_OMNI_TOKEN_IDS,
    },
}

LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Regex for peft: the same module names, but only inside the language model (not the audio/vision towers).
LANGUAGE_MODEL_LORA_REGEX = r".*language_model\.layers\.\d+\.(self_attn|mlp)\.(" + "|".join(LORA_TARGET_MODULES) + r")"
LORA_PRESETS = ("paper", "language-only", "none")


def thinker_config_for(arch: str, **token_ids) -> Qwen2_5OmniThinkerConfig:
    """The Thinker config of a named shape; `token_ids` override the special-token ids (tiny tokenizers)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"`arch` must be one of {sorted(ARCHITECTURES)}, got {arch!r}.")
    spec = json.loads(json.dumps(ARCHITECTURES[arch]))  # deep copy
    spec.update(token_ids)
    return Qwen2_5OmniThinkerConfig(**spec)


def lora_config_for(preset: str, r: int | None = None, alpha: int | None = None, dropout: float | None = None,
                    target_modules: list[str] | str | None = None, modules_to_save=("head",)):
    """A peft `LoraConfig` for a preset (`paper`, `language-only`), or None for `none` (full fine-tuning).

    The regression head is always trained in full (`modules_to_save`), and so saved with the adapter; the
    generative readout has no head and passes `modules_to_save=None`.
    """
    from peft import LoraConfig

    if preset not in LORA_PRESETS:
        raise ValueError(f"`lora_preset` must be one of {LORA_PRESETS}, got {preset!r}.")
    if preset == "none":
        return None
    default_targets = list(LORA_TARGET_MODULES) if preset == "paper" else LANGUAGE_MODEL_LORA_REGEX
    return LoraConfig(
        r=r if r is not None else 32,
        lora_alpha=alpha if alpha is not None else 32,
        lora_dropout=dropout if dropout is not None else 0.1,
        target_modules=target_modules if target_modules is not None else default_targets,
        modules_to_save=list(modules_to_save) if modules_to_save else None,
        bias="none",
    )


def count_parameters(model: torch.nn.Module) -> dict:
    """Total and trainable parameters. 4-bit weights count by their logical size; the frozen copy of the head that
    peft keeps beside `modules_to_save` is not counted (it is the same weight before training)."""
    total = trainable = lora = head = 0
    for name, parameter in model.named_parameters():
        if "original_module" in name:
            continue
        count = parameter.numel()
        quant_state = getattr(parameter, "quant_state", None)
        if quant_state is not None:  # bitsandbytes Params4bit: two values per stored byte
            count = torch.Size(quant_state.shape).numel()
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


def params_report(arch: str, lora_preset: str, head_hidden_size: int = 256) -> dict:
    """Builds the regressor on the meta device (no memory, no download) with the LoRA preset applied."""
    from peft import get_peft_model

    from configuration_omni_regressor import OmniRegressorConfig
    from modeling_omni_regressor import Qwen2_5OmniForSentimentRegression

    config = OmniRegressorConfig(thinker_config=thinker_config_for(arch), head_hidden_size=head_hidden_size)
    with torch.device("meta"):
        model = Qwen2_5OmniForSentimentRegression(config)
    lora_config = lora_config_for(lora_preset)
    if lora_config is not None:
        model = get_peft_model(model, lora_config)
    return {"arch": arch, "lora_preset": lora_preset, **count_parameters(model)}
