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

Sources of the released values are given next to each constant. Where a value could not be read from a copy of the
released file it is marked INFERRED.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import json
import os
import tempfile
from pathlib import Path

from transformers import (
    AutoProcessor,
    Qwen2_5OmniProcessor,
    Qwen2TokenizerFast,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
    Qwen3OmniMoeProcessor,
    WhisperFeatureExtractor,
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

# ---------------------------------------------------------------------------------------------------------------------
# Added tokens: (id, content, special). Every added token is lstrip/rstrip/single_word/normalized = False.
#
# Qwen2.5-Omni-7B. Confirmed by copies of the released files / the released processor's output:
#   151643-151648 and 151652-151656: `added_tokens.json` as quoted in a third-party model report (AVoCaDO, a fine-tune
#   shipping the base tokenizer unmodified; find_string "Special tokens (`added_tokens.json`)"), and
#   huggingface/transformers tests/models/qwen2_5_omni/test_modeling_qwen2_5_omni.py (integration test on the Hub
#   processor: expected ids [151644, 8948, 198, ..., 151645, 198, 151644, 872, 198, 151647, 151646, 151648]).
# INFERRED (not readable offline): 151649-151651 (<|box_end|>, <|quad_start|>, <|quad_end|>, kept from the Qwen2-VL
#   layout) and 151657-151664 (the Qwen2.5 tool/FIM tokens, special=False), i.e. the Qwen2.5 base layout with the
#   object-ref/box-start/vision slots renamed for audio/vision.
QWEN2_5_OMNI_ADDED_TOKENS: tuple[tuple[int, str, bool], ...] = (
    (151643, "<|endoftext|>", True),
    (151644, "<|im_start|>", True),
    (151645, "<|im_end|>", True),
    (151646, "<|AUDIO|>", True),
    (151647, "<|audio_bos|>", True),
    (151648, "<|audio_eos|>", True),
    (151649, "<|box_end|>", True),
    (151650, "<|quad_start|>", True),
    (151651, "<|quad_end|>", True),
    (151652, "<|vision_bos|>", True),
    (151653, "<|vision_eos|>", True),
    (151654, "<|vision_pad|>", True),
    (151655, "<|IMAGE|>", True),
    (151656, "<|VIDEO|>", True),
    (151657, "<tool_call>", False),
    (151658, "</tool_call>", False),
    (151659, "<|fim_prefix|>", False),
    (151660, "<|fim_middle|>", False),
    (151661, "<|fim_suffix|>", False),
    (151662, "<|fim_pad|>", False),
    (151663, "<|repo_name|>", False),
    (151664, "<|file_sep|>", False),
)

# Qwen3-Omni-30B-A3B (Instruct/Thinking/Captioner share the tokenizer): the Qwen3 layout (151643-151668, incl.
# <tool_response>/<think>) followed by the Omni audio/TTS tokens. Ids 151669/151670/151671-151673/151675 are the
# released config.json values (thinker/talker `audio_start_token_id` 151669, `audio_end_token_id` 151670,
# `tts_pad/bos/eos_token_id` 151671/151672/151673, `audio_token_id` 151675; config dump of
# Qwen3-Omni-30B-A3B-Instruct, find_string '"audio_token_id": 151675'); the expected ids
# [151644, 872, 198, 151669, 151675, ...] of huggingface/transformers
# tests/models/qwen3_omni_moe/test_modeling_qwen3_omni_moe.py; the order/special flags match the Qwen3 audio family's
# added-token list (Qwen3-TTS `QWEN3_TTS_SPECIAL_TOKENS`, find_string '"<tts_text_bos_single>"').
# 151674 <tts_text_bos_single> is the one slot fixed only by that order (INFERRED, consistent with 151673/151675).
QWEN3_OMNI_ADDED_TOKENS: tuple[tuple[int, str, bool], ...] = (
    (151643, "<|endoftext|>", True),
    (151644, "<|im_start|>", True),
    (151645, "<|im_end|>", True),
    (151646, "<|object_ref_start|>", True),
    (151647, "<|object_ref_end|>", True),
    (151648, "<|box_start|>", True),
    (151649, "<|box_end|>", True),
    (151650, "<|quad_start|>", True),
    (151651, "<|quad_end|>", True),
    (151652, "<|vision_start|>", True),
    (151653, "<|vision_end|>", True),
    (151654, "<|vision_pad|>", True),
    (151655, "<|image_pad|>", True),
    (151656, "<|video_pad|>", True),
    (151657, "<tool_call>", False),
    (151658, "</tool_call>", False),
    (151659, "<|fim_prefix|>", False),
    (151660, "<|fim_middle|>", False),
    (151661, "<|fim_suffix|>", False),
    (151662, "<|fim_pad|>", False),
    (151663, "<|repo_name|>", False),
    (151664, "<|file_sep|>", False),
    (151665, "<tool_response>", False),
    (151666, "</tool_response>", False),
    (151667, "<think>", False),
    (151668, "</think>", False),
    (151669, "<|audio_start|>", True),
    (151670, "<|audio_end|>", True),
    (151671, "<tts_pad>", True),
    (151672, "<tts_text_bos>", True),
    (151673, "<tts_text_eod>", True),
    (151674, "<tts_text_bos_single>", True),
    (151675, "<|audio_pad|>", True),
)

# The named special tokens that `Qwen2_5OmniProcessor.__init__` / `Qwen3OmniMoeProcessor.__init__` read from the
# tokenizer (transformers 5.24 processing_qwen2_5_omni.py:144-153, processing_qwen3_omni_moe.py:153-162):
# image_token, audio_token, video_token (+ their *_id), vision_bos_token, vision_eos_token, audio_bos_token,
# audio_eos_token.
QWEN2_5_OMNI_NAMED_TOKENS = {
    "image_token": "<|IMAGE|>",
    "audio_token": "<|AUDIO|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}
QWEN3_OMNI_NAMED_TOKENS = {
    "image_token": "<|image_pad|>",
    "audio_token": "<|audio_pad|>",
    "video_token": "<|video_pad|>",
    "vision_bos_token": "<|vision_start|>",
    "vision_eos_token": "<|vision_end|>",
    "audio_bos_token": "<|audio_start|>",
    "audio_eos_token": "<|audio_end|>",
}

# tokenizer_config.json fields besides the added tokens. Qwen2.5-Omni: eos <|im_end|>, pad <|endoftext|>, bos/unk null,
# model_max_length 32768, clean_up_tokenization_spaces false, processor_class Qwen2_5OmniProcessor (third-party report
# of the released tokenizer_config.json, find_string "`tokenizer_config.json`** — `Qwen2Tokenizer` (fast)"). The
# Qwen3-Omni values follow the Qwen3 tokenizer_config (eos <|im_end|>, pad <|endoftext|>); model_max_length 65536 is
# INFERRED from the thinker's max_position_embeddings. padding_side "left" for both (both processors also force
# `text_kwargs = {"padding_side": "left"}`).
QWEN2_5_OMNI_TOKENIZER_CONFIG = {
    "bos_token": None,
    "eos_token": "<|im_end|>",
    "pad_token": "<|endoftext|>",
    "unk_token": None,
    "errors": "replace",
    "clean_up_tokenization_spaces": False,
    "split_special_tokens": False,
    "model_max_length": 32768,
    "padding_side": "left",
    "processor_class": "Qwen2_5OmniProcessor",
    "tokenizer_class": "Qwen2Tokenizer",
}
QWEN3_OMNI_TOKENIZER_CONFIG = {
    **QWEN2_5_OMNI_TOKENIZER_CONFIG,
    "model_max_length": 65536,
    "processor_class": "Qwen3OmniMoeProcessor",
}

# ---------------------------------------------------------------------------------------------------------------------
# Chat templates.
#
# Qwen2.5-Omni-7B chat_template.json, verbatim. Source: huggingface/transformers
# tests/models/qwen2_5_omni/test_processing_qwen2_5_omni.py (`prepare_processor_dict`); the same string is quoted as
# the released, unmodified template by the AVoCaDO and TimeChat-Captioner model reports and by
# huggingface/transformers tests/models/qwen2_5_omni/test_modeling_qwen2_5_omni.py's Hub integration test, whose
# expected ids start with the injected default system turn "You are a helpful assistant.".
# NOTE: when the first message is not a system message it injects "<|im_start|>system\nYou are a helpful
# assistant.<|im_end|>\n" (not the "You are Qwen, a virtual human ..." prompt the talker needs).
QWEN2_5_OMNI_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}{% set image_count = namespace(value=0) %}"
    "{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "{% if add_audio_id %}Audio {{ audio_count.value }}: {% endif %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen3-Omni-30B-A3B-Instruct chat_template.json: NOT VERBATIM. No copy of the released file was found in the searchable
# public corpus (GitHub code, docs, pages, issues). This is a RECONSTRUCTION of the Qwen3-VL-Instruct template
# (system/tools header, `content.type`-based multimodal rendering, add_vision_id counters) extended with the audio
# branch, and of the Qwen3 assistant/`reasoning_content` handling quoted from the released Qwen3-Omni template in
# sujitnoronha/audio_reasoning_interspeech docs/QWEN3_OMNI_CHAT_TEMPLATE_BUG_REPORT.md. Its rendering matches every
# released-template output found: no default system turn ("<|im_start|>user\n<|audio_start|><|audio_pad|>..." in
# huggingface/transformers tests/models/qwen3_omni_moe/test_modeling_qwen3_omni_moe.py) and
# "<|im_start|>system\n{text}<|im_end|>\n<|im_start|>user\n<|audio_start|><|audio_pad|><|audio_end|>{text}<|im_end|>\n"
# (bug report above). Tool-call rendering and thinking-history edge cases are not guaranteed to be byte-identical.
QWEN3_OMNI_CHAT_TEMPLATE = (
    "{%- set image_count = namespace(value=0) %}"
    "{%- set video_count = namespace(value=0) %}"
    "{%- set audio_count = namespace(value=0) %}"
    "{%- macro render_content(content) %}"
    "{%- if content is string %}{{- content }}"
    "{%- else %}"
    "{%- for item in content %}"
    "{%- if item.type == 'image' or 'image' in item or 'image_url' in item %}"
    "{%- set image_count.value = image_count.value + 1 %}"
    "{%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif item.type == 'audio' or 'audio' in item or 'audio_url' in item %}"
    "{%- set audio_count.value = audio_count.value + 1 %}"
    "{%- if add_audio_id %}Audio {{ audio_count.value }}: {% endif -%}"
    "<|audio_start|><|audio_pad|><|audio_end|>"
    "{%- elif item.type == 'video' or 'video' in item %}"
    "{%- set video_count.value = video_count.value + 1 %}"
    "{%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif 'text' in item %}{{- item.text }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- endif %}"
    "{%- endmacro %}"
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].role == 'system' %}{{- render_content(messages[0].content) + '\\n\\n' }}{%- endif %}"
    "{{- \"# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}"
    "{%- for tool in tools %}{{- \"\\n\" }}{{- tool | tojson }}{%- endfor %}"
    "{{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}"
    "{%- elif messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + render_content(messages[0].content) + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}"
    "{%- for message in messages[::-1] %}"
    "{%- set index = (messages|length - 1) - loop.index0 %}"
    "{%- if ns.multi_step_tool and message.role == 'user' and message.content is string"
    " and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}"
    "{%- set ns.multi_step_tool = false %}{%- set ns.last_query_index = index %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- for message in messages %}"
    "{%- set content = render_content(message.content) %}"
    "{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}"
    "{%- elif message.role == 'assistant' %}"
    "{%- set reasoning_content = '' %}"
    "{%- if message.reasoning_content is string %}{%- set reasoning_content = message.reasoning_content %}"
    "{%- elif '</think>' in content %}"
    "{%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- endif %}"
    "{%- if loop.index0 > ns.last_query_index and (loop.last or reasoning_content) %}"
    "{{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n'"
    " + content.lstrip('\\n') }}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + content }}"
    "{%- endif %}"
    "{%- if message.tool_calls %}"
    "{%- for tool_call in message.tool_calls %}"
    "{%- if (loop.first and content) or (not loop.first) %}{{- '\\n' }}{%- endif %}"
    "{%- if tool_call.function %}{%- set tool_call = tool_call.function %}{%- endif %}"
    "{{- '<tool_call>\\n{\"name\": \"' }}{{- tool_call.name }}{{- '\", \"arguments\": ' }}"
    "{%- if tool_call.arguments is string %}{{- tool_call.arguments }}{%- else %}{{- tool_call.arguments | tojson }}"
    "{%- endif %}"
    "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- elif message.role == 'tool' %}"
    "{%- if loop.first or (messages[loop.index0 - 1].role != 'tool') %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + content + '\\n</tool_response>' }}"
    "{%- if loop.last or (messages[loop.index0 + 1].role != 'tool') %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# ---------------------------------------------------------------------------------------------------------------------
# Preprocessor settings (preprocessor_config.json).
#
# Qwen2.5-Omni-7B: the released preprocessor_config.json as quoted (identically) by the AVoCaDO and TimeChat-Captioner
# model reports (fine-tunes that ship it unmodified; find_string '"chunk_length": 300'). Patch 14, merge 2 -> factor 28.
# The released repo has no video_preprocessor_config.json / processor_config.json; transformers builds the video
# processor (Qwen2VLVideoProcessor) from the same settings, and `Qwen2_5OmniProcessor.videos_kwargs` sizes videos
# with shortest/longest edge 128*28*28 / 768*28*28.
QWEN2_5_OMNI_PREPROCESSOR = {
    "processor_class": "Qwen2_5OmniProcessor",
    "feature_extractor": {
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": 128,
        "sampling_rate": 16000,
        "hop_length": 160,
        "n_fft": 400,
        "chunk_length": 300,
        "n_samples": 4800000,
        "nb_max_frames": 30000,
        "dither": 0.0,
        "padding_value": 0.0,
        "padding_side": "right",
        "return_attention_mask": True,
    },
    "image_processor": {
        "image_processor_type": "Qwen2VLImageProcessor",
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "min_pixels": 3136,
        "max_pixels": 12845056,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
    },
}

# Qwen3-Omni-30B-A3B (Instruct @26291f79, Thinking, Captioner: same shape): third-party check of the three official
# repos' preprocessor_config.json (find_string '"processor_class": "Qwen3OmniMoeProcessor"'): Whisper 128 mel /
# 16 kHz / hop 160 / n_fft 400 / n_samples 4800000 (chunk_length 300) / nb_max_frames 30000; Qwen2VLImageProcessor
# patch 16, temporal 2, merge 2 (factor 32), min/max pixels 3136 / 12845056; no processor_config.json or
# video_preprocessor_config.json in those repos. image_mean/std 0.5 and dither/padding/return_attention_mask from a
# second report of the same file (find_string '"image_mean": [0.5, 0.5, 0.5]'). Note Qwen3OmniMoeProcessor pads audio
# to the longest clip (`audio_kwargs` padding=True, truncation=False), not to chunk_length like Qwen2.5-Omni.
QWEN3_OMNI_PREPROCESSOR = {
    "processor_class": "Qwen3OmniMoeProcessor",
    "feature_extractor": {
        **QWEN2_5_OMNI_PREPROCESSOR["feature_extractor"],
    },
    "image_processor": {
        "image_processor_type": "Qwen2VLImageProcessor",
        "patch_size": 16,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "min_pixels": 3136,
        "max_pixels": 12845056,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    },
}

def __getattr__(name):
    # `BACKBONES`: backbone name -> its released files, as the backbone specs hold them (`BackboneSpec.released_files`).
    if name == "BACKBONES":
        from .backbones import BACKBONES as specs

        return {spec.name: spec.released_files for spec in specs.values() if spec.released_files is not None}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_CACHE_FORMAT = 1  # bump when the files written below change


def _backbone(name: str) -> str:
    """A backbone name or alias -> the name of a backbone with a released-files replica."""
    from .backbones import get_backbone

    spec = get_backbone(name)
    if spec.released_files is None:
        raise ValueError(f"backbone {spec.name!r} has no offline replica of its released tokenizer and processor.")
    return spec.name


def _released(name: str) -> dict:
    from .backbones import get_backbone

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
