"""`omni-regressor evaluate` on hostile data (eval/evaluation.py): a too-short clip is named before any model loads,
skipped when told, scored on text and video when those are the modalities; a missing split is one line."""

import numpy as np

from conftest import SMALL_PIXEL_FLAGS, TINY, cli, dataset_view, one_error_line, read_csv


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
