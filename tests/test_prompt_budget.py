"""A transcript too long for the model's positions is cut to fit, with one warning naming the clip and the budget."""

import logging

from hostile_media import normal_clip
from omni_regressor.inference import SentimentScorer
from pipeline_omni_regressor import prepare_clip


def test_an_oversized_transcript_is_cut_to_the_token_budget_with_a_warning(tiny_regressor_dir, tmp_path, caplog):
    scorer = SentimentScorer.from_pretrained(tiny_regressor_dir, device="cpu", modalities="text,audio")
    clip = normal_clip(tmp_path / "clip.mp4")
    full = prepare_clip(scorer.encoder, 0, clip, "a very fine day indeed " * 200)
    scorer.encoder.max_positions = full.length // 2
    with caplog.at_level(logging.WARNING, logger="pipeline_omni_regressor"):
        cut = prepare_clip(scorer.encoder, 0, clip, "a very fine day indeed " * 200)
        [result] = scorer.score_clips([clip], ["a very fine day indeed " * 200])
    assert cut.error is None and cut.length <= full.length // 2 and cut.modalities == ("text", "audio")
    assert result.score is not None
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2 and all(str(clip) in warning for warning in warnings)
    assert f"the model's {full.length // 2} positions" in warnings[0]
