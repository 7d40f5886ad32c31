"""What the package needs to know about one backbone family, in one place (in the style of peft's per-model tables)."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

LORA_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone family (Qwen2.5-Omni, Qwen3-Omni, ...), looked up by `model_type` or by name.

    Args:
        name: what users type (`--backbone qwen2.5-omni`).
        original_model_type, thinker_model_type: `model_type` of the released checkpoint and of its Thinker.
        regressor_class: the discriminative model class (from `modeling_omni_regressor.py`).
        generative_class: the Thinker with its LM head (the generative readout, transcription).
        original_class: the released checkpoint's class (Thinker + speech generator), for tiny test checkpoints.
        processor_class: the released processor class.
        tower_modules: Thinker submodules kept unquantised (their shapes do not suit the 4-bit kernels, and they are
            a small part of the weights).
        lora_targets: LoRA preset name -> peft `target_modules` (a list of names, or a regex).
        architectures: preset name (`--arch`) -> Thinker config kwargs (released values; `tiny` for tests).
        speech_modules: top-level modules of the released checkpoint that a Thinker readout ignores.
        token_id_fields: the processor's named special tokens -> the Thinker config fields holding their ids.
        tiny_original_config: (Thinker config, tokenizer) -> config of a tiny released-layout checkpoint (`omni-regressor tiny-backbone`).
        source: where the preset values come from (named in the README).
        display_title: the family's name in model cards and reports ("Qwen2.5-Omni").
        aliases: other names users and configs give it (lower case; `get_backbone` accepts them).
        image_factor: pixels per merged vision patch side (patch size x merge size: 28, or 32 for patch 16); the
            official sizing rounds frames to it.
        extractor_seconds: the released audio feature extractor's window (`chunk_length`); longer clips are cut.
        released_files: the released tokenizer, chat template and preprocessor settings, replicated offline and
            written out (with their sources) in the backbone's own file; `omni_regressor.released_tokenizer` builds a
            real tokenizer and processor from them (None if there is no replica). Keys added_tokens, named_tokens,
            tokenizer_config, chat_template, preprocessor, processor_class.
        random_weights_streamable: random checkpoints of its large `--arch` shapes may be written tensor by tensor
            from the meta-device shapes (`random_checkpoint.write_random_weights`, which writes the layout transformers
            saves a Qwen2.5-Omni Thinker in) instead of built as a model and saved (`tiny_backbone.write_random_thinker`).
            False where transformers saves another layout (Qwen3-Omni splits its fused experts back when it saves).
    """

    name: str
    original_model_type: str
    thinker_model_type: str
    regressor_class: type
    generative_class: type
    original_class: type
    processor_class: type
    tower_modules: tuple[str, ...]
    lora_targets: dict[str, list[str] | str]
    architectures: dict[str, dict]
    speech_modules: tuple[str, ...]
    token_id_fields: dict[str, str]
    tiny_original_config: Callable = field(repr=False, default=None)
    source: str = ""
    display_title: str = ""
    aliases: tuple[str, ...] = ()
    image_factor: int = 28
    extractor_seconds: float = 300.0
    released_files: dict | None = field(repr=False, default=None)
    random_weights_streamable: bool = False

    @property
    def model_types(self) -> tuple[str, str]:
        return (self.original_model_type, self.thinker_model_type)

    def regressor_skip_modules(self) -> list[str]:
        """Modules of the regressor that 4-bit loading leaves in full precision: towers and head."""
        return [f"thinker.{name}" for name in self.tower_modules] + ["head"]

    def generative_skip_modules(self) -> list[str]:
        """The same for the Thinker with its LM head."""
        return [f"model.{name}" for name in self.tower_modules] + ["lm_head"]

    def thinker_config(self, arch: str, **overrides):
        """The Thinker config of a named shape; `overrides` replace top-level values (token ids of a tokenizer)."""
        if arch not in self.architectures:
            raise ValueError(f"{self.name} has no architecture preset {arch!r}; choose one of {sorted(self.architectures)}.")
        spec = json.loads(json.dumps(self.architectures[arch]))  # deep copy
        spec.update(overrides)
        config_class = self.generative_class.config_class
        return config_class(**spec)

    def lora_target_modules(self, preset: str):
        if preset not in self.lora_targets:
            raise ValueError(f"{self.name} has no LoRA preset {preset!r}; choose one of {sorted(self.lora_targets)}.")
        targets = self.lora_targets[preset]
        return list(targets) if isinstance(targets, list) else targets
