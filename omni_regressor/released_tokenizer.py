"""Offline replicas of the released Qwen2.5-Omni-7B / Qwen3-Omni-30B-A3B tokenizers, chat templates and processors.

The Qwen byte-level BPE vocabulary ships in a registry package: `dashscope`'s wheel holds
`dashscope/resources/qwen.tiktoken` (151 643 base64 ranks, the vocabulary shared by Qwen, Qwen2, Qwen2.5 and Qwen3).
This module rebuilds a fast tokenizer from those ranks with the standard tiktoken -> Hugging Face conversion (the
Qwen2 pre-tokenizer regex, byte-level pre-tokenizer/decoder, one BPE merge per multi-byte token derived from the
ranks), then adds each released checkpoint's added tokens at their released ids, writes released-style
`tokenizer.json` + `tokenizer_config.json` and loads them through `Qwen2TokenizerFast.from_pretrained`, the same
code path the Hub files take. Derived files are cached (keyed by the ranks file's SHA-256), so a build after the first
takes well under a second.

`dashscope` is only *located* (`importlib.util.find_spec`), never imported: it is a dev/test dependency
(`pip install dashscope`), not a runtime one.

The released values themselves (added tokens, named tokens, tokenizer_config fields, chat template, preprocessor
settings, each with its source) live in each backbone's own file, `omni_regressor/backbones/<name>.py`, as
`BackboneSpec.released_files`; this module holds what the backbones share: the Qwen2 pre-tokenizer regex and the
builder.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from transformers import (
    AutoProcessor,
    Qwen2TokenizerFast,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
    WhisperFeatureExtractor,
)

from .backbones import BACKBONES as BACKBONE_SPECS
from .backbones import get_backbone
from .backbones.qwen2_5_omni import (  # kept importable from here; they live in the backbone's file
    QWEN2_5_OMNI_ADDED_TOKENS, QWEN2_5_OMNI_CHAT_TEMPLATE, QWEN2_5_OMNI_NAMED_TOKENS, QWEN2_5_OMNI_PREPROCESSOR,
    QWEN2_5_OMNI_TOKENIZER_CONFIG,
)
from .backbones.qwen3_omni import (  # kept importable from here; they live in the backbone's file
    QWEN3_OMNI_ADDED_TOKENS, QWEN3_OMNI_CHAT_TEMPLATE, QWEN3_OMNI_NAMED_TOKENS, QWEN3_OMNI_PREPROCESSOR,
    QWEN3_OMNI_TOKENIZER_CONFIG,
)

__all__ = [
    "BACKBONES",
    "QWEN2_5_OMNI_ADDED_TOKENS",
    "QWEN3_OMNI_ADDED_TOKENS",
    "QWEN2_5_OMNI_NAMED_TOKENS",
    "QWEN3_OMNI_NAMED_TOKENS",
    "QWEN2_5_OMNI_CHAT_TEMPLATE",
    "QWEN3_OMNI_CHAT_TEMPLATE",
    "QWEN2_5_OMNI_PREPROCESSOR",
    "QWEN3_OMNI_PREPROCESSOR",
    "QWEN2_5_OMNI_TOKENIZER_CONFIG",
    "QWEN3_OMNI_TOKENIZER_CONFIG",
    "PRETOKENIZE_REGEX",
    "qwen_ranks_path",
    "build_qwen_tokenizer",
    "build_released_processor",
    "write_released_processor",
]

# The Qwen2 pre-tokenizer: the same pattern as `dashscope/tokenizers/qwen_tokenizer.py` (PAT_STR) and
# `transformers/models/qwen2/tokenization_qwen2.py` (PRETOKENIZE_REGEX). `\p{N}` alone splits numbers digit by digit.
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


class _ReleasedFiles(Mapping):
    """Backbone name -> its released files (`BackboneSpec.released_files`), for every registered backbone that has a
    replica; read from the registry on each access, so backbones registered later are included."""

    def __getitem__(self, name: str) -> dict:
        spec = BACKBONE_SPECS[name]
        if spec.released_files is None:
            raise KeyError(name)
        return spec.released_files

    def __iter__(self) -> Iterator[str]:
        return (name for name, spec in BACKBONE_SPECS.items() if spec.released_files is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


BACKBONES = _ReleasedFiles()


_CACHE_FORMAT = 1  # bump when the files written below change


def _backbone(name: str) -> str:
    """A backbone name or alias -> the name of a backbone with a released-files replica."""
    spec = get_backbone(name)
    if spec.released_files is None:
        raise ValueError(f"backbone {spec.name!r} has no offline replica of its released tokenizer and processor.")
    return spec.name


def _released(name: str) -> dict:
    return get_backbone(name).released_files


def qwen_ranks_path() -> Path:
    """Path of `dashscope/resources/qwen.tiktoken` (151 643 base64 BPE ranks), found without importing dashscope."""
    try:
        spec = importlib.util.find_spec("dashscope")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The Qwen BPE ranks come from the `dashscope` package (dev dependency): `pip install dashscope`."
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "resources" / "qwen.tiktoken"
        if path.is_file():
            return path
    raise ImportError(
        "`dashscope` is installed but has no resources/qwen.tiktoken; reinstall it: `pip install -U dashscope`."
    )


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / byte-level BPE byte -> printable character map (the one `tokenizers`' ByteLevel uses)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def _load_ranks(path: Path) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _merges_from_ranks(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """One merge per multi-byte token, in rank order: the last merge BPE makes (lowest-rank pair first, only ranks
    below the token's own) when it rebuilds the token from its bytes. Same result as tiktoken's rank-based BPE."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) < 2:
            continue
        parts = [token[i : i + 1] for i in range(len(token))]
        while len(parts) > 2:
            best_rank, best_index = None, -1
            for i in range(len(parts) - 1):
                pair_rank = ranks.get(parts[i] + parts[i + 1])
                if pair_rank is not None and pair_rank < rank and (best_rank is None or pair_rank < best_rank):
                    best_rank, best_index = pair_rank, i
            if best_rank is None:
                break
            parts[best_index : best_index + 2] = [parts[best_index] + parts[best_index + 1]]
        if len(parts) != 2:
            raise ValueError(f"token of rank {rank} cannot be built by BPE from lower ranks")
        merges.append((parts[0], parts[1]))
    return merges


@functools.lru_cache(maxsize=2)
def _vocab_and_merges(ranks_path: str, ranks_sha256: str) -> tuple[dict[str, int], list[list[str]]]:
    """Byte-level vocabulary and merges of a ranks file (memoised per process: both backbones share them)."""
    ranks = _load_ranks(Path(ranks_path))
    byte_map = _bytes_to_unicode()

    def to_str(token: bytes) -> str:
        return "".join(byte_map[b] for b in token)

    vocab = {to_str(token): rank for token, rank in ranks.items()}
    merges = [[to_str(left), to_str(right)] for left, right in _merges_from_ranks(ranks)]
    return vocab, merges


def _tokenizer_json(ranks_path: Path, added_tokens) -> dict:
    """A released-style Qwen2 `tokenizer.json` (NFC, regex split + ByteLevel, BPE, ByteLevel decoder)."""
    vocab, merges = _vocab_and_merges(str(ranks_path), _file_sha256(ranks_path))
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": token_id,
                "content": content,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": special,
            }
            for token_id, content, special in added_tokens
        ],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": PRETOKENIZE_REGEX}, "behavior": "Isolated", "invert": False},
                byte_level,
            ],
        },
        "post_processor": dict(byte_level),
        "decoder": dict(byte_level),
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }


