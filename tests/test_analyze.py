"""`omni-regressor analyze`: how label-smooth the pooled hidden states are (kNN label distance vs permuted labels), on
point clouds with known answers and on the demo model (fine-tuned, and its base checkpoint: the "before" picture)."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from conftest import SMALL_PIXEL_FLAGS
from omni_regressor.analyze import (
    TSNE_MIN_CLIPS,
    knn_label_distance,
    label_smoothness,
    mean_pairwise_label_distance,
    nearest_neighbours,
    permuted_label_distances,
    plot_projections,
    projections,
)
from omni_regressor.cli import main as cli_main
from omni_regressor.data import read_mmsa
from omni_regressor.inference import SentimentScorer
from omni_regressor.media import MediaCache

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_cli(argv) -> int:
    try:
        return cli_main([str(arg) for arg in argv])
    except SystemExit as exit_request:  # argparse: a bad flag value
        return exit_request.code


# --- the numbers ------------------------------------------------------------------------------------------------


def test_neighbours_exclude_the_clip_itself_and_follow_the_chosen_distance():
    # Cosine compares directions: (10, 0) is nearest to (1, 0.1), though (1.2, 1) is nearer in euclidean distance.
    points = np.array([[1.0, 0.1], [10.0, 0.0], [1.2, 1.0]])
    assert nearest_neighbours(points, 1, "cosine")[:, 0].tolist() == [1, 0, 0]
    assert nearest_neighbours(points, 1, "euclidean")[:, 0].tolist() == [2, 2, 0]
    assert all(index not in row for index, row in enumerate(nearest_neighbours(points, 2, "cosine")))


def test_knn_label_distance_of_two_clusters_by_hand():
    points = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])  # two directions
    labels = np.array([2.0, 1.0, -1.0, -3.0])
    neighbours = nearest_neighbours(points, 1)
    assert neighbours[:, 0].tolist() == [1, 0, 3, 2]
    assert knn_label_distance(labels, neighbours) == pytest.approx((1 + 1 + 2 + 2) / 4)


def test_permuted_distance_is_seeded_and_averages_to_the_pairwise_mean():
    rng = np.random.default_rng(0)
    labels = rng.uniform(-3, 3, 40)
    neighbours = nearest_neighbours(rng.standard_normal((40, 8)), 5)
    first, again = (permuted_label_distances(labels, neighbours, 400, seed=3) for _ in range(2))
    assert np.array_equal(first, again) and not np.array_equal(first, permuted_label_distances(labels, neighbours, 400, seed=4))
    assert first.mean() == pytest.approx(mean_pairwise_label_distance(labels), rel=0.02)


def test_states_ordered_by_label_are_smooth_and_shuffled_states_are_not():
    labels = np.linspace(-3, 3, 60)
    ordered = np.stack([np.cos(labels / 4), np.sin(labels / 4)], axis=1)  # an arc whose angle is the label
    smooth = label_smoothness(ordered, labels, k=5, num_permutations=50)
    assert smooth["knn_label_distance"] < 0.5 < 1.5 < smooth["permuted_label_distance"]
    assert smooth["permutation_p_value"] == pytest.approx(1 / 51)
    shuffled = ordered[np.random.default_rng(1).permutation(60)]
    rough = label_smoothness(shuffled, labels, k=5, num_permutations=50)
    assert rough["knn_label_distance"] > 1.0 and rough["permutation_p_value"] > 0.05


def test_projection_plot_adds_tsne_from_enough_clips(tmp_path):
    rng = np.random.default_rng(0)
    few, many = rng.standard_normal((TSNE_MIN_CLIPS - 1, 16)), rng.standard_normal((TSNE_MIN_CLIPS, 16))
    assert list(projections(few)) == ["PCA"]
    panels = projections(many)
    assert list(panels) == ["PCA", "t-SNE"] and panels["t-SNE"][0].shape == (TSNE_MIN_CLIPS, 2)
    path = plot_projections(tmp_path / "p.png", panels, rng.uniform(-3, 3, TSNE_MIN_CLIPS), (-3, 3), "title")
    assert path.read_bytes()[:8] == PNG_SIGNATURE


# --- the command on the demo model ----------------------------------------------------------------------------------


def test_analyze_on_the_demo_model_writes_its_outputs_and_finds_label_smooth_states(trained_export, demo_dataset_dir, tmp_path, capsys):
    cache_dir = trained_export.parent.parent / "media-cache"  # the training run's (conftest.training_flags)
    entries_before = len(MediaCache(cache_dir).entries())
    output_dir = tmp_path / "after"
    # All 24 clips: the demo's test split has 5, too few for a kNN statistic that means anything.
    status = run_cli(["analyze", "--model", trained_export, "--dataset_dir", demo_dataset_dir, "--split", "all",
                      "--k", "5", "--output_dir", output_dir, "--media_cache_dir", cache_dir, "--num_workers", "0"])
    assert status == 0
    headline = json.loads(capsys.readouterr().out)
    analysis = json.loads((output_dir / "analysis.json").read_text())
    assert headline["knn_label_distance"] == analysis["knn_label_distance"]
    assert analysis["fine_tuned"] and analysis["num_clips"] == 24 and analysis["k"] == 5 and analysis["distance"] == "cosine"
    assert analysis["knn_label_distance"] < analysis["permuted_label_distance"]
    assert analysis["permutation_p_value"] < 0.05
    assert analysis["processing"]["max_pixels"] == 28 * 28 * 16  # the model's saved settings
    assert (output_dir / "projection.png").read_bytes()[:8] == PNG_SIGNATURE
    assert len(MediaCache(cache_dir).entries()) == entries_before  # every clip came from the training run's cache

    records = {record.clip_id: record for record in read_mmsa(demo_dataset_dir)[0]}
    with safe_open(output_dir / "hidden_states.safetensors", "np") as states:
        clip_ids = json.loads(states.metadata()["clip_ids"])
        hidden, labels, scores = (states.get_tensor(name) for name in ("hidden_states", "labels", "scores"))
    assert sorted(clip_ids) == sorted(records) and hidden.shape == (24, 64) and np.isfinite(hidden).all()
    assert labels.tolist() == pytest.approx([records[clip_id].label for clip_id in clip_ids])
    # The states come from the model's own scoring path: its scores are the scorer's.
    first = [records[clip_id] for clip_id in clip_ids[:3]]
    expected = SentimentScorer.from_pretrained(trained_export).score([r.media_path for r in first], [r.text for r in first])
    np.testing.assert_allclose(scores[:3], expected, atol=1e-5)


def test_analyze_runs_on_the_base_checkpoint(tiny_backbone_dir, demo_dataset_dir, tmp_path, capsys):
    output_dir = tmp_path / "before"
    status = run_cli(["analyze", "--model", tiny_backbone_dir, "--dataset_dir", demo_dataset_dir, "--split", "test",
                      "--k", "3", "--output_dir", output_dir, "--num_workers", "0", *SMALL_PIXEL_FLAGS])
    assert status == 0
    analysis = json.loads((output_dir / "analysis.json").read_text())
    assert not analysis["fine_tuned"] and analysis["num_clips"] == 5 and analysis["split"] == "test"
    assert np.isfinite([analysis["knn_label_distance"], analysis["permuted_label_distance"]]).all()
    with safe_open(output_dir / "hidden_states.safetensors", "np") as states:
        assert set(states.keys()) == {"hidden_states", "labels"}  # a base checkpoint's head is random: no scores
    assert (output_dir / "projection.png").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--split", "test", "--k", "10"], "has 5 usable clips: --k 10 needs at least 11 clips"),
    (["--k", "0"], "--k must be at least 1"),
])
def test_too_few_clips_or_a_bad_k_is_one_line_and_exit_2(tiny_backbone_dir, demo_dataset_dir, tmp_path, capsys, argv, message):
    output_dir = tmp_path / "out"
    status = run_cli(["analyze", "--model", tiny_backbone_dir, "--dataset_dir", demo_dataset_dir, "--output_dir", output_dir, *argv])
    stderr = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in stderr and message in stderr
    assert not output_dir.exists()


def test_a_non_empty_output_dir_is_refused_without_overwrite(tiny_backbone_dir, demo_dataset_dir, tmp_path, capsys):
    (tmp_path / "kept.txt").write_text("mine")
    status = run_cli(["analyze", "--model", tiny_backbone_dir, "--dataset_dir", demo_dataset_dir, "--output_dir", tmp_path])
    assert status == 2 and "pass --overwrite" in capsys.readouterr().err
    assert [path.name for path in Path(tmp_path).iterdir()] == ["kept.txt"]
