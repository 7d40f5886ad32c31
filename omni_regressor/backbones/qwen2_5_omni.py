"""Qwen2.5-Omni (3B, 7B): the Thinker of `Qwen/Qwen2.5-Omni-7B` and `-3B`.

7B values: the released checkpoint's `thinker_config` (checked against ../shared/STACK-NOTES.md; the bare
`Qwen2_5OmniThinkerConfig` defaults differ in the vision width). 3B values: the public 3B config, not verified offline.
"""

from transformers import (
    Qwen2_5OmniConfig,
    Qwen2_5OmniForConditionalGeneration,
    Qwen2_5OmniProcessor,
    Qwen2_5OmniThinkerForConditionalGeneration,
)

from modeling_omni_regressor import Qwen2_5OmniForSentimentRegression

from ..released_tokenizer import (
    QWEN2_5_OMNI_ADDED_TOKENS, QWEN2_5_OMNI_CHAT_TEMPLATE, QWEN2_5_OMNI_NAMED_TOKENS, QWEN2_5_OMNI_PREPROCESSOR,
    QWEN2_5_OMNI_TOKENIZER_CONFIG,
)
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
)
