"""The experiment commands (omni_regressor/experiments/): zero-shot and sweep refuse a dataset without the split they
score, in one line, before any model loads."""

from conftest import SMALL_PIXEL_FLAGS, cli, dataset_view, hostile_training_flags, one_error_line


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
