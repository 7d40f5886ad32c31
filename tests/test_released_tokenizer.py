"""The offline replicas of the released Qwen2.5-Omni-7B / Qwen3-Omni-30B-A3B tokenizers, templates and processors.

Needs `dashscope` (dev dependency: its wheel ships the Qwen BPE ranks); skipped without it. The first run derives the
tokenizers (a few seconds each) and caches them; later runs load the cache.
"""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoProcessor, Qwen2_5OmniProcessor, Qwen3OmniMoeProcessor
from transformers.models.qwen2_5_omni import processing_qwen2_5_omni
from transformers.models.qwen3_omni_moe import processing_qwen3_omni_moe
from transformers.utils.chat_template_utils import render_jinja_template

from omni_regressor import released_tokenizer as rt
from omni_regressor.backbones import BACKBONES as REGISTRY
from omni_regressor.backbones import get_backbone

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("dashscope") is None, reason="needs the dashscope wheel's qwen.tiktoken (pip install dashscope)"
)

BACKBONES = [name for name, spec in REGISTRY.items() if spec.released_files is not None]  # those with a replica
QWEN2_5_OMNI_TEMPLATE = get_backbone("qwen2.5-omni").released_files["chat_template"]
QWEN3_OMNI_TEMPLATE = get_backbone("qwen3-omni").released_files["chat_template"]
SYSTEM = {"role": "system", "content": [{"type": "text", "text": "You are a careful annotator of sentiment."}]}
TASK = {"type": "text", "text": 'Rate the sentiment from -3 to 3.\nTranscript: "i really loved it"'}


@pytest.fixture(scope="module")
def tokenizers():
    return {name: rt.build_qwen_tokenizer(name) for name in BACKBONES}


@pytest.fixture(scope="module")
def processors(tokenizers):
    return {name: rt.build_released_processor(name, tokenizers[name]) for name in BACKBONES}


@pytest.fixture(scope="module")
def media():
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, size=(4, 360, 640, 3), dtype=np.uint8)
    audio = (0.1 * rng.standard_normal(16000 * 8)).astype(np.float32)
    return video, audio


def render(template, conversation, add_generation_prompt=True):
    rendered, _ = render_jinja_template(
        conversations=[conversation], chat_template=template, add_generation_prompt=add_generation_prompt
    )
    return rendered[0]


def test_ranks_file_is_located_without_importing_dashscope():
    import sys

    imported_before = "dashscope" in sys.modules
    path = rt.qwen_ranks_path()
    assert path.name == "qwen.tiktoken" and path.parent.name == "resources"
    assert len(path.read_bytes().splitlines()) == 151643
    assert ("dashscope" in sys.modules) == imported_before


def test_backbone_files_hold_their_released_data_without_the_builder():
    # A backbone is one file: the registry imports no builder (the builder imports the registry, so no cycle), and the
    # builder's by-name view of the released files follows the registry.
    code = "import sys, omni_regressor.backbones; print('omni_regressor.released_tokenizer' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    assert list(rt.BACKBONES) == BACKBONES
    assert all(rt.BACKBONES[name] is get_backbone(name).released_files for name in BACKBONES)


