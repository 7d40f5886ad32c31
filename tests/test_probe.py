"""`omni-regressor probe` (frozen features per layer and pooling, ridge per entry, reports, reuse, --export_best,
head-only training) and a model trained with another pooling and readout layer, through export and a fresh process."""

import json
import math
import textwrap
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from safetensors import safe_open
from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniThinkerModel

import train_with_trainer
from conftest import SMALL_PIXEL_FLAGS, predicted_scores, run_fresh, training_flags
from omni_regressor.cli import main as cli_main
from omni_regressor.probe import main as probe_main

NUM_LAYERS = 2  # the tiny backbone's decoder layers


def probe_flags(backbone, data, output_dir, *extra):
    return ["--model", str(backbone), "--dataset_dir", str(data), "--output_dir", str(output_dir), *SMALL_PIXEL_FLAGS,
            "--media_cache_dir", str(Path(output_dir).parent / "media-cache"), "--num_workers", "0", *extra]


def probe_counting_forwards(argv) -> int:
    """Runs the probe; returns how many Thinker forward passes it ran."""
    with mock.patch.object(Qwen2_5OmniThinkerModel, "forward", autospec=True,
                           side_effect=Qwen2_5OmniThinkerModel.forward) as forward:
        assert probe_main(argv) == 0
    return forward.call_count


@pytest.fixture(scope="module")
def probe_run(tiny_backbone_dir, demo_dataset_dir, tmp_path_factory):
    """The default probe (4-bit, fp16 features, every layer, last and mean pooling): (output_dir, forwards, flags)."""
    output_dir = tmp_path_factory.mktemp("probe") / "probe"
    flags = probe_flags(tiny_backbone_dir, demo_dataset_dir, output_dir)
    return output_dir, probe_counting_forwards(flags), flags


@pytest.fixture(scope="module")
def exported_probe(tiny_backbone_dir, demo_dataset_dir, tmp_path_factory):
    """Unquantised, fp32 features, --export_best and head-only training: (output_dir, probe.json)."""
    output_dir = tmp_path_factory.mktemp("probe-export") / "probe"
    flags = probe_flags(tiny_backbone_dir, demo_dataset_dir, output_dir, "--quantization", "none", "--features_dtype",
                        "float32", "--export_best", "true", "--train_head_epochs", "4", "--head_hidden_size", "16")
    assert probe_main(flags) == 0
    return output_dir, json.loads((output_dir / "probe.json").read_text())


