"""Qwen3-Omni: the Thinker of `Qwen/Qwen3-Omni-30B-A3B-Instruct` (and `-Thinking`), a 48-layer MoE (128 experts, 8 per
token) with a 27-block vision encoder (patch 16, DeepStack) and a 32-layer audio encoder.

Preset values: the released `config.json` (`thinker_config`, HF revision 26291f79 of Qwen3-Omni-30B-A3B-Instruct),
written in transformers 5's form. `Qwen3OmniMoeThinkerConfig()` defaults are NOT the released values.

Quantisation and LoRA of the experts: the regressor keeps every expert as three `nn.Linear` modules (the released
checkpoint's own layout, see `Qwen3OmniMoeLinearExperts` in experts_omni_regressor.py), so 4-bit NF4 covers the
experts (~29 of the 30 B parameters) and LoRA presets name them like any projection. The routers (`mlp.gate`, a
2048x128 matrix per layer) are not linears: they stay in bf16 and frozen, so fine-tuning never moves the routing.
"""

from transformers import (
    Qwen3OmniMoeConfig,
    Qwen3OmniMoeForConditionalGeneration,
    Qwen3OmniMoeProcessor,
    Qwen3OmniMoeThinkerForConditionalGeneration,
)

from modeling_omni_regressor import Qwen3OmniMoeForSentimentRegression

from ..released_tokenizer import (
    QWEN3_OMNI_ADDED_TOKENS, QWEN3_OMNI_CHAT_TEMPLATE, QWEN3_OMNI_NAMED_TOKENS, QWEN3_OMNI_PREPROCESSOR,
    QWEN3_OMNI_TOKENIZER_CONFIG,
)
from .base import LORA_PROJECTIONS, BackboneSpec

TOKEN_IDS = {
    "audio_token_id": 151675,
    "image_token_id": 151655,
    "video_token_id": 151656,
    "audio_start_token_id": 151669,
    "audio_end_token_id": 151670,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "user_token_id": 872,
    "position_id_per_seconds": 13,
    "seconds_per_chunk": 2,
}

ARCHITECTURES = {
    "30b-a3b": {
        "text_config": {
            "vocab_size": 152064, "hidden_size": 2048, "intermediate_size": 768, "moe_intermediate_size": 768,
            "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
            "num_experts": 128, "num_experts_per_tok": 8, "decoder_sparse_step": 1, "mlp_only_layers": [],
            "norm_topk_prob": True, "hidden_act": "silu", "rms_norm_eps": 1e-06, "max_position_embeddings": 65536,
            "rope_parameters": {
                "rope_type": "default", "rope_theta": 1000000, "mrope_section": [24, 20, 20], "interleaved": True,
                "mrope_interleaved": True,
            },
            "router_aux_loss_coef": 0.001, "use_qk_norm": True, "tie_word_embeddings": False,
        },
        "audio_config": {
            "num_mel_bins": 128, "d_model": 1280, "encoder_layers": 32, "encoder_attention_heads": 20,
            "encoder_ffn_dim": 5120, "output_dim": 2048, "downsample_hidden_size": 480, "conv_chunksize": 500,
            "n_window": 50, "n_window_infer": 800, "max_source_positions": 1500,
        },
        "vision_config": {
            "depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16,
            "hidden_act": "gelu_pytorch_tanh", "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "out_hidden_size": 2048, "num_position_embeddings": 2304, "deepstack_visual_indexes": [8, 16, 24],
        },
        "tie_word_embeddings": False,
        **TOKEN_IDS,
    },
    # Small enough for CPU tests: 2 MoE layers of 4 experts (top 2), tiny towers.
    "tiny": {
        "text_config": {
            "vocab_size": 1024, "hidden_size": 64, "intermediate_size": 64, "moe_intermediate_size": 32,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "num_experts": 4, "num_experts_per_tok": 2, "decoder_sparse_step": 1, "mlp_only_layers": [],
            "norm_topk_prob": True, "max_position_embeddings": 32768,
            "rope_parameters": {
                "rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 2, 2], "interleaved": True,
                "mrope_interleaved": True,
            },
            "use_qk_norm": True, "tie_word_embeddings": False,
        },
        "audio_config": {
            "num_mel_bins": 128, "d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64, "output_dim": 64, "downsample_hidden_size": 8, "conv_chunksize": 500,
            "n_window": 50, "n_window_infer": 800, "max_source_positions": 1500,
        },
        "vision_config": {
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "patch_size": 16,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 64, "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0, 1],
        },
        "tie_word_embeddings": False,
        **TOKEN_IDS,
    },
}


