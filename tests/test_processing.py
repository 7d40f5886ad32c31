"""The one processing path: prompts per modality subset, saved settings, collation, the Trainer collator."""

import itertools

import pytest
import torch

from configuration_omni_regressor import OmniRegressorConfig
from modeling_omni_regressor import Qwen2_5OmniForSentimentRegression
from omni_regressor.data import read_mmsa
from omni_regressor.media import MediaCache
from omni_regressor.processing import ClipEncoder, ProcessingSettings, modality_tag, parse_modalities

ALL_SUBSETS = [subset for size in (1, 2, 3) for subset in itertools.combinations(("text", "audio", "video"), size)]
SPECIAL_TOKENS = ("<|AUDIO|>", "<|VIDEO|>", "<|audio_bos|>", "<|vision_bos|>")


@pytest.fixture(scope="module")
def records(demo_dataset_dir):
    return read_mmsa(demo_dataset_dir)[0]


@pytest.fixture(scope="module")
def encoder(tiny_processor, tmp_path_factory):
    settings = ProcessingSettings(max_pixels=28 * 28 * 16)
    return ClipEncoder(tiny_processor, settings, media_cache=MediaCache(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def regressor(tiny_backbone_dir):
    return Qwen2_5OmniForSentimentRegression.from_pretrained(tiny_backbone_dir, head_hidden_size=16).eval()


def token_counts(encoded, tokenizer):
    ids = encoded["input_ids"][0].tolist()
    return {token: ids.count(tokenizer.convert_tokens_to_ids(token)) for token in SPECIAL_TOKENS}


@pytest.mark.parametrize("modalities", ALL_SUBSETS, ids=modality_tag)
def test_each_modality_subset_has_exactly_its_special_tokens_and_inputs(encoder, regressor, records, modalities):
    record = records[0]
    encoded = encoder.encode(record.text, encoder.decode(record.media_path), modalities)
    counts = token_counts(encoded, encoder.processor.tokenizer)
    has_audio, has_video = "audio" in modalities, "video" in modalities
    assert (counts["<|AUDIO|>"] > 0) == has_audio and (counts["<|audio_bos|>"] == 1) == has_audio
    assert (counts["<|VIDEO|>"] > 0) == has_video and (counts["<|vision_bos|>"] == 1) == has_video
    assert ("input_features" in encoded) == has_audio
    assert ("pixel_values_videos" in encoded) == has_video
    assert encoded["use_audio_in_video"] == (has_audio and has_video)
    prompt = encoder.processor.tokenizer.decode(encoded["input_ids"][0])
    assert (record.text in prompt) == ("text" in modalities)
    if has_video:
        grid = encoded["video_grid_thw"][0]
        assert counts["<|VIDEO|>"] == int(grid.prod()) // 4
    with torch.no_grad():
        output = regressor(**encoder.collate([encoded], labels=[record.label]))
    assert output.logits.shape == (1,) and torch.isfinite(output.logits).all() and torch.isfinite(output.loss)


def test_prompt_names_the_score_range_of_the_dataset(tiny_processor):
    encoder = ClipEncoder(tiny_processor, ProcessingSettings(modalities=("text",)), score_range=(-1.0, 1.0))
    prompt = tiny_processor.tokenizer.decode(encoder.encode("很好", None)["input_ids"][0])
    assert "from -1 (strongly negative) to 1 (strongly positive)" in prompt and "很好" in prompt


def test_settings_saved_with_a_model_reload_into_identical_input_tensors(tiny_backbone_dir, tiny_processor, records, tmp_path):
    settings = ProcessingSettings(
        modalities=("text", "video"), fps=4.0, max_frames=4, max_pixels=28 * 28 * 8, task_prompt="Score it from {low} to {high}."
    )
    original = ClipEncoder(tiny_processor, settings, media_cache=MediaCache(None))
    model = Qwen2_5OmniForSentimentRegression.from_pretrained(tiny_backbone_dir, head_hidden_size=16, processing=settings.to_dict())
    model.save_pretrained(tmp_path / "model")
    original.save_pretrained(tmp_path / "model")
    reloaded = ClipEncoder.from_pretrained(tmp_path / "model")
    assert reloaded.settings == settings
    clip = original.decode(records[1].media_path)
    expected, actual = original.encode(records[1].text, clip), reloaded.encode(records[1].text, reloaded.decode(records[1].media_path))
    assert expected.keys() == actual.keys()
    for key, value in expected.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(actual[key], value, rtol=0, atol=0)
        else:
            assert actual[key] == value


def test_a_batch_mixing_modality_sets_is_refused(encoder, records):
    clip = encoder.decode(records[0].media_path)
    with pytest.raises(ValueError, match="one set of modalities"):
        encoder.collate([encoder.encode(records[0].text, clip, ("text",)), encoder.encode(records[0].text, clip, ("text", "audio"))])


def test_a_modality_the_clip_lacks_is_an_error_naming_it(encoder, records):
    with pytest.raises(ValueError, match="empty transcript"):
        encoder.encode("  ", encoder.decode(records[0].media_path), ("text", "audio"))


def test_trainer_collator_decodes_each_clip_once_across_epochs(tiny_processor, records, tmp_path):
    cache = MediaCache(tmp_path / "cache")
    collator = ClipEncoder(tiny_processor, ProcessingSettings(max_pixels=28 * 28 * 16), media_cache=cache)
    rows = [{"text": record.text, "media_path": record.media_path, "label": record.label} for record in records[:6]]
    for _ in range(3):  # three epochs
        batch = collator(rows)
    assert cache.decode_calls == 6 and cache.hits == 12
    assert batch["labels"].tolist() == pytest.approx([record.label for record in records[:6]])
    assert batch["input_ids"].shape[0] == 6 and batch["use_audio_in_video"] is True


@pytest.mark.parametrize(
    "value, expected",
    [("T+A+V", ("text", "audio", "video")), ("video,text", ("text", "video")), (["A"], ("audio",)), ("t a", ("text", "audio"))],
)
def test_modalities_parse_into_canonical_order(value, expected):
    assert parse_modalities(value) == expected


def test_unknown_or_empty_modalities_are_refused():
    with pytest.raises(ValueError, match="depth"):
        parse_modalities("text,depth")
    with pytest.raises(ValueError, match="at least one"):
        parse_modalities("")
    with pytest.raises(ValueError, match="modalities"):
        OmniRegressorConfig(processing={"modalities": []})
