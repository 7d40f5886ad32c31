"""Backbone registry: one `BackboneSpec` per family, found by name (or alias), by `model_type` or by a checkpoint.

A new backbone is one module here (its `BackboneSpec` with its presets and released tokenizer/processor files,
registered with `register_backbone`) plus its regressor class (in `modeling_omni_regressor.py`, registered there with
`register_regressor`, so exported folders carry it). Every other part of the package reads what it needs from the
spec: see docs/extending.md.
"""

import json
from pathlib import Path

from .base import LORA_PROJECTIONS, BackboneSpec
from .qwen2_5_omni import QWEN2_5_OMNI
from .qwen3_omni import QWEN3_OMNI

BACKBONES: dict[str, BackboneSpec] = {}
# `--arch` names: the default family's shapes keep their short names (tiny, 3b, 7b); the others' are prefixed
# (qwen3-omni-30b-a3b).
ARCHITECTURES: dict[str, tuple[BackboneSpec, str]] = {}
DEFAULT_BACKBONE = QWEN2_5_OMNI.name


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Adds a backbone family: `--backbone`, `--arch` presets and `model_type` look-ups."""
    BACKBONES[spec.name] = spec
    for arch in spec.architectures:
        ARCHITECTURES.setdefault(arch if spec.name == DEFAULT_BACKBONE else f"{spec.name}-{arch}", (spec, arch))
    return spec


register_backbone(QWEN2_5_OMNI)
register_backbone(QWEN3_OMNI)
LORA_PRESETS = tuple(sorted({preset for spec in BACKBONES.values() for preset in spec.lora_targets})) + ("none",)


def get_backbone(name: str) -> BackboneSpec:
    """By name or alias (`qwen2.5-omni`, `qwen2_5_omni`, `qwen3-omni-30b-a3b`, ...)."""
    for spec in BACKBONES.values():
        if name == spec.name or str(name).lower() in spec.aliases:
            return spec
    raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}.")


def backbone_for_model_type(model_type: str) -> BackboneSpec:
    for spec in BACKBONES.values():
        if model_type in spec.model_types:
            return spec
    known = ", ".join(model_type for spec in BACKBONES.values() for model_type in spec.model_types)
    raise ValueError(f"model_type {model_type!r} is not a supported backbone ({known}).")


def read_config_dict(model_name_or_path) -> dict:
    """`config.json` of a local folder or a Hub id (downloaded through transformers' cache)."""
    local = Path(model_name_or_path) / "config.json"
    if local.is_file():
        return json.loads(local.read_text(encoding="utf-8"))
    from transformers import PretrainedConfig

    config_dict, _ = PretrainedConfig.get_config_dict(str(model_name_or_path))
    return config_dict


def backbone_of(model_name_or_path) -> BackboneSpec:
    """The backbone of an original checkpoint, a Thinker-only checkpoint or a saved regressor."""
    config = read_config_dict(model_name_or_path)
    model_type = config.get("model_type")
    if model_type == "omni_regressor":
        model_type = (config.get("thinker_config") or {}).get("model_type", "qwen2_5_omni_thinker")
    return backbone_for_model_type(model_type)


def num_decoder_layers(model_name_or_path) -> int:
    """Decoder layers of the Thinker's language model, read from `config.json` (any layout above)."""
    config = read_config_dict(model_name_or_path)
    thinker = config.get("thinker_config") or config
    return int((thinker.get("text_config") or thinker)["num_hidden_layers"])


def architecture(arch: str) -> tuple[BackboneSpec, str]:
    """`--arch` name -> (backbone, its preset name)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHITECTURES)}.")
    return ARCHITECTURES[arch]


def thinker_config_for(arch: str, **overrides):
    """The Thinker config of an `--arch` name (e.g. `tiny`, `7b`, `qwen3-omni-30b-a3b`)."""
    spec, preset = architecture(arch)
    return spec.thinker_config(preset, **overrides)


__all__ = [
    "ARCHITECTURES", "BACKBONES", "DEFAULT_BACKBONE", "LORA_PRESETS", "LORA_PROJECTIONS", "BackboneSpec", "architecture",
    "backbone_for_model_type", "backbone_of", "get_backbone", "read_config_dict", "register_backbone",
    "thinker_config_for",
]
