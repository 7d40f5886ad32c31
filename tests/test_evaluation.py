"""`omni-regressor evaluate` (omni_regressor/eval/evaluation.py): predictions, metrics, plots and (`--explain`) each
modality's effect for a trained export on one split of a dataset; on hostile data, a too-short clip is named before any
model loads, skipped when told, scored on text and video when those are the modalities; a missing split is one line."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SMALL_PIXEL_FLAGS, TINY, cli, dataset_view, one_error_line, read_csv
from omni_regressor.arguments import ProcessingArguments
from omni_regressor.cli import main as cli_main
from omni_regressor.data import read_mmsa
from omni_regressor.eval.evaluation import evaluate_model, read_predictions
from omni_regressor.eval.metrics import msa_regression_metrics
from omni_regressor.eval.plots import sentiment_classes
from omni_regressor.inference import SentimentScorer


@pytest.fixture(scope="module")
def media_cache_dir(trained_export) -> Path:
    return trained_export.parents[1] / "media-cache"  # the training run's cache: same decode settings


@pytest.fixture(scope="module")
def evaluation(trained_export, demo_dataset_dir, media_cache_dir):
    output_dir = trained_export.parent / "eval-test"
    report = evaluate_model(
        trained_export, demo_dataset_dir, split="test", output_dir=output_dir,
        processing=ProcessingArguments(media_cache_dir=str(media_cache_dir)), batch_size=3, progress=False,
    )
    return output_dir, report


def test_predictions_csv_has_one_row_per_test_clip_with_the_dataset_ids(evaluation, test_split_records):
    output_dir, _ = evaluation
    clip_ids, labels, _ = read_predictions(output_dir / "predictions.csv")
    assert clip_ids == [record.clip_id for record in test_split_records]
    assert all(clip_id.split("/")[1].startswith("00") for clip_id in clip_ids), "leading zeros must be kept"
    assert labels == [record.label for record in test_split_records]
    with open(output_dir / "predictions.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["video_id", "clip_id", "label", "prediction"]
    assert [f"{row[0]}/{row[1]}" for row in rows[1:]] == [record.clip_id for record in test_split_records]


def test_metrics_json_equals_msa_metrics_of_the_predictions_csv(evaluation, demo_dataset_dir, trained_export):
    output_dir, report = evaluation
    _, labels, predictions = read_predictions(output_dir / "predictions.csv")
    expected = msa_regression_metrics(predictions, labels, "mosi")
    saved = json.loads((output_dir / "metrics.json").read_text())
    assert {key: saved[key] for key in expected} == expected
    assert saved["num_clips"] == len(labels) and saved["split"] == "test" and saved["metrics_dataset"] == "mosi"
    assert saved["modalities"] == ["text", "audio", "video"] and saved["skipped"] == []
    assert saved["dataset_dir"] == str(Path(demo_dataset_dir).resolve())
    assert saved["model"] == str(trained_export.resolve())
    assert saved["ms_per_clip"] > 0 and saved["processes"] == 1
    assert saved == report


def test_the_summary_run_carries_test_clip_ids_beside_its_predictions(trained_run, test_split_records):
    _, summary = trained_run
    assert summary["test_clip_ids"] == [record.clip_id for record in test_split_records]
    assert len(summary["test_predictions"]) == len(test_split_records)


@pytest.mark.parametrize("name", ["scatter.png", "confusion_acc7.png", "error_histogram.png"])
def test_each_plot_is_a_loadable_png_of_sensible_size(evaluation, name):
    output_dir, _ = evaluation
    with Image.open(output_dir / name) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert 300 <= width <= 2000 and 300 <= height <= 2000
        # A real drawing, not a blank canvas.
        assert len(set(np.asarray(image.convert("L")).reshape(-1).tolist())) > 10


def test_predictions_equal_the_sentiment_scorer_scores(evaluation, trained_export, media_cache_dir, test_split_records):
    output_dir, _ = evaluation
    _, _, predictions = read_predictions(output_dir / "predictions.csv")
    scorer = SentimentScorer.from_pretrained(trained_export, media_cache_dir=media_cache_dir)
    scores = scorer.score([record.media_path for record in test_split_records], [record.text for record in test_split_records])
    np.testing.assert_allclose(predictions, scores, atol=1e-5, rtol=0)


def test_acc7_classes_round_half_to_even_and_sims_classes_follow_mmsa_intervals():
    classes, names = sentiment_classes([-3.7, -2.5, -0.5, 0.5, 1.5, 2.4, 9.0], "mosi")
    assert [names[index] for index in classes] == ["-3", "-2", "0", "0", "2", "2", "3"]
    classes, names = sentiment_classes([-1.5, -0.1, 0.0, 0.1, 0.11, 1.0], "sims")
    assert [names[index] for index in classes] == ["negative", "negative", "neutral", "neutral", "positive", "positive"]


def test_cli_evaluate_returns_zero_and_prints_the_summary(
    trained_export, demo_dataset_dir, media_cache_dir, tmp_path, capsys
):
    status = cli_main([
        "evaluate", "--model", str(trained_export), "--dataset_dir", str(demo_dataset_dir), "--split", "valid",
        "--output_dir", str(tmp_path / "eval"), "--media_cache_dir", str(media_cache_dir),
    ])
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert status == 0
    assert f"MAE {report['MAE']:.4f}" in printed and f"Corr {report['Corr']:.4f}" in printed
    assert f"Acc-7 {report['Mult_acc_7']:.4f}" in printed and str(tmp_path / "eval") in printed
    assert report["split"] == "valid"


@pytest.fixture
def dataset_with_missing_test_clip(demo_dataset_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(demo_dataset_dir, broken)
    record = next(record for record in read_mmsa(broken)[0] if record.split == "test")
    Path(record.media_path).unlink()
    return broken, record.clip_id


def test_missing_media_file_in_the_split_exits_1_naming_the_clip(
    trained_export, dataset_with_missing_test_clip, media_cache_dir, tmp_path, capsys
):
    broken, clip_id = dataset_with_missing_test_clip
    status = cli_main([
        "evaluate", "--model", str(trained_export), "--dataset_dir", str(broken),
        "--output_dir", str(tmp_path / "eval"), "--media_cache_dir", str(media_cache_dir),
    ])
    captured = capsys.readouterr()
    assert status == 1
    assert f"{clip_id}\tmissing_file" in captured.err
    assert not (tmp_path / "eval" / "predictions.csv").exists()


def test_skip_bad_clips_evaluates_the_rest_and_lists_the_skipped_clip(
    trained_export, dataset_with_missing_test_clip, media_cache_dir, test_split_records, tmp_path, capsys
):
    broken, clip_id = dataset_with_missing_test_clip
    status = cli_main([
        "evaluate", "--model", str(trained_export), "--dataset_dir", str(broken), "--skip_bad_clips", "true",
        "--output_dir", str(tmp_path / "eval"), "--media_cache_dir", str(media_cache_dir),
    ])
    assert status == 0
    with open(tmp_path / "eval" / "skipped_clips.csv", newline="") as file:
        skipped = list(csv.DictReader(file))
    assert [(row["clip_id"], row["reason"]) for row in skipped] == [(clip_id, "missing_file")]
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert [entry["clip_id"] for entry in report["skipped"]] == [clip_id]
    clip_ids, _, _ = read_predictions(tmp_path / "eval" / "predictions.csv")
    assert clip_ids == [record.clip_id for record in test_split_records if record.clip_id != clip_id]
    assert report["num_clips"] == len(test_split_records) - 1


def test_evaluate_decodes_only_the_clips_of_its_split(trained_export, demo_dataset_dir, test_split_records, tmp_path):
    """A fresh media cache holds, after `--split test`, one decoded entry per test clip and none of the others."""
    cache = tmp_path / "fresh-cache"
    status = cli_main([
        "evaluate", "--model", str(trained_export), "--dataset_dir", str(demo_dataset_dir), "--split", "test",
        "--output_dir", str(tmp_path / "eval"), "--media_cache_dir", str(cache),
    ])
    assert status == 0
    assert len(list(cache.rglob("*.safetensors"))) == len(test_split_records) < len(read_mmsa(demo_dataset_dir)[0])


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


def test_evaluate_names_the_too_short_clip_before_any_model_loads(regressor, hostile_root, hostile_cache, tmp_path,
                                                                   no_model_loads):
    status, _, err = cli("evaluate", "--model", regressor, "--dataset_dir", hostile_root[0], "--output_dir",
                         tmp_path / "eval", "--media_cache_dir", hostile_cache)
    assert status == 1 and "Traceback" not in err
    assert f"{TINY}\ttoo_short_audio\t" in err
    assert not (tmp_path / "eval").exists()


def test_evaluate_skips_the_too_short_clip_when_told(regressor, hostile_root, hostile_cache, tmp_path):
    status, out, err = cli("evaluate", "--model", regressor, "--dataset_dir", hostile_root[0], "--output_dir",
                           tmp_path / "eval", "--media_cache_dir", hostile_cache, "--skip_bad_clips", "true")
    assert status == 0, err
    assert [row["clip_id"] for row in read_csv(tmp_path / "eval" / "skipped_clips.csv")] == [TINY]
    predictions = read_csv(tmp_path / "eval" / "predictions.csv")
    assert len(predictions) == 5 and "hostile" not in {row["video_id"] for row in predictions}


def test_evaluate_scores_the_tiny_clip_on_text_and_video(regressor, hostile_root, hostile_cache, tmp_path):
    status, _, err = cli("evaluate", "--model", regressor, "--dataset_dir", hostile_root[0], "--output_dir",
                         tmp_path / "eval", "--media_cache_dir", hostile_cache, "--modalities", "text,video")
    assert status == 0, err
    rows = {f"{row['video_id']}/{row['clip_id']}": row for row in read_csv(tmp_path / "eval" / "predictions.csv")}
    assert len(rows) == 6 and np.isfinite(float(rows[TINY]["prediction"]))


def test_evaluate_on_a_missing_split_is_one_line(regressor, demo_dataset_dir, tmp_path, no_model_loads):
    root = dataset_view(demo_dataset_dir, tmp_path / "data", lambda mode: "train" if mode == "valid" else mode)
    status, _, err = cli("evaluate", "--model", regressor, "--dataset_dir", root, "--output_dir",
                         tmp_path / "eval", "--split", "valid", *SMALL_PIXEL_FLAGS)
    assert status == 2
    one_error_line(err, "no clip has mode 'valid'")
