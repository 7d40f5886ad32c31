"""Scoring clips (pipeline_omni_regressor.py, through `SentimentScorer` and `predict`): long videos in the pipeline (and
so the web page) are scored a few batches of windows at a time, like `predict --window` (memory stays flat in the
video's length), a clip cut at the limit says so, a transcript too long for the model's positions is cut to fit with
one warning naming the clip and the budget, and leave-one-out explains which modality moved a score."""

import logging

import numpy as np
import pytest

import pipeline_omni_regressor
from conftest import read_csv
from hostile_media import long_clip, normal_clip
from omni_regressor.cli import main as cli_main
from omni_regressor.inference import SentimentScorer
from pipeline_omni_regressor import WINDOW_CHUNK_BATCHES, prepare_clip, score_video_windows


def test_pipeline_windows_are_scored_in_bounded_chunks_in_order(tiny_regressor_dir, tmp_path, monkeypatch):
    scorer = SentimentScorer.from_pretrained(tiny_regressor_dir, device="cpu")
    video = long_clip(tmp_path / "long.mp4", seconds=12)
    real, sizes = pipeline_omni_regressor.score_clips, []

    def recording(model, encoder, paths, *args, **kwargs):
        sizes.append(len(paths))
        return real(model, encoder, paths, *args, **kwargs)

    monkeypatch.setattr(pipeline_omni_regressor, "score_clips", recording)
    results, summary = score_video_windows(scorer.model, scorer.encoder, video, window=1.0, batch_size=1)
    assert max(sizes) == WINDOW_CHUNK_BATCHES and sum(sizes) == len(results) == 12
    assert [result.extras["start"] for result in results] == [float(second) for second in range(12)]
    assert summary["windows"] == 12 and summary["windows_failed"] == 0


def test_a_clip_longer_than_the_limit_is_marked_truncated_by_the_pipeline(tiny_regressor_dir, tmp_path):
    scorer = SentimentScorer.from_pretrained(tiny_regressor_dir, device="cpu", processing={"max_audio_seconds": 2.0})
    short, long = long_clip(tmp_path / "short.mp4", seconds=1), long_clip(tmp_path / "long.mp4", seconds=4)
    results = scorer.score_clips([short, long])
    assert [result.extras.get("truncated", False) for result in results] == [False, True]


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


def test_leave_one_out_scores_equal_the_models_own_scores_on_fewer_modalities(trained_export, test_split_records, tmp_path):
    table = tmp_path / "clips.csv"
    table.write_text("path,text\n" + "".join(f'{r.media_path},"{r.text}"\n' for r in test_split_records[:3]) + f"{test_split_records[3].media_path},\n")
    assert cli_main(["predict", "--model", str(trained_export), str(table), "--explain", "--output", str(tmp_path / "x.csv"),
                     "--no_progress"]) == 0
    rows = read_csv(tmp_path / "x.csv")
    paths = [r.media_path for r in test_split_records[:3]]
    texts = [r.text for r in test_split_records[:3]]
    for left_out, kept in (("text", "audio,video"), ("audio", "text,video"), ("video", "text,audio")):
        alone = SentimentScorer.from_pretrained(trained_export, modalities=kept).score(paths, texts)
        explained = [float(row[f"score_without_{left_out}"]) for row in rows[:3]]
        np.testing.assert_allclose(explained, alone, atol=1e-5)
        effects = [float(row[f"{left_out}_effect"]) for row in rows[:3]]
        np.testing.assert_allclose(effects, [float(row["score"]) - without for row, without in zip(rows[:3], explained)], atol=1e-6)
    # A clip without transcript: its text columns are empty, never zero-filled; its other modalities are explained.
    no_text = rows[3]
    assert no_text["modalities"] == "audio+video" and no_text["score_without_text"] == "" and no_text["text_effect"] == ""
    assert no_text["score_without_audio"] != "" and no_text["score_without_video"] != ""


def test_the_python_api_explains_like_the_cli(trained_export, test_split_records):
    scorer = SentimentScorer.from_pretrained(trained_export)
    (row,) = scorer.explain([test_split_records[0].media_path], [test_split_records[0].text])
    assert row["score"] == pytest.approx(scorer.score([test_split_records[0].media_path], [test_split_records[0].text])[0], abs=1e-6)
    assert {"score_without_text", "text_effect", "score_without_audio", "score_without_video"} <= set(row)
    (silent,) = scorer.explain([test_split_records[0].media_path])  # no transcript: nothing about text
    assert "score_without_text" not in silent and "audio_effect" in silent
