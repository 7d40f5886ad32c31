"""Sentiment over a long video in windows (`omni-regressor predict --window`, omni_regressor/long_videos.py): windows
cover the video with the hop and take the subtitles they overlap; a window longer than the video or broken subtitles
are error rows."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import read_csv
from omni_regressor.cli import main as cli_main
from omni_regressor.inference import SentimentScorer
from omni_regressor.media import write_clip

SAMPLE_RATE = 16000


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """A 9 s video whose brightness and pitch change every second, with subtitles beside it."""
    folder = tmp_path_factory.mktemp("long")
    fps, seconds = 8, 9
    frames = np.stack([np.full((48, 64, 3), 25 * (index // fps), np.uint8) for index in range(fps * seconds)])
    time = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    audio = np.concatenate([(0.2 * np.sin(2 * np.pi * (200 + 60 * second) * time)).astype(np.float32) for second in range(seconds)])
    path = write_clip(folder / "talk.mp4", frames, fps, audio, SAMPLE_RATE)
    (folder / "talk.srt").write_text(
        "1\n00:00:00,500 --> 00:00:02,000\nwhat a wonderful start\n\n"
        "2\n00:00:05,000 --> 00:00:06,500\nthen it got terrible\n", encoding="utf-8")
    return path


def test_windows_cover_the_video_with_the_hop_and_take_their_subtitles(trained_export, long_video, tmp_path):
    output = tmp_path / "windows.csv"
    assert cli_main(["predict", "--model", str(trained_export), str(long_video), "--window", "4", "--hop", "2.5",
                     "--output", str(output), "--no_progress"]) == 0
    rows = read_csv(output)
    windows = [row for row in rows if row["kind"] == "window"]
    assert [(float(row["start"]), float(row["end"])) for row in windows] == [(0.0, 4.0), (2.5, 6.5), (5.0, 9.0)]
    assert [row["transcript"] if "transcript" in row else None for row in windows] == [None] * 3  # no --transcribe column
    (video,) = [row for row in rows if row["kind"] == "video"]
    weights = [float(row["end"]) - float(row["start"]) for row in windows]
    expected = np.average([float(row["score"]) for row in windows], weights=weights)
    assert float(video["score"]) == pytest.approx(expected, abs=1e-9) and float(video["end"]) == 9.0
    assert Path(video["timeline"]).is_file() and Path(video["timeline"]).parent == output.with_name("windows_timelines")
    # Each window read its own part of the video, and the text of the cues it overlaps.
    scorer = SentimentScorer.from_pretrained(trained_export)
    from pipeline_omni_regressor import score_clips

    expected_scores = score_clips(scorer.model, scorer.encoder, [str(long_video)] * 3,
                                  ["what a wonderful start", "then it got terrible", "then it got terrible"],
                                  windows=[(0.0, 4.0), (2.5, 6.5), (5.0, 9.0)])
    np.testing.assert_allclose([float(row["score"]) for row in windows], [r.score for r in expected_scores], atol=1e-5)
    assert [row["modalities"] for row in windows] == ["text+audio+video"] * 3


def test_a_window_longer_than_the_video_or_broken_subtitles_are_error_rows(trained_export, long_video, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    clip = write_clip(broken / "clip.mp4", np.full((16, 48, 64, 3), 80, np.uint8), 8, None)
    (broken / "clip.vtt").write_text("WEBVTT\n\nthis is not a cue\n", encoding="utf-8")
    for video, window, message in ((long_video, "20", "longer than the video (9.00 s)"),
                                   (clip, "1", "no subtitle cue could be read")):
        output = tmp_path / f"{Path(video).stem}.jsonl"
        status = cli_main(["predict", "--model", str(trained_export), str(video), "--window", window,
                           "--output", str(output), "--no_progress"])
        rows = [json.loads(line) for line in output.read_text().splitlines()]
        assert status == 1 and [row["kind"] for row in rows] == ["window", "video"]
        assert message in rows[0]["error"] and str(video) in rows[0]["error"] and rows[0]["start"] is None
        assert rows[1]["score"] is None and rows[1]["error"] == rows[0]["error"]
