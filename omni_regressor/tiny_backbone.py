"""Writes a tiny random Qwen2.5-Omni checkpoint in the original layout, with a matching processor, offline.

The checkpoint is a real `Qwen2_5OmniForConditionalGeneration` (Thinker, Talker and Token2Wav) of the `tiny` shape,
saved by transformers itself, so every loading path of the package meets the same files a user downloads from the
Hub. The processor is a real `Qwen2_5OmniProcessor` with a byte-level BPE tokenizer trained locally on a small
corpus, the Qwen special tokens declared by name, a Whisper feature extractor with a short chunk and Qwen2-VL
image/video processors with small pixel limits.
"""

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    Qwen2_5OmniConfig,
    Qwen2_5OmniForConditionalGeneration,
    Qwen2_5OmniProcessor,
    Qwen2TokenizerFast,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
    WhisperFeatureExtractor,
)

from .architectures import thinker_config_for

# Named special tokens that `Qwen2_5OmniProcessor` reads from the tokenizer, as in the real checkpoint.
NAMED_SPECIAL_TOKENS = {
    "image_token": "<|IMAGE|>",
    "audio_token": "<|AUDIO|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}
CONTROL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# The same shape of template as the real checkpoint's: audio and video placeholders inside the user turn; the audio
# of a video is interleaved into the video placeholder by the processor (`load_audio_from_video`).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'video' %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif content['type'] == 'image' %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TOKENIZER_CORPUS = [
    "You are a careful annotator of sentiment in video clips.",
    "Rate the sentiment of this clip on a continuous scale from -3 (strongly negative) to 3 (strongly positive).",
    "Answer with one number. Score: -3 -2.5 -2 -1.5 -1 -0.5 0 0.5 1 1.5 2 2.5 3 +1 +2 +3 /3 (positive) negative.",
    "Transcribe the speech in this clip.",
    "i really loved this movie it was wonderful great amazing brilliant fun happy beautiful excellent",
    "i really hated this movie it was terrible awful boring dull sad horrible disappointing bad",
    "it was okay i guess the plot was fine the acting was average nothing special",
    "the system user assistant speaker said what is shown how it is said",
    "这部电影非常好看 我很喜欢 太糟糕了 一般般",
]


def build_tiny_tokenizer(vocab_size: int = 900) -> Qwen2TokenizerFast:
    """A byte-level BPE tokenizer trained on a fixed corpus (deterministic), with the Qwen special tokens."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
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
        extra_special_tokens=NAMED_SPECIAL_TOKENS,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": CONTROL_TOKENS}, replace_extra_special_tokens=False)
    tokenizer.padding_side = "left"
    tokenizer.model_max_length = 32768
    return tokenizer


def build_tiny_processor(tokenizer: Qwen2TokenizerFast | None = None) -> Qwen2_5OmniProcessor:
    tokenizer = tokenizer or build_tiny_tokenizer()
    pixel_limits = {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 16}
    return Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(**pixel_limits),
        video_processor=Qwen2VLVideoProcessor(**pixel_limits),
        # The real checkpoint pads every clip to 300 s (30 000 frames); 30 s keeps CPU tests fast.
        feature_extractor=WhisperFeatureExtractor(feature_size=128, chunk_length=30),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def thinker_config_for_tokenizer(arch: str, tokenizer):
    """A Thinker config of a named shape whose special-token ids (and, for `tiny`, vocabulary) fit `tokenizer`."""
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in NAMED_SPECIAL_TOKENS.items()}
    token_ids = {
        "audio_token_index": ids["audio_token"],
        "image_token_index": ids["image_token"],
        "video_token_index": ids["video_token"],
        "audio_start_token_id": ids["audio_bos_token"],
        "audio_end_token_id": ids["audio_eos_token"],
        "vision_start_token_id": ids["vision_bos_token"],
        "vision_end_token_id": ids["vision_eos_token"],
        "user_token_id": tokenizer.convert_tokens_to_ids("user") if "user" in tokenizer.get_vocab() else 0,
    }
    thinker = thinker_config_for(arch, **token_ids)
    if arch == "tiny":
        thinker.text_config.vocab_size = 64 * ((len(tokenizer) + 63) // 64)
    thinker.text_config.pad_token_id = tokenizer.pad_token_id
    thinker.text_config.eos_token_id = tokenizer.eos_token_id
    return thinker


def tiny_omni_config(tokenizer) -> Qwen2_5OmniConfig:
    """An original-layout Qwen2.5-Omni config of the `tiny` shape whose token ids are those of `tokenizer`."""
    thinker = thinker_config_for_tokenizer("tiny", tokenizer)
    token_ids = {
        key: getattr(thinker, key)
        for key in (
            "audio_token_index", "image_token_index", "video_token_index", "audio_start_token_id",
            "audio_end_token_id", "vision_start_token_id", "vision_end_token_id",
        )
    }
    talker = {
        "vocab_size": 640,
        "embedding_size": 64,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        "tts_codec_start_token_id": 90,
        "tts_codec_end_token_id": 91,
        "tts_codec_pad_token_id": 92,
        "tts_codec_mask_token_id": 93,
        "tts_text_start_token_id": 600,
        "tts_text_end_token_id": 601,
        "tts_text_pad_token_id": 602,
        **token_ids,
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
    return Qwen2_5OmniConfig(thinker_config=thinker, talker_config=talker, token2wav_config=token2wav)


def write_tiny_backbone(output_dir: str | Path, seed: int = 0) -> Path:
    """Writes `config.json`, safetensors weights and the processor files of a tiny Qwen2.5-Omni into `output_dir`.

    The same seed writes the same weights and the same tokenizer.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    processor = build_tiny_processor()
    config = tiny_omni_config(processor.tokenizer)
    torch.manual_seed(seed)
    model = Qwen2_5OmniForConditionalGeneration(config)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir


def write_random_thinker(arch: str, output_dir: str | Path, seed: int = 0, dtype=torch.bfloat16) -> Path:
    """A Thinker-only checkpoint of a named shape (`tiny`, `3b`, `7b`) with random weights and the tiny processor.

    For benchmarks of memory and latency at the real shapes without downloading weights: the loading, quantisation
    and training code that runs on it is the code that runs on the released checkpoints. Built on the GPU when there
    is one (a 7B Thinker initialises in seconds there).
    """
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    processor = build_tiny_processor()
    config = thinker_config_for_tokenizer(arch, processor.tokenizer)
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        # Built directly in `dtype`: a 7B Thinker in fp32 would need twice the memory for nothing.
        model = Qwen2_5OmniThinkerForConditionalGeneration._from_config(config, dtype=dtype)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    del model
    return output_dir
