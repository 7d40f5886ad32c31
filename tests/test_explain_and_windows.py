"""Beyond a score: which modality moved it (leave-one-out), and sentiment over a long video in windows."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from omni_regressor.cli import main as cli_main
from omni_regressor.data import read_mmsa
from omni_regressor.inference import SentimentScorer
from omni_regressor.media import write_clip

SAMPLE_RATE = 16000


@pytest.fixture(scope="module")
def test_records(demo_dataset_dir):
    return [record for record in read_mmsa(demo_dataset_dir)[0] if record.split == "test"]


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_leave_one_out_scores_equal_the_models_own_scores_on_fewer_modalities(trained_export, test_records, tmp_path):
    table = tmp_path / "clips.csv"
    table.write_text("path,text\n" + "".join(f'{r.media_path},"{r.text}"\n' for r in test_records[:3]) + f"{test_records[3].media_path},\n")
    assert cli_main(["predict", "--model", str(trained_export), str(table), "--explain", "--output", str(tmp_path / "x.csv"),
                     "--no_progress"]) == 0
    rows = read_csv(tmp_path / "x.csv")
    paths = [r.media_path for r in test_records[:3]]
    texts = [r.text for r in test_records[:3]]
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


def test_the_python_api_explains_like_the_cli(trained_export, test_records):
    scorer = SentimentScorer.from_pretrained(trained_export)
    (row,) = scorer.explain([test_records[0].media_path], [test_records[0].text])
    assert row["score"] == pytest.approx(scorer.score([test_records[0].media_path], [test_records[0].text])[0], abs=1e-6)
    assert {"score_without_text", "text_effect", "score_without_audio", "score_without_video"} <= set(row)
    (silent,) = scorer.explain([test_records[0].media_path])  # no transcript: nothing about text
    assert "score_without_text" not in silent and "audio_effect" in silent


def test_evaluate_explain_reports_each_modalitys_effect_and_the_mae_without_it(trained_export, demo_dataset_dir, tmp_path):
    cache = str(trained_export.parents[1] / "media-cache")
    assert cli_main(["evaluate", "--model", str(trained_export), "--dataset_dir", str(demo_dataset_dir), "--output_dir",
                     str(tmp_path / "eval"), "--explain", "true", "--media_cache_dir", cache]) == 0
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert set(report["attribution"]) == {"text", "audio", "video"}
    assert (tmp_path / "eval" / "attribution.png").stat().st_size > 5000 and (tmp_path / "eval" / "attribution.md").is_file()
    rows = read_csv(tmp_path / "eval" / "predictions.csv")
    for name, row in report["attribution"].items():
        without = np.array([float(r[f"score_without_{name}"]) for r in rows])
        labels = np.array([float(r["label"]) for r in rows])
        assert row["MAE_without"] == pytest.approx(np.abs(without - labels).mean(), abs=1e-4)
        assert row["mean_abs_effect"] == pytest.approx(np.mean([abs(float(r[f"{name}_effect"])) for r in rows]), abs=1e-9)


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
