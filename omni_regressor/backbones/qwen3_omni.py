"""Qwen3-Omni: the Thinker of `Qwen/Qwen3-Omni-30B-A3B-Instruct` (and `-Thinking`), a 48-layer MoE (128 experts, 8 per
token) with a 27-block vision encoder (patch 16, DeepStack) and a 32-layer audio encoder.

Preset values: the released `config.json` (`thinker_config`, HF revision 26291f79 of Qwen3-Omni-30B-A3B-Instruct),
written in transformers 5's form. `Qwen3OmniMoeThinkerConfig()` defaults are NOT the released values. The released
tokenizer, chat template and preprocessor settings are written out below, each with its source (`released_files`);
the released fields it shares with Qwen2.5-Omni (the Whisper feature extractor, the common tokenizer_config fields)
are taken from that backbone's file.

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

from .base import LORA_PROJECTIONS, BackboneSpec
from .qwen2_5_omni import QWEN2_5_OMNI_PREPROCESSOR, QWEN2_5_OMNI_TOKENIZER_CONFIG  # released fields both share

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


# ---------------------------------------------------------------------------------------------------------------------
# Released files, replicated offline: `BackboneSpec.released_files` below; `omni_regressor.released_tokenizer` builds
# the real tokenizer and processor from them. Sources are given next to each value; where a value could not be read
# from a copy of the released file it is marked INFERRED.
#
# Added tokens: (id, content, special). Every added token is lstrip/rstrip/single_word/normalized = False.
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

# The named special tokens that `Qwen3OmniMoeProcessor.__init__` reads from the tokenizer (transformers 5.24
# processing_qwen3_omni_moe.py:153-162): image_token, audio_token, video_token (+ their *_id), vision_bos_token,
# vision_eos_token, audio_bos_token, audio_eos_token.
QWEN3_OMNI_NAMED_TOKENS = {
    "image_token": "<|image_pad|>",
    "audio_token": "<|audio_pad|>",
    "video_token": "<|video_pad|>",
    "vision_bos_token": "<|vision_start|>",
    "vision_eos_token": "<|vision_end|>",
    "audio_bos_token": "<|audio_start|>",
    "audio_eos_token": "<|audio_end|>",
}

# tokenizer_config.json fields besides the added tokens: they follow the Qwen3 tokenizer_config (eos <|im_end|>,
# pad <|endoftext|>; the other fields as Qwen2.5-Omni's); model_max_length 65536 is INFERRED from the thinker's
# max_position_embeddings. padding_side "left" (the processor also forces `text_kwargs = {"padding_side": "left"}`).
QWEN3_OMNI_TOKENIZER_CONFIG = {
    **QWEN2_5_OMNI_TOKENIZER_CONFIG,
    "model_max_length": 65536,
    "processor_class": "Qwen3OmniMoeProcessor",
}

# Chat template: Qwen3-Omni-30B-A3B-Instruct chat_template.json, NOT VERBATIM. No copy of the released file was found in
# the searchable public corpus (GitHub code, docs, pages, issues). This is a RECONSTRUCTION of the Qwen3-VL-Instruct
# template (system/tools header, `content.type`-based multimodal rendering, add_vision_id counters) extended with the
# audio branch, and of the Qwen3 assistant/`reasoning_content` handling quoted from the released Qwen3-Omni template in
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

# Preprocessor settings: Qwen3-Omni-30B-A3B (Instruct @26291f79, Thinking, Captioner: same shape): third-party check of
# the three official repos' preprocessor_config.json (find_string '"processor_class": "Qwen3OmniMoeProcessor"'): Whisper
# 128 mel / 16 kHz / hop 160 / n_fft 400 / n_samples 4800000 (chunk_length 300) / nb_max_frames 30000;
# Qwen2VLImageProcessor patch 16, temporal 2, merge 2 (factor 32), min/max pixels 3136 / 12845056; no
# processor_config.json or video_preprocessor_config.json in those repos. image_mean/std 0.5 and
# dither/padding/return_attention_mask from a second report of the same file
# (find_string '"image_mean": [0.5, 0.5, 0.5]'). Note Qwen3OmniMoeProcessor pads audio to the longest clip
# (`audio_kwargs` padding=True, truncation=False), not to chunk_length like Qwen2.5-Omni.
QWEN3_OMNI_PREPROCESSOR = {
    "processor_class": "Qwen3OmniMoeProcessor",
    "feature_extractor": dict(QWEN2_5_OMNI_PREPROCESSOR["feature_extractor"]),  # the same Whisper extractor
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