def _tokenizer_config(backbone: str) -> dict:
    spec = _released(backbone)
    added = {
        str(token_id): {
            "content": content,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": special,
        }
        for token_id, content, special in spec["added_tokens"]
    }
    named = spec["named_tokens"]
    # Released-style: the named tokens are declared both as extra special tokens and as top-level fields.
    return {
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        **spec["tokenizer_config"],
        "extra_special_tokens": dict(named),
        **named,
    }


def _default_cache_dir() -> Path:
    root = os.environ.get("OMNI_REGRESSOR_CACHE") or os.environ.get("XDG_CACHE_HOME")
    if root:
        return Path(root) / "omni_regressor" / "qwen_tokenizers"
    home_cache = Path.home() / ".cache"
    if os.access(Path.home(), os.W_OK):
        return home_cache / "omni_regressor" / "qwen_tokenizers"
    return Path(tempfile.gettempdir()) / "omni_regressor" / "qwen_tokenizers"


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tokenizer_dir(backbone: str, ranks_path: Path, cache_dir: Path | None) -> Path:
    """The cached released-style tokenizer folder for `backbone`, written on first use (atomically)."""
    cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    key = hashlib.sha256(
        json.dumps(
            [_CACHE_FORMAT, _file_sha256(ranks_path), _tokenizer_config(backbone)], sort_keys=True
        ).encode()
    ).hexdigest()[:16]
    folder = cache_dir / f"{backbone}-{key}"
    if (folder / "tokenizer.json").is_file() and (folder / "tokenizer_config.json").is_file():
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{backbone}-", dir=cache_dir))
    spec = _released(backbone)
    (staging / "tokenizer.json").write_text(
        json.dumps(_tokenizer_json(ranks_path, spec["added_tokens"]), ensure_ascii=False), encoding="utf-8"
    )
    (staging / "tokenizer_config.json").write_text(
        json.dumps(_tokenizer_config(backbone), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    try:
        staging.rename(folder)
    except OSError:  # another process won the race: use its copy
        for child in staging.iterdir():
            child.unlink()
        staging.rmdir()
    return folder


def build_qwen_tokenizer(
    backbone: str = "qwen2.5-omni", *, cache_dir: str | os.PathLike | None = None
) -> Qwen2TokenizerFast:
    """The released tokenizer of `backbone` ("qwen2.5-omni" or "qwen3-omni"), rebuilt offline from dashscope's ranks.

    Vocabulary, merges, pre-tokenizer and decoder are the Qwen2 ones; the added tokens sit at their released ids, the
    named multimodal tokens the Omni processors read are declared, eos/pad are as released and padding is left-sided.
    The derived tokenizer files are cached under `cache_dir` (default: $OMNI_REGRESSOR_CACHE, $XDG_CACHE_HOME or
    ~/.cache, .../omni_regressor/qwen_tokenizers), keyed by the ranks file's hash.
    """
    key = _backbone(backbone)
    folder = _tokenizer_dir(key, qwen_ranks_path(), cache_dir)
    tokenizer = Qwen2TokenizerFast.from_pretrained(folder)
    expected = {token_id: content for token_id, content, _ in _released(key)["added_tokens"]}
    got = {token_id: tokenizer.convert_ids_to_tokens(token_id) for token_id in expected}
    if got != expected:  # guards against a transformers change in how added tokens are re-numbered
        raise RuntimeError(f"added tokens landed at the wrong ids: {got}")
    tokenizer.padding_side = "left"
    tokenizer.chat_template = _released(key)["chat_template"]
    return tokenizer


def build_released_processor(backbone: str = "qwen2.5-omni", tokenizer: Qwen2TokenizerFast | None = None):
    """A real `Qwen2_5OmniProcessor` / `Qwen3OmniMoeProcessor` with the released preprocessor settings, tokenizer and
    chat template (Whisper feature extractor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor, as the released
    checkpoints resolve them in transformers 5). Saves with `save_pretrained` and reloads with
    `AutoProcessor.from_pretrained(folder)` offline."""
    key = _backbone(backbone)
    spec = _released(key)
    tokenizer = tokenizer if tokenizer is not None else build_qwen_tokenizer(key)
    missing = [name for name in spec["named_tokens"] if getattr(tokenizer, name, None) is None]
    if missing:
        raise ValueError(f"tokenizer lacks the named tokens the processor reads: {missing}")
    audio = {k: v for k, v in spec["preprocessor"]["feature_extractor"].items() if k != "feature_extractor_type"}
    feature_extractor = WhisperFeatureExtractor(
        feature_size=audio["feature_size"],
        sampling_rate=audio["sampling_rate"],
        hop_length=audio["hop_length"],
        chunk_length=audio["chunk_length"],
        n_fft=audio["n_fft"],
        padding_value=audio["padding_value"],
        dither=audio["dither"],
        return_attention_mask=audio["return_attention_mask"],
        padding_side=audio["padding_side"],
    )
    vision = {k: v for k, v in spec["preprocessor"]["image_processor"].items() if k != "image_processor_type"}
    image_processor = Qwen2VLImageProcessor(**vision)
    video_processor = Qwen2VLVideoProcessor(**vision)
    return spec["processor_class"](
        image_processor=image_processor,
        video_processor=video_processor,
        feature_extractor=feature_extractor,
        tokenizer=tokenizer,
        chat_template=spec["chat_template"],
    )


def write_released_processor(folder: str | os.PathLike, backbone: str = "qwen2.5-omni"):
    """Save the released processor of `backbone` to `folder` and return it reloaded with `AutoProcessor`."""
    build_released_processor(backbone).save_pretrained(folder)
    return AutoProcessor.from_pretrained(folder)
