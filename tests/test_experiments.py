"""The experiment commands (omni_regressor/experiments/ zero_shot.py, compare.py, sweep.py): the zero-shot generative
readout end to end with its parse statistics, one comparison table of every arm, a sweep that decodes each clip once;
zero-shot and sweep refuse a dataset without the split they score, in one line, before any model loads."""

import json
import math

import pytest

from conftest import SMALL_PIXEL_FLAGS, cli, dataset_view, hostile_training_flags, one_error_line, small_run_flags
from omni_regressor.data import read_mmsa
from omni_regressor.media import MediaCache

PARSE_STATISTICS = ("unparsable_rate", "truncated_rate", "out_of_range_rate", "fallback", "ms_per_clip")


def test_zero_shot_generative_readout_runs_end_to_end_and_reports_parse_statistics(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    from omni_regressor.experiments.zero_shot import main

    assert main([
        "--model_name_or_path", str(tiny_backbone_dir), "--dataset_dir", str(demo_dataset_dir),
        "--output_dir", str(tmp_path), "--quantization", "4bit", *SMALL_PIXEL_FLAGS,
        "--media_cache_dir", str(tmp_path / "cache"),
    ]) == 0
    result = json.loads((tmp_path / "zero_shot.json").read_text())
    test_clips = [record for record in read_mmsa(demo_dataset_dir)[0] if record.split == "test"]
    assert result["num_clips"] == len(test_clips) == len(result["answers"]) == len(result["predictions"])
    assert all(key in result for key in PARSE_STATISTICS) and 0.0 <= result["unparsable_rate"] <= 1.0
    from omni_regressor.eval.score_parsing import parse_score

    unparsable = sum(parse_score(answer) is None and not truncated
                     for answer, truncated in zip(result["answers"], result["truncated"])) / len(result["answers"])
    assert result["unparsable_rate"] == pytest.approx(unparsable)
    assert result["truncated_rate"] == pytest.approx(sum(result["truncated"]) / len(result["truncated"]))
    assert math.isfinite(result["MAE"])



def test_zero_shot_on_a_missing_split_is_one_line(tiny_backbone_dir, demo_dataset_dir, tmp_path, no_model_loads):
    root = dataset_view(demo_dataset_dir, tmp_path / "data", lambda mode: "train" if mode == "valid" else mode)
    status, _, err = cli("zero-shot", "--model_name_or_path", tiny_backbone_dir, "--dataset_dir", root, "--output_dir",
                         tmp_path / "zs", "--split", "valid", "--quantization", "none", *SMALL_PIXEL_FLAGS)
    assert status == 2
    one_error_line(err, "no clip has mode 'valid'")


def test_sweep_without_a_test_split_is_refused_before_any_model_loads(tiny_backbone_dir, demo_dataset_dir, tmp_path,
                                                                      no_model_loads):
    root = dataset_view(demo_dataset_dir, tmp_path / "data", lambda mode: "train" if mode == "test" else mode)
    status, _, err = cli("sweep", "--modality_sets", "T", "--seeds", "1",
                         *hostile_training_flags(tiny_backbone_dir, root, tmp_path / "sweep"))
    assert status == 2
    one_error_line(err, "test")


def test_compare_writes_one_table_with_metrics_failures_latency_and_memory(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    from omni_regressor.experiments.compare import main

    flags = small_run_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "compare", "--max_frames", "4", "--fps", "3")
    assert main(["--skip_generative_finetune", "true", *flags]) == 0
    rows = json.loads((tmp_path / "compare" / "comparison.json").read_text())
    assert [row["readout"] for row in rows] == [
        "discriminative (fine-tuned)", "head-only (frozen backbone)", "generative (zero-shot)"]
    for row in rows:
        assert row["ms_per_clip"] > 0 and row["peak_memory_mb"] > 0 and "MAE" in row and "Mult_acc_7" in row
        assert math.isfinite(row["MAE"])
    assert "unparsable_rate" in rows[2] and "truncated_rate" in rows[2]
    assert rows[0]["seconds_per_epoch"] > 0 and rows[1]["seconds_per_epoch"] > 0
    # Every arm used the same settings: frames, fps, pixels, audio window, prompts, score range.
    assert rows[0]["processing"] == rows[1]["processing"] == rows[2]["processing"]
    assert rows[0]["score_range"] == rows[1]["score_range"] == rows[2]["score_range"]
    assert rows[0]["processing"]["max_frames"] == 4 and rows[0]["processing"]["fps"] == 3.0
    table = (tmp_path / "compare" / "comparison.md").read_text()
    assert table.count("\n") == 5 and "| discriminative (fine-tuned) |" in table and "unparsable_rate" in table
    assert "| head-only (frozen backbone) |" in table and "seconds_per_epoch" in table


def test_sweep_over_two_modality_sets_and_two_seeds_decodes_each_clip_once(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    from omni_regressor.experiments.sweep import main

    flags = small_run_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "sweep")
    assert main(["--modality_sets", "T,T+A", "--seeds", "1", "2", *flags]) == 0
    report = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert set(report["configurations"]) == {"T", "T+A"}
    assert all(len(metric["values"]) == 2 for metric in report["configurations"]["T+A"].values())
    clips = len(read_mmsa(demo_dataset_dir)[0])
    assert report["decode_calls_per_run"] == {"T/seed1": 0, "T/seed2": 0, "T+A/seed1": clips, "T+A/seed2": 0}
    assert len(MediaCache(tmp_path / "media-cache").entries()) == clips
    for tag in ("T", "TA"):
        for seed in (1, 2):
            assert (tmp_path / "sweep" / tag / f"seed{seed}" / "training_summary.json").exists()
    mae = report["configurations"]["T"]["MAE"]
    assert mae["mean"] == pytest.approx(sum(mae["values"]) / 2)
    assert "±" in (tmp_path / "sweep" / "sweep.md").read_text()