def test_the_probe_gives_one_finite_entry_per_layer_and_pooling_a_plot_and_a_table(probe_run):
    output_dir, forwards, _ = probe_run
    report = json.loads((output_dir / "probe.json").read_text())
    entries = report["entries"]
    assert sorted((entry["layer"], entry["pooling"]) for entry in entries) == sorted(
        (layer, pooling) for layer in range(NUM_LAYERS + 1) for pooling in ("last", "mean"))
    for entry in entries:
        assert all(math.isfinite(entry[key]) for key in ("MAE", "Corr", "Acc-2", "Acc-7", "penalty", "valid_MAE"))
    best = report["best"]
    assert best["valid_MAE"] == min(entry["valid_MAE"] for entry in entries)
    assert len(best["test_predictions"]) == len(best["test_clip_ids"]) == report["num_clips"]["test"]
    assert report["quantization"] == "4bit" and report["forward_passes_run"] and forwards > 0
    assert report["clips_left_out"] == [] and report["ms_per_clip"] > 0
    assert (output_dir / "probe.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (output_dir / "probe.md").read_text()
    assert table.count("| mean |") + table.count("| **mean** |") == NUM_LAYERS + 1
    assert f"| **{best['layer']}** | **{best['pooling']}** |" in table


def test_the_features_are_fp16_one_tensor_per_layer_and_pooling_with_the_clip_ids(probe_run, demo_dataset_dir):
    from omni_regressor.data import read_mmsa

    output_dir, _, _ = probe_run
    records = read_mmsa(demo_dataset_dir)[0]
    with safe_open(str(output_dir / "features.safetensors"), framework="np") as handle:
        metadata, names = handle.metadata(), sorted(handle.keys())
        tensors = {name: handle.get_tensor(name) for name in names}
    assert names == sorted(f"{pooling}.layer{layer:02d}" for layer in range(NUM_LAYERS + 1) for pooling in ("last", "mean"))
    assert json.loads(metadata["clip_ids"]) == [record.clip_id for record in records]
    assert json.loads(metadata["labels"]) == [record.label for record in records]
    for tensor in tensors.values():
        assert tensor.dtype == np.float16 and tensor.shape == (len(records), 64) and np.isfinite(tensor).all()
    assert not np.allclose(tensors["mean.layer01"], tensors["mean.layer02"])
    assert not list(output_dir.glob(".*"))  # no raw or temporary file left behind


def test_a_rerun_reuses_the_stored_features_without_a_forward_pass(probe_run, capsys):
    output_dir, _, flags = probe_run
    before = json.loads((output_dir / "probe.json").read_text())
    assert cli_main(["probe", *flags]) == 2  # the reports are there: replacing them needs --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert probe_counting_forwards([*flags, "--overwrite", "true"]) == 0
    after = json.loads((output_dir / "probe.json").read_text())
    assert not after["forward_passes_run"]
    assert [entry["MAE"] for entry in after["entries"]] == [entry["MAE"] for entry in before["entries"]]
    # A subset of the stored layers and poolings is served from the file too.
    assert probe_counting_forwards([*flags, "--overwrite", "true", "--layers", "1", "--poolings", "mean"]) == 0
    assert [(entry["layer"], entry["pooling"]) for entry in json.loads((output_dir / "probe.json").read_text())["entries"]] == [(1, "mean")]


PIPELINE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from transformers import pipeline
    sentiment = pipeline("omni-sentiment-regression", model=sys.argv[1], trust_remote_code=True)
    print(json.dumps([result["score"] for result in sentiment(json.loads(sys.argv[2]), batch_size=2)]))
    """
)


def test_export_best_scores_in_predict_and_the_package_free_pipeline_like_the_probe_itself(exported_probe, test_split_records, tmp_path):
    output_dir, report = exported_probe
    best, model_dir = report["best"], Path(report["export_dir"])
    config = json.loads((model_dir / "config.json").read_text())
    assert config["head_type"] == "linear" and config["pooling"] == best["pooling"]
    assert config["readout_layer"] == (-1 if best["layer"] == NUM_LAYERS else best["layer"])
    assert best["test_clip_ids"] == [record.clip_id for record in test_split_records]
    expected = best["test_predictions"]
    np.testing.assert_allclose(predicted_scores(model_dir, test_split_records, tmp_path), expected, atol=1e-4)
    items = [{"path": record.media_path, "transcript": record.text} for record in test_split_records]
    np.testing.assert_allclose(json.loads(run_fresh(PIPELINE_SCRIPT, model_dir, json.dumps(items), cwd=tmp_path)),
                               expected, atol=1e-4)


def test_head_only_training_reports_test_metrics_and_seconds_per_epoch(exported_probe):
    _, report = exported_probe
    head = report["head_only"]
    assert head["epochs"] == 4 and head["seconds_per_epoch"] > 0 and head["head_hidden_size"] == 16
    assert (head["layer"], head["pooling"]) == (report["best"]["layer"], report["best"]["pooling"])
    assert all(math.isfinite(head[key]) for key in ("MAE", "Corr", "valid_MAE"))


def exit_status(argv) -> int:
    try:
        return cli_main(argv)
    except SystemExit as exit:  # the argument parser's own refusals
        return exit.code


@pytest.mark.parametrize("flag, value", [("--poolings", "attention"), ("--poolings", ","), ("--layers", "7"), ("--layers", "x"), ("--score_range", "3,-3")])
def test_a_bad_probe_flag_is_one_line_and_exit_2(tiny_backbone_dir, demo_dataset_dir, tmp_path, capsys, flag, value):
    assert exit_status(["probe", *probe_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "out"), flag, value]) == 2
    err = capsys.readouterr().err
    assert flag.removeprefix("--") in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_train_refuses_a_readout_layer_the_backbone_lacks(tiny_backbone_dir, demo_dataset_dir, tmp_path, capsys):
    flags = training_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "run", "--readout_layer", "3")
    assert exit_status(["train", *flags]) == 2
    assert "--readout_layer 3" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_a_model_trained_with_mean_pooling_at_layer_1_scores_in_a_fresh_process_like_predict(
        tiny_backbone_dir, demo_dataset_dir, test_split_records, tmp_path):
    output_dir = tmp_path / "run"
    summary = train_with_trainer.main(training_flags(
        tiny_backbone_dir, demo_dataset_dir, output_dir, "--pooling", "mean", "--readout_layer", "1",
        "--num_train_epochs", "1", "--results_dir", "none"))
    model_dir = Path(summary["export_dir"])
    config = json.loads((model_dir / "config.json").read_text())
    assert (config["pooling"], config["readout_layer"]) == ("mean", 1)
    with safe_open(str(model_dir / "model.safetensors"), framework="np") as handle:
        # transformers writes the language model back under the original checkpoint's name, `thinker.model`
        layers = {key.split(".")[3] for key in handle.keys() if key.startswith("thinker.model.layers.")}
    assert layers == {"0"}  # the second decoder layer is neither trained, saved nor run
    expected = predicted_scores(model_dir, test_split_records, tmp_path)
    items = [{"path": record.media_path, "transcript": record.text} for record in test_split_records]
    np.testing.assert_allclose(json.loads(run_fresh(PIPELINE_SCRIPT, model_dir, json.dumps(items), cwd=tmp_path)),
                               expected, atol=1e-4)
    assert np.ptp(expected) > 0
    # The trained regressor is a valid --model for the probe: its one stored layer (and the embeddings) are probed.
    probe_dir = tmp_path / "probe"
    assert probe_main(probe_flags(model_dir, demo_dataset_dir, probe_dir, "--quantization", "none", "--poolings", "mean",
                                  "--export_best", "true")) == 0
    report = json.loads((probe_dir / "probe.json").read_text())
    assert [(entry["layer"], entry["pooling"]) for entry in report["entries"]] == [(0, "mean"), (1, "mean")]
    assert json.loads((probe_dir / "model" / "config.json").read_text())["readout_layer"] == report["best"]["layer"]