def tiny_original_config(thinker_config, tokenizer) -> Qwen3OmniMoeConfig:
    """A released-layout config (Thinker + Talker + Code2Wav) around a tiny Thinker config."""
    ids = {
        key: getattr(thinker_config, key)
        for key in ("audio_token_id", "image_token_id", "video_token_id", "audio_start_token_id", "vision_start_token_id")
    }
    talker = {
        **ids,
        "position_id_per_seconds": 13, "seconds_per_chunk": 2,
        "spatial_merge_size": 2,  # read by the Talker's __init__ but not a declared config field
        "thinker_hidden_size": thinker_config.text_config.hidden_size, "accept_hidden_layer": 1, "num_code_groups": 4,
        "codec_pad_id": 50, "codec_bos_id": 51, "codec_eos_token_id": 52, "codec_nothink_id": 53,
        "codec_think_bos_id": 54, "codec_think_eos_id": 55, "speaker_id": {"chelsie": 60},
        "text_config": {
            "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
            "shared_expert_intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 1, "head_dim": 16, "num_experts": 4, "num_experts_per_tok": 2,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 2, 2],
                                "interleaved": True},
        },
        "code_predictor_config": {
            "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16, "num_code_groups": 4,
        },
    }
    code2wav = {
        "codebook_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 2, "num_quantizers": 4, "decoder_dim": 16,
        "upsample_rates": [2, 2], "upsampling_ratios": [2, 2], "sliding_window": 8, "max_position_embeddings": 256,
    }
    return Qwen3OmniMoeConfig(
        thinker_config=thinker_config, talker_config=talker, code2wav_config=code2wav,
        im_start_token_id=tokenizer.convert_tokens_to_ids("<|im_start|>"),
        im_end_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        # The speech generator's own ids only matter for speech output; kept inside its small vocabulary.
        tts_pad_token_id=0, tts_bos_token_id=1, tts_eos_token_id=2, system_token_id=3, user_token_id=4,
        assistant_token_id=5,
    )


QWEN3_OMNI = BackboneSpec(
    name="qwen3-omni",
    original_model_type="qwen3_omni_moe",
    thinker_model_type="qwen3_omni_moe_thinker",
    regressor_class=Qwen3OmniMoeForSentimentRegression,
    generative_class=Qwen3OmniMoeThinkerForConditionalGeneration,
    original_class=Qwen3OmniMoeForConditionalGeneration,
    processor_class=Qwen3OmniMoeProcessor,
    tower_modules=("audio_tower", "visual"),
    lora_targets={
        # The paper's names wherever they occur: attention, every expert's projections, the audio encoder's q/k/v.
        "paper": LORA_PROJECTIONS,
        "language-only": (
            r".*language_model\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)"
            r"|mlp\.experts\.\d+\.(gate_proj|up_proj|down_proj))"
        ),
        # Attention projections of the language model only: ~27 M LoRA parameters instead of ~1.7 B.
        "attention-only": r".*language_model\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|o_proj)",
    },
    architectures=ARCHITECTURES,
    speech_modules=("talker", "code2wav"),
    token_id_fields={
        "audio_token": "audio_token_id", "image_token": "image_token_id", "video_token": "video_token_id",
        "audio_bos_token": "audio_start_token_id", "audio_eos_token": "audio_end_token_id",
        "vision_bos_token": "vision_start_token_id", "vision_eos_token": "vision_end_token_id",
    },
    tiny_original_config=tiny_original_config,
    source="Qwen/Qwen3-Omni-30B-A3B-Instruct config.json (thinker_config), HF revision 26291f79",
    display_title="Qwen3-Omni",
    aliases=("qwen3_omni_moe", "qwen3-omni-30b-a3b"),
    image_factor=32,  # vision patch 16 x merge 2
    extractor_seconds=300.0,
    released_files={
        "added_tokens": QWEN3_OMNI_ADDED_TOKENS,
        "named_tokens": QWEN3_OMNI_NAMED_TOKENS,
        "tokenizer_config": QWEN3_OMNI_TOKENIZER_CONFIG,
        "chat_template": QWEN3_OMNI_CHAT_TEMPLATE,
        "preprocessor": QWEN3_OMNI_PREPROCESSOR,
        "processor_class": Qwen3OmniMoeProcessor,
    },
)
