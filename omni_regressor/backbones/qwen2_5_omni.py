"""Qwen2.5-Omni (3B, 7B): the Thinker of `Qwen/Qwen2.5-Omni-7B` and `-3B`.

7B values: the released checkpoint's `thinker_config` (checked against ../shared/STACK-NOTES.md; the bare
`Qwen2_5OmniThinkerConfig` defaults differ in the vision width). 3B values: the public 3B config, not verified offline.
The released tokenizer, chat template and preprocessor settings (of Qwen2.5-Omni-7B; the 3B shares them) are written
out below, each with its source (`released_files`).
"""

from transformers import (
    Qwen2_5OmniConfig,
    Qwen2_5OmniForConditionalGeneration,
    Qwen2_5OmniProcessor,
    Qwen2_5OmniThinkerForConditionalGeneration,
)

from modeling_omni_regressor import Qwen2_5OmniForSentimentRegression

from .base import LORA_PROJECTIONS, BackboneSpec

TOKEN_IDS = {
    "audio_token_index": 151646,
    "audio_start_token_id": 151647,
    "audio_end_token_id": 151648,
    "image_token_index": 151655,
    "video_token_index": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "user_token_id": 872,
}

_AUDIO_ENCODER = {
    "num_mel_bins": 128,
    "encoder_layers": 32,
    "encoder_attention_heads": 20,
    "encoder_ffn_dim": 5120,
    "d_model": 1280,
    "max_source_positions": 1500,
    "n_window": 100,
}
_VISION_ENCODER = {
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
_ROPE = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]}

ARCHITECTURES = {
    "7b": {
        "text_config": {
            "vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
            "num_attention_heads": 28, "num_key_value_heads": 4, "rope_parameters": _ROPE, "tie_word_embeddings": False,
        },
        "audio_config": {**_AUDIO_ENCODER, "output_dim": 3584},
        "vision_config": {**_VISION_ENCODER, "out_hidden_size": 3584},
        **TOKEN_IDS,
    },
    "3b": {
        "text_config": {
            "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
            "num_attention_heads": 16, "num_key_value_heads": 2, "rope_parameters": _ROPE, "tie_word_embeddings": False,
        },
        "audio_config": {**_AUDIO_ENCODER, "output_dim": 2048},
        "vision_config": {**_VISION_ENCODER, "out_hidden_size": 2048},
        **TOKEN_IDS,
    },
    # Small enough for CPU tests: ~0.2 M parameters, a text+audio+video forward in milliseconds.
    "tiny": {
        "text_config": {
            "vocab_size": 1024, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 32768,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "tie_word_embeddings": False,
        },
        "audio_config": {
            "num_mel_bins": 128, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64,
            "d_model": 32, "max_source_positions": 1500, "n_window": 100, "output_dim": 64,
        },
        "vision_config": {
            "depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "patch_size": 14,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112, "fullatt_block_indexes": [0],
            "out_hidden_size": 64,
        },
        **TOKEN_IDS,
    },
}


def tiny_original_config(thinker_config, tokenizer=None) -> Qwen2_5OmniConfig:
    """A released-layout config (Thinker + Talker + Token2Wav) around a tiny Thinker config."""
    token_ids = {
        key: getattr(thinker_config, key)
        for key in ("audio_token_index", "image_token_index", "video_token_index", "audio_start_token_id",
                    "audio_end_token_id", "vision_start_token_id", "vision_end_token_id")
    }
    talker = {
        "vocab_size": 640, "embedding_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        "tts_codec_start_token_id": 90, "tts_codec_end_token_id": 91, "tts_codec_pad_token_id": 92,
        "tts_codec_mask_token_id": 93, "tts_text_start_token_id": 600, "tts_text_end_token_id": 601,
        "tts_text_pad_token_id": 602, **token_ids,
    }
    token2wav = {
        "dit_config": {
            "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "head_dim": 16, "emb_dim": 16,
            "num_embeds": 96, "enc_emb_dim": 16, "enc_dim": 16, "enc_channels": [16, 16, 16, 16, 48],
            "enc_attention_channels": 8, "enc_se_channels": 8, "look_ahead_layers": [0], "look_backward_layers": [0],
        },
        "bigvgan_config": {
            "upsample_initial_channel": 16, "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]],
            "upsample_rates": [2, 2], "upsample_kernel_sizes": [4, 4],
        },
    }
    return Qwen2_5OmniConfig(thinker_config=thinker_config, talker_config=talker, token2wav_config=token2wav)


