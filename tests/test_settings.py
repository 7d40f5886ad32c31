"""`omni_regressor.settings`: the one path from a model and what a user asked for to the settings clips are read with."""

import pytest

from omni_regressor.arguments import ProcessingArguments
from omni_regressor.settings import requested_settings, resolve_settings, saved_settings


def test_flags_and_a_dict_of_fields_resolve_alike_over_the_saved_settings(trained_export):
    """`--max_frames 6 --modalities T+A` and `{"max_frames": 6, "modalities": "T+A"}` give the same settings: the
    model's saved ones with those two on top."""
    saved = saved_settings(trained_export)
    from_flags, processor = resolve_settings(ProcessingArguments(max_frames=6, modalities="T+A"), trained_export)
    from_dict, _ = resolve_settings({"max_frames": 6, "modalities": "T+A"}, trained_export, processor=processor)
    assert from_flags == from_dict
    assert from_flags.max_frames == 6 and from_flags.modalities == ("text", "audio")
    untouched = {name: value for name, value in saved.to_dict().items() if name not in ("max_frames", "modalities")}
    assert {name: from_flags.to_dict()[name] for name in untouched} == untouched


def test_a_loaded_config_is_read_instead_of_the_folder(trained_export, tmp_path):
    """A loaded model's config (what `SentimentScorer.from_model` has) wins over whatever config.json says."""
    from configuration_omni_regressor import OmniRegressorConfig

    config = OmniRegressorConfig.from_pretrained(trained_export)
    config.processing = {**config.processing, "fps": 1.0}
    settings, _ = resolve_settings(None, trained_export, config=config)
    assert settings.fps == 1.0
    assert saved_settings(trained_export).fps != 1.0


def test_an_unknown_setting_name_is_refused_not_dropped():
    with pytest.raises(ValueError, match="unknown processing setting 'max_frame'"):
        requested_settings({"max_frame": 4})


def test_the_scorer_built_from_a_loaded_model_uses_the_same_path(trained_export):
    """`SentimentScorer.from_model(model, processing=...)` reads like `resolve_settings` on the folder."""
    from omni_regressor import SentimentScorer
    from omni_regressor.model_loading import load_regressor

    model = load_regressor(trained_export)
    scorer = SentimentScorer.from_model(model, processing={"max_frames": 4}, modalities="text,video")
    expected, _ = resolve_settings({"max_frames": 4, "modalities": "text,video"}, trained_export)
    assert scorer.encoder.settings == expected
    with pytest.raises(ValueError, match="unknown processing setting 'fsp'"):
        SentimentScorer.from_model(model, processing={"fsp": 1.0})


def test_without_a_model_the_default_backbones_official_values_are_used():
    from omni_regressor.backbones import DEFAULT_BACKBONE, get_backbone

    settings, processor = resolve_settings(ProcessingArguments(fps=1.0))
    spec = get_backbone(DEFAULT_BACKBONE)
    assert processor is None and settings.fps == 1.0 and settings.image_factor == spec.image_factor
    assert settings.max_audio_seconds == spec.extractor_seconds
    assert None not in (settings.min_pixels, settings.max_pixels, settings.total_pixels)  # resolved, concrete