def test_missing_dashscope_names_the_install_command(monkeypatch):
    monkeypatch.setattr(rt.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install dashscope"):
        rt.qwen_ranks_path()


@pytest.mark.parametrize("backbone", BACKBONES)
def test_added_tokens_sit_at_the_released_ids(tokenizers, backbone):
    tokenizer = tokenizers[backbone]
    table = get_backbone(backbone).released_files["added_tokens"]
    assert len(tokenizer) == table[-1][0] + 1 == {"qwen2.5-omni": 151665, "qwen3-omni": 151676}[backbone]
    for token_id, content, special in table:
        assert tokenizer.convert_ids_to_tokens(token_id) == content
        assert tokenizer.convert_tokens_to_ids(content) == token_id
        assert tokenizer.added_tokens_decoder[token_id].special is special
        assert tokenizer(content, add_special_tokens=False).input_ids == [token_id]
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|im_end|>", 151645)
    assert (tokenizer.pad_token, tokenizer.pad_token_id) == ("<|endoftext|>", 151643)
    assert tokenizer.bos_token is None and tokenizer.unk_token is None
    assert tokenizer.padding_side == "left"


@pytest.mark.parametrize(
    "backbone, expected",
    [
        (
            "qwen2.5-omni",
            {"image_token": 151655, "audio_token": 151646, "video_token": 151656, "vision_bos_token": 151652,
             "vision_eos_token": 151653, "audio_bos_token": 151647, "audio_eos_token": 151648},
        ),
        (
            "qwen3-omni",
            {"image_token": 151655, "audio_token": 151675, "video_token": 151656, "vision_bos_token": 151652,
             "vision_eos_token": 151653, "audio_bos_token": 151669, "audio_eos_token": 151670},
        ),
    ],
)  # fmt: skip
def test_named_tokens_the_processors_read(tokenizers, backbone, expected):
    tokenizer = tokenizers[backbone]
    for name, token_id in expected.items():
        assert getattr(tokenizer, name) == get_backbone(backbone).released_files["named_tokens"][name]
        assert tokenizer.convert_tokens_to_ids(getattr(tokenizer, name)) == token_id
    assert tokenizer.image_token_id == expected["image_token"]
    assert tokenizer.audio_token_id == expected["audio_token"]
    assert tokenizer.video_token_id == expected["video_token"]


@pytest.mark.parametrize("backbone", BACKBONES)
def test_qwen_bpe_ids_and_digit_splitting(tokenizers, backbone):
    tokenizer = tokenizers[backbone]
    assert tokenizer("user").input_ids == [872]
    assert tokenizer("system").input_ids == [8948]
    assert tokenizer("assistant").input_ids == [77091]
    assert tokenizer("\n").input_ids == [198]
    assert tokenizer("You are a helpful assistant.").input_ids == [2610, 525, 264, 10950, 17847, 13]
    # The Qwen2 regex isolates every digit: numbers are written digit by digit.
    assert tokenizer.convert_ids_to_tokens(tokenizer("-1.5").input_ids) == ["-", "1", ".", "5"]
    assert len(tokenizer("2024").input_ids) == 4
    assert tokenizer("+3").input_ids == [10, 18]


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize(
    "text",
    [
        "I really loved this movie, it was wonderful!",
        "这部电影非常好看，我很喜欢。太糟糕了！",
        "Mixed 中文 and English, numbers -2.5 / 3, tabs\tand\nnew lines  end",
        "emoji 😀 and accents café naïve",
    ],
)
def test_round_trip(tokenizers, backbone, text):
    tokenizer = tokenizers[backbone]
    ids = tokenizer(text).input_ids
    assert tokenizer.decode(ids) == text
    assert all(i < 151643 for i in ids)  # plain text never produces added tokens


def test_qwen2_5_template_matches_the_released_processor_ids(tokenizers):
    # huggingface/transformers tests/models/qwen2_5_omni/test_modeling_qwen2_5_omni.py runs the Hub processor on this
    # conversation (no system turn) and expects these first 17 ids: the template injects the default system prompt.
    conversation = [{"role": "user", "content": [{"type": "audio"}, {"type": "image"}, {"type": "text", "text": "x"}]}]
    prompt = render(QWEN2_5_OMNI_TEMPLATE, conversation)
    expected = [151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198, 151647, 151646, 151648]
    assert tokenizers["qwen2.5-omni"](prompt).input_ids[:17] == expected


def test_qwen3_template_has_no_default_system_turn(tokenizers):
    # Same source for Qwen3-Omni (tests/models/qwen3_omni_moe/test_modeling_qwen3_omni_moe.py): no system turn.
    conversation = [{"role": "user", "content": [{"type": "audio"}, {"type": "image"}, {"type": "text", "text": "x"}]}]
    prompt = render(QWEN3_OMNI_TEMPLATE, conversation)
    assert prompt.startswith("<|im_start|>user\n<|audio_start|><|audio_pad|><|audio_end|><|vision_start|><|image_pad|>")
    assert tokenizers["qwen3-omni"](prompt).input_ids[:5] == [151644, 872, 198, 151669, 151675]
    with_system = [SYSTEM, {"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": "What sound?"}]}]
    assert render(QWEN3_OMNI_TEMPLATE, with_system) == (
        "<|im_start|>system\nYou are a careful annotator of sentiment.<|im_end|>\n<|im_start|>user\n"
        "<|audio_start|><|audio_pad|><|audio_end|>What sound?<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("answer", [None, "2.5"])
def test_released_qwen2_5_template_renders_our_prompt_shape(answer):
    conversation = [SYSTEM, {"role": "user", "content": [{"type": "video"}, TASK]}]
    if answer is not None:
        conversation.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    released = render(QWEN2_5_OMNI_TEMPLATE, conversation, add_generation_prompt=answer is None)
    expected = (
        "<|im_start|>system\nYou are a careful annotator of sentiment.<|im_end|>\n<|im_start|>user\n"
        f"<|vision_bos|><|VIDEO|><|vision_eos|>{TASK['text']}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert released == (expected if answer is None else expected + f"{answer}<|im_end|>\n")


def test_released_qwen2_5_template_adds_its_default_system_turn_when_none_leads():
    conversation = [{"role": "user", "content": [{"type": "audio"}, TASK]}]
    assert render(QWEN2_5_OMNI_TEMPLATE, conversation).startswith(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|audio_bos|><|AUDIO|><|audio_eos|>"
    )


@pytest.mark.parametrize("backbone, tokenizer", [("qwen2.5-omni", "small"), ("qwen3-omni", "small"), ("qwen2.5-omni", "qwen")])
def test_test_backbones_carry_the_released_template_and_preprocessor_settings(backbone, tokenizer, tmp_path):
    from transformers import AutoProcessor

    from omni_regressor.tiny_backbone import build_processor

    build_processor(backbone, tokenizer).save_pretrained(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    released = get_backbone(backbone).released_files
    assert processor.chat_template == released["chat_template"]
    extractor = processor.feature_extractor
    assert (extractor.feature_size, extractor.hop_length, extractor.n_fft, extractor.chunk_length) == (128, 160, 400, 300)
    vision = released["preprocessor"]["image_processor"]
    assert processor.video_processor.patch_size == vision["patch_size"] and processor.video_processor.merge_size == 2
    assert processor.video_processor.temporal_patch_size == 2
    for name, token in released["named_tokens"].items():
        assert getattr(processor.tokenizer, name) == token


def _expected_counts(processor, outputs):
    """Token counts by the processors' own rules: merged patches per video grid; audio-encoder output lengths."""
    merge = processor.video_processor.merge_size
    video = int(outputs["video_grid_thw"].prod(dim=-1).sum()) // merge**2
    frames = outputs["feature_attention_mask"].sum(-1)
    if isinstance(processor, Qwen2_5OmniProcessor):
        audio = int(processing_qwen2_5_omni._get_feat_extract_output_lengths(frames).sum())
    else:
        audio = int(processing_qwen3_omni_moe._get_feat_extract_output_lengths(frames).sum())
    return video, audio


@pytest.mark.parametrize("backbone", BACKBONES)
def test_processor_accepts_the_template_with_video_and_audio(processors, media, backbone):
    processor = processors[backbone]
    assert isinstance(processor, {"qwen2.5-omni": Qwen2_5OmniProcessor, "qwen3-omni": Qwen3OmniMoeProcessor}[backbone])
    video, audio = media
    conversation = [SYSTEM, {"role": "user", "content": [{"type": "video"}, TASK]}]
    prompt = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    outputs = processor(
        text=[prompt],
        videos=[video],
        audio=[audio],
        load_audio_from_video=True,
        audio_from_video_indices=[0],
        videos_kwargs={"fps": 2.0, "do_sample_frames": False},
        return_tensors="pt",
    )
    ids = outputs["input_ids"][0]
    video_tokens, audio_tokens = _expected_counts(processor, outputs)
    assert int((ids == processor.video_token_id).sum()) == video_tokens
    assert int((ids == processor.audio_token_id).sum()) == audio_tokens
    helper = processor._get_num_multimodal_tokens(video_sizes=[video.shape[:3]], audio_lengths=[len(audio)])
    assert (helper["num_video_tokens"], helper["num_audio_tokens"]) == ([video_tokens], [audio_tokens])
    if backbone == "qwen2.5-omni":
        # 640x360 -> 644x364 (factor 28, 128..768 tokens per frame): 13*23 = 299 tokens per 2 frames; 25 audio tokens/s.
        assert outputs["video_grid_thw"].tolist() == [[2, 26, 46]] and (video_tokens, audio_tokens) == (598, 200)
        # The released chunk_length 300 pads every clip to 30 000 frames.
        assert tuple(outputs["input_features"].shape) == (1, 128, 30000)
    else:
        # Patch 16 (factor 32): 640x360 -> 640x352, 11*20 = 220 tokens per 2 frames; 13 audio tokens per 100 frames.
        assert outputs["video_grid_thw"].tolist() == [[2, 22, 40]] and (video_tokens, audio_tokens) == (440, 104)
        # Qwen3OmniMoeProcessor pads audio to the longest clip, not to chunk_length.
        assert tuple(outputs["input_features"].shape) == (1, 128, 800)


def test_qwen2_5_max_length_shortens_the_features(processors, media):
    processor = processors["qwen2.5-omni"]
    _, audio = media
    prompt = render(QWEN2_5_OMNI_TEMPLATE, [SYSTEM, {"role": "user", "content": [{"type": "audio"}, TASK]}])
    padded = processor(text=[prompt], audio=[audio], return_tensors="pt")
    clipped = processor(text=[prompt], audio=[audio], audio_kwargs={"max_length": len(audio)}, return_tensors="pt")
    assert tuple(padded["input_features"].shape) == (1, 128, 30000)
    assert tuple(clipped["input_features"].shape) == (1, 128, 800)
    assert torch.equal(padded["input_ids"], clipped["input_ids"])
    # Same features except the last frame (its STFT window reaches into the padding).
    torch.testing.assert_close(padded["input_features"][..., :799], clipped["input_features"][..., :799])


@pytest.mark.parametrize("backbone", BACKBONES)
def test_processor_round_trips_offline(processors, media, backbone, tmp_path):
    processor = processors[backbone]
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path, local_files_only=True)
    assert type(reloaded) is type(processor)
    assert reloaded.chat_template == processor.chat_template
    assert len(reloaded.tokenizer) == len(processor.tokenizer)
    assert reloaded.tokenizer.audio_token_id == processor.tokenizer.audio_token_id
    assert reloaded.feature_extractor.chunk_length == 300
    assert reloaded.video_processor.patch_size == {"qwen2.5-omni": 14, "qwen3-omni": 16}[backbone]
    video, _ = media
    prompt = processor.apply_chat_template(
        [SYSTEM, {"role": "user", "content": [{"type": "video"}, TASK]}], add_generation_prompt=True, tokenize=False
    )
    kwargs = {"text": [prompt], "videos": [video], "videos_kwargs": {"fps": 2.0}, "return_tensors": "pt"}
    assert torch.equal(reloaded(**kwargs)["input_ids"], processor(**kwargs)["input_ids"])