# ---------------------------------------------------------------------------------------------------------------------
# Released files, replicated offline: `BackboneSpec.released_files` below; `omni_regressor.released_tokenizer` builds
# the real tokenizer and processor from them. Sources are given next to each value; where a value could not be read
# from a copy of the released file it is marked INFERRED.
#
# Added tokens: (id, content, special). Every added token is lstrip/rstrip/single_word/normalized = False.
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

# The named special tokens that `Qwen2_5OmniProcessor.__init__` reads from the tokenizer (transformers 5.24
# processing_qwen2_5_omni.py:144-153): image_token, audio_token, video_token (+ their *_id), vision_bos_token,
# vision_eos_token, audio_bos_token, audio_eos_token.
QWEN2_5_OMNI_NAMED_TOKENS = {
    "image_token": "<|IMAGE|>",
    "audio_token": "<|AUDIO|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}

# tokenizer_config.json fields besides the added tokens: eos <|im_end|>, pad <|endoftext|>, bos/unk null,
# model_max_length 32768, clean_up_tokenization_spaces false, processor_class Qwen2_5OmniProcessor (third-party report
# of the released tokenizer_config.json, find_string "`tokenizer_config.json`** — `Qwen2Tokenizer` (fast)").
# padding_side "left" (the processor also forces `text_kwargs = {"padding_side": "left"}`).
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

# Chat template: Qwen2.5-Omni-7B chat_template.json, verbatim. Source: huggingface/transformers
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

# Preprocessor settings: the released preprocessor_config.json as quoted (identically) by the AVoCaDO and
# TimeChat-Captioner model reports (fine-tunes that ship it unmodified; find_string '"chunk_length": 300').
# Patch 14, merge 2 -> factor 28.
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


QWEN2_5_OMNI = BackboneSpec(
    name="qwen2.5-omni",
    original_model_type="qwen2_5_omni",
    thinker_model_type="qwen2_5_omni_thinker",
    regressor_class=Qwen2_5OmniForSentimentRegression,
    generative_class=Qwen2_5OmniThinkerForConditionalGeneration,
    original_class=Qwen2_5OmniForConditionalGeneration,
    processor_class=Qwen2_5OmniProcessor,
    tower_modules=("audio_tower", "visual"),
    lora_targets={
        # The paper's names, wherever they occur in the Thinker (they also hit audio q/k/v and the vision MLP).
        "paper": LORA_PROJECTIONS,
        # The same names inside the language model only.
        "language-only": r".*language_model\.layers\.\d+\.(self_attn|mlp)\.(" + "|".join(LORA_PROJECTIONS) + r")",
    },
    architectures=ARCHITECTURES,
    speech_modules=("talker", "token2wav"),
    token_id_fields={
        "audio_token": "audio_token_index", "image_token": "image_token_index", "video_token": "video_token_index",
        "audio_bos_token": "audio_start_token_id", "audio_eos_token": "audio_end_token_id",
        "vision_bos_token": "vision_start_token_id", "vision_eos_token": "vision_end_token_id",
    },
    tiny_original_config=tiny_original_config,
    source="Qwen/Qwen2.5-Omni-7B config.json (thinker_config); 3B from Qwen/Qwen2.5-Omni-3B, not verified offline",
    display_title="Qwen2.5-Omni",
    aliases=("qwen2_5_omni", "qwen2.5-omni-7b"),
    image_factor=28,
    extractor_seconds=300.0,
    released_files={
        "added_tokens": QWEN2_5_OMNI_ADDED_TOKENS,
        "named_tokens": QWEN2_5_OMNI_NAMED_TOKENS,
        "tokenizer_config": QWEN2_5_OMNI_TOKENIZER_CONFIG,
        "chat_template": QWEN2_5_OMNI_CHAT_TEMPLATE,
        "preprocessor": QWEN2_5_OMNI_PREPROCESSOR,
        "processor_class": Qwen2_5OmniProcessor,
    },
    random_weights_streamable=True,  # random_checkpoint writes the layout transformers saves its Thinker in
)
