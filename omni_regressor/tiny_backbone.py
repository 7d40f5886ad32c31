"""Tiny random checkpoints in the released layout, with a processor, offline: the backbones every test runs on.

    omni-regressor tiny-backbone --output_dir DIR [--backbone qwen2.5-omni|qwen3-omni] [--tokenizer small|qwen]

The checkpoint is the real released class (`Qwen2_5OmniForConditionalGeneration`: Thinker + Talker + Token2Wav;
`Qwen3OmniMoeForConditionalGeneration`: Thinker + Talker + Code2Wav) of the `tiny` shape, saved by transformers
itself, so every loading path meets the files a user downloads. The processor carries the released preprocessor
settings (Whisper features: 128 mel bins, hop 160, n_fft 400, chunk_length 300; vision patch 14 or 16, merge 2,
temporal patch 2) and the released chat template. The tokenizer is either
- `small`: a byte-level BPE trained locally on a few sentences (fast; ~1k tokens) with the released special tokens
  declared by name, or
- `qwen`: the released Qwen vocabulary (151 643 ranks from the `dashscope` wheel, a dev dependency) with the special
  tokens at their released ids (`omni_regressor.released_tokenizer`): it tokenizes exactly like the real model.
"""

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import Qwen2TokenizerFast

from .backbones import BackboneSpec, get_backbone
from .released_tokenizer import build_released_processor

TOKENIZERS = ("small", "qwen")
CONTROL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TOKENIZER_CORPUS = [
    "You are a careful annotator of sentiment in video clips.",
    "Rate the sentiment of this clip on a continuous scale from -3 (strongly negative) to 3 (strongly positive).",
    "Answer with one number. Score: -3 -2.5 -2 -1.5 -1 -0.5 0 0.5 1 1.5 2 2.5 3 +1 +2 +3 /3 (positive) negative.",
    "Transcribe the speech in this clip. You are a helpful assistant.",
    "i really loved this movie it was wonderful great amazing brilliant fun happy beautiful excellent",
    "i really hated this movie it was terrible awful boring dull sad horrible disappointing bad",
    "it was okay i guess the plot was fine the acting was average nothing special",
    "the system user assistant speaker said what is shown how it is said",
    "这部电影非常好看 我很喜欢 太糟糕了 一般般",
]


def build_small_tokenizer(backbone: str = "qwen2.5-omni", vocab_size: int = 900) -> Qwen2TokenizerFast:
    """A byte-level BPE tokenizer trained on a fixed corpus (deterministic), with the backbone's named specials."""
    named_tokens = get_backbone(backbone).released_files["named_tokens"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(TOKENIZER_CORPUS * 4, trainer=trainer)
    model_state = json.loads(bpe.to_str())["model"]
    merges = [tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ")) for merge in model_state["merges"]]
    tokenizer = Qwen2TokenizerFast(
        vocab=model_state["vocab"],
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=named_tokens,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": CONTROL_TOKENS}, replace_extra_special_tokens=False)
    tokenizer.padding_side = "left"
    tokenizer.model_max_length = 32768
    return tokenizer


def build_processor(backbone: str = "qwen2.5-omni", tokenizer: str = "small"):
    """The backbone's processor with the released preprocessor settings and chat template."""
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"`tokenizer` must be one of {TOKENIZERS}, got {tokenizer!r}.")
    text_tokenizer = build_small_tokenizer(backbone) if tokenizer == "small" else None
    return build_released_processor(backbone, text_tokenizer)


def thinker_config_for_tokenizer(backbone: BackboneSpec, arch: str, tokenizer):
    """A Thinker config of a named shape whose special-token ids (and, for `tiny`, vocabulary) fit `tokenizer`."""
    token_ids = {
        field_name: tokenizer.convert_tokens_to_ids(getattr(tokenizer, name))
        for name, field_name in backbone.token_id_fields.items()
    }
    token_ids["user_token_id"] = tokenizer.convert_tokens_to_ids("user") if "user" in tokenizer.get_vocab() else 0
    thinker = backbone.thinker_config(arch, **token_ids)
    if arch == "tiny":
        thinker.text_config.vocab_size = 64 * ((len(tokenizer) + 63) // 64)
    thinker.text_config.pad_token_id = tokenizer.pad_token_id
    thinker.text_config.eos_token_id = tokenizer.eos_token_id
    return thinker


def write_tiny_backbone(output_dir, seed: int = 0, backbone: str = "qwen2.5-omni", tokenizer: str = "small") -> Path:
    """Writes `config.json`, safetensors weights and the processor files of a tiny released-layout checkpoint.

    The same seed writes the same weights and the same tokenizer.
    """
    spec = get_backbone(backbone)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    processor = build_processor(backbone, tokenizer)
    thinker = thinker_config_for_tokenizer(spec, "tiny", processor.tokenizer)
    config = spec.tiny_original_config(thinker, processor.tokenizer)
    torch.manual_seed(seed)
    model = spec.original_class(config)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir


def streams_random_weights(arch: str) -> bool:
    """Whether `write_random_thinker` writes the `--arch` shape tensor by tensor by default (its large shapes, where
    the backbone allows it: `BackboneSpec.random_weights_streamable`)."""
    from .backbones import architecture

    spec, preset = architecture(arch)
    return preset != "tiny" and spec.random_weights_streamable


def write_random_thinker(arch: str, output_dir, seed: int = 0, dtype=torch.bfloat16, streaming: bool | None = None,
                         prequantized: bool = False) -> Path:
    """A Thinker-only checkpoint of an `--arch` shape (`tiny`, `7b`, `qwen3-omni-30b-a3b`, ...) with random weights and
    a small-vocabulary processor.

    For benchmarks of memory and latency at the real shapes without downloading weights: the loading, quantisation
    and training code that runs on it is the code that runs on the released checkpoints. `tiny` is built as a model
    (transformers' own initialisation) and saved, as are the shapes of a backbone whose spec does not allow streaming
    (`BackboneSpec.random_weights_streamable`: Qwen3-Omni, whose fused experts transformers splits back on save); the
    other shapes (`streaming`, the default for them: Qwen2.5-Omni 3B/7B) are written tensor by tensor from the
    model's shapes on the meta device, so writing a 7B checkpoint holds one ~2 GB shard in
    memory instead of the whole 17 GB model. `prequantized` writes the language model's layers already in
    bitsandbytes' 4-bit format (`random_checkpoint.write_prequantized_random_thinker`): no quantisation at load.
    """
    from .backbones import architecture

    spec, preset = architecture(arch)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    processor = build_processor(spec.name, "small")
    config = thinker_config_for_tokenizer(spec, preset, processor.tokenizer)
    if prequantized:
        from .random_checkpoint import write_prequantized_random_thinker

        write_prequantized_random_thinker(spec, config, output_dir, seed=seed)
        processor.save_pretrained(output_dir)
        return output_dir
    if streaming if streaming is not None else streams_random_weights(arch):
        from .random_checkpoint import write_random_weights

        with torch.device("meta"):
            model = spec.generative_class._from_config(config, dtype=dtype)
        write_random_weights(model, output_dir, seed=seed)
        processor.save_pretrained(output_dir)
        return output_dir
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = spec.generative_class._from_config(config, dtype=dtype)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    del model
    return output_dir
