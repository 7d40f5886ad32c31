"""`--engine ray` (issue #24): predict and evaluate on a local Ray cluster (Ray Data) give the local engine's rows and
metrics, every input once and in input order, with error rows for bad clips, and survive a scorer actor killed
mid-run. Every test shares the session's 2-CPU cluster (`ray_cluster`)."""

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import SMALL_PIXEL_FLAGS, read_csv
from omni_regressor.data import read_mmsa
from omni_regressor.eval.evaluation import main as evaluate_main
from omni_regressor.predict import main as predict_main


def predict(model_dir, *argv) -> int:
    return predict_main(["--model", str(model_dir), "--no_progress", *SMALL_PIXEL_FLAGS, *map(str, argv)])


def assert_same_rows(rows, reference):
    """Every input once, in input order, the same columns, errors and scores (1e-4) as the reference."""
    assert [row["path"] for row in rows] == [row["path"] for row in reference]
    assert list(rows[0]) == list(reference[0])
    assert [row["error"] != "" for row in rows] == [row["error"] != "" for row in reference]
    scored = [index for index, row in enumerate(reference) if not row["error"]]
    np.testing.assert_allclose([float(rows[index]["score"]) for index in scored],
                               [float(reference[index]["score"]) for index in scored], atol=1e-4)


@pytest.fixture(scope="module")
def clip_folder(demo_dataset_dir, tmp_path_factory) -> Path:
    """Four good clips (one in a subfolder) and one corrupt .mp4."""
    records = read_mmsa(demo_dataset_dir)[0]
    folder = tmp_path_factory.mktemp("ray-clips") / "clips"
    (folder / "sub").mkdir(parents=True)
    for name, record in zip(["a.mp4", "b.mp4", "c.mp4", "sub/d.mp4"], records):
        shutil.copyfile(record.media_path, folder / name)
    (folder / "broken.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return folder


@pytest.fixture(scope="module")
def local_rows(trained_export, clip_folder, tmp_path_factory) -> list[dict]:
    output = tmp_path_factory.mktemp("ray-local") / "local.csv"
    assert predict(trained_export, "--device", "cpu", clip_folder, "--output", output) == 1
    return read_csv(output)


def test_ray_predict_writes_the_local_scores_for_every_input_once_in_order_and_exits_1_for_the_bad_clip(
        ray_cluster, trained_export, clip_folder, local_rows, tmp_path, capsys):
    output = tmp_path / "ray.csv"
    status = predict(trained_export, "--engine", "ray", "--num_scorers", "2", "--batch_size", "2", clip_folder,
                     "--output", output)
    assert status == 1
    rows = read_csv(output)
    assert_same_rows(rows, local_rows)
    broken = [row for row in rows if row["error"]]
    assert [row["clip_id"] for row in broken] == ["broken"] and broken[0]["score"] == ""
    assert "broken.mp4" in capsys.readouterr().err


def test_ray_predict_resumes_and_reads_a_parquet_manifest_with_file_uris(
        ray_cluster, trained_export, clip_folder, local_rows, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = [row["path"] for row in local_rows if not row["error"]]
    # relative paths resolve against the manifest's folder; file:// media is read through pyarrow's file systems
    manifest_dir = tmp_path / "manifest"
    manifest_dir.mkdir()
    shutil.copyfile(good[0], manifest_dir / "first.mp4")
    paths = ["first.mp4", *(Path(path).as_uri() for path in good[1:])]
    pq.write_table(pa.table({"path": paths}), manifest_dir / "clips.parquet")
    output = tmp_path / "ray.jsonl"
    assert predict(trained_export, "--engine", "ray", manifest_dir / "clips.parquet", "--output", output) == 0
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [row["path"] for row in rows] == [str(manifest_dir / "first.mp4"), *paths[1:]]
    np.testing.assert_allclose([row["score"] for row in rows],
                               [float(row["score"]) for row in local_rows if not row["error"]], atol=1e-4)

    # a run killed after two rows: --resume scores only the other inputs and the file ends as a full run's
    output.write_text("".join(line + "\n" for line in output.read_text(encoding="utf-8").splitlines()[:2]))
    capsys.readouterr()
    assert predict(trained_export, "--engine", "ray", manifest_dir / "clips.parquet", "--output", output, "--resume") == 0
    assert "resuming: 2 of 4 inputs already scored." in capsys.readouterr().err
    resumed = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert resumed[:2] == rows[:2] and [row["path"] for row in resumed] == [row["path"] for row in rows]
    np.testing.assert_allclose([row["score"] for row in resumed], [row["score"] for row in rows], atol=1e-5)


def test_a_scorer_actor_killed_mid_run_is_restarted_and_every_row_is_written(
        ray_cluster, trained_export, clip_folder, local_rows, tmp_path):
    from omni_regressor.ray_engine import SCORER_REGISTRY, ScorerRegistry

    ray = ray_cluster
    good = [row["path"] for row in local_rows if not row["error"]]
    inputs = tmp_path / "inputs.csv"  # 12 inputs, one per batch: the run lasts long enough to be killed half-way
    inputs.write_text("path\n" + "".join(f"{path}\n" for path in good * 3), encoding="utf-8")
    output = tmp_path / "ray.csv"
    registry = ray.remote(ScorerRegistry).options(name=SCORER_REGISTRY).remote()
    statuses = []
    run = threading.Thread(target=lambda: statuses.append(predict(
        trained_export, "--engine", "ray", "--batch_size", "1", "--chunk_batches", "1", inputs, "--output", output)))
    try:
        run.start()
        deadline = time.monotonic() + 240
        while (not output.is_file() or output.read_bytes().count(b"\n") < 3) and time.monotonic() < deadline:
            time.sleep(0.01)  # the header and two rows: the scorer is loaded and working
        scorers = ray.get(registry.scorers.remote())
        assert len(scorers) == 1 and run.is_alive()
        ray.kill(scorers[0], no_restart=False)
        run.join(timeout=300)
        restarted = ray.get(registry.scorers.remote())
    finally:
        ray.kill(registry)
    assert statuses == [0]
    assert len(restarted) == 2  # the killed scorer came back (its constructor ran again)
    rows = read_csv(output)
    assert [row["path"] for row in rows] == good * 3
    reference = {row["path"]: float(row["score"]) for row in local_rows if not row["error"]}
    np.testing.assert_allclose([float(row["score"]) for row in rows], [reference[row["path"]] for row in rows], atol=1e-4)


def test_evaluate_on_ray_writes_the_local_predictions_and_metrics(ray_cluster, trained_export, demo_dataset_dir, tmp_path):
    common = ["--model", str(trained_export), "--dataset_dir", str(demo_dataset_dir), "--split", "test",
              *SMALL_PIXEL_FLAGS, "--media_cache_dir", str(tmp_path / "media")]
    assert evaluate_main([*common, "--output_dir", str(tmp_path / "local")]) == 0
    assert evaluate_main([*common, "--output_dir", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    local, on_ray = (read_csv(tmp_path / name / "predictions.csv") for name in ("local", "ray"))
    assert [(row["video_id"], row["clip_id"]) for row in on_ray] == [(row["video_id"], row["clip_id"]) for row in local]
    np.testing.assert_allclose([float(row["prediction"]) for row in on_ray], [float(row["prediction"]) for row in local],
                               atol=1e-4)
    local_metrics, ray_metrics = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("local", "ray"))
    assert ray_metrics["num_clips"] == local_metrics["num_clips"] > 0
    np.testing.assert_allclose(ray_metrics["MAE"], local_metrics["MAE"], atol=1e-4)


@pytest.mark.parametrize("argv, message", [
    (["--num_scorers", "2"], "--num_scorers needs --engine ray"),
    (["--engine", "ray", "--transcribe"], "--transcribe runs the Thinker on the driver"),
    (["--engine", "ray", "--num_scorers", "0"], "--num_scorers must be at least 1"),
])
def test_ray_flags_that_do_not_fit_are_usage_errors(trained_export, clip_folder, argv, message, capsys):
    assert predict(trained_export, *argv, clip_folder) == 2
    assert message in capsys.readouterr().err


def test_a_decode_task_copies_remote_media_and_names_the_uri_in_rows_and_errors(trained_export, clip_folder, monkeypatch):
    """The decode task's remote path (`s3://...`), without a bucket: pyarrow's file system is swapped for the local
    one behind a made-up scheme; an unreachable file is its clip's error row, named by its URI."""
    import pickle

    import pyarrow.fs
    import torch

    from omni_regressor.inference import SentimentScorer
    from omni_regressor.ray_engine import prepare_batch
    from omni_regressor.streaming import InputItem

    local = str(clip_folder / "a.mp4")

    class BucketOfLocalFiles:
        @staticmethod
        def from_uri(uri):
            if uri == "bucket://clips/a.mp4":
                return pyarrow.fs.LocalFileSystem(), local
            raise FileNotFoundError(f"{uri}: no such object")

    monkeypatch.setattr(pyarrow.fs, "FileSystem", BucketOfLocalFiles)
    encoder = SentimentScorer.from_pretrained(trained_export, processing=dict(zip(
        [flag.lstrip("-") for flag in SMALL_PIXEL_FLAGS[::2]], map(int, SMALL_PIXEL_FLAGS[1::2]))), device="cpu").encoder
    items = [InputItem(0, "bucket://clips/a.mp4"), InputItem(1, "bucket://clips/missing.mp4"), InputItem(2, local)]
    batch = prepare_batch({"position": [0, 1, 2], "item": [pickle.dumps(item) for item in items]}, encoder, True, None, False)
    remote, missing, reference = (pickle.loads(blob) for blob in batch["prepared"])
    assert batch["position"] == [0, 1, 2]
    assert (remote.path, remote.error, remote.modalities) == ("bucket://clips/a.mp4", None, reference.modalities)
    assert remote.encoded.keys() == reference.encoded.keys()
    for name, value in reference.encoded.items():
        assert torch.equal(remote.encoded[name], value) if isinstance(value, torch.Tensor) else remote.encoded[name] == value
    assert missing.encoded is None and missing.error.startswith("bucket://clips/missing.mp4: FileNotFoundError")


def test_ray_stream_keeps_its_argument_order_and_takes_window_batches_as_the_former_name(monkeypatch):
    """`stream(items, batch_size, chunk_batches, ...)` hands the chunk size to the Ray Dataset whichever way it is
    named (no cluster needed: the dataset is replaced by its results)."""
    import pickle

    from omni_regressor.ray_engine import RayScorer
    from omni_regressor.streaming import InputItem
    from pipeline_omni_regressor import ClipScore

    asked = []

    class Results:
        def __init__(self, items):
            self.items = items

        def iter_batches(self, **_):  # in reverse: the driver puts them back in input order
            results = [pickle.dumps(ClipScore(item.path, 0.0, ())) for item in self.items[::-1]]
            yield {"position": [1, 0], "result": results}

    def dataset(self, items, batch_size, chunk_batches, allow_missing_modalities=True, explain=False):
        asked.append((batch_size, chunk_batches))
        return Results(items)

    monkeypatch.setattr(RayScorer, "dataset", dataset)
    scorer = RayScorer(None, None, None, None, None, None)
    items = [InputItem(0, "a.mp4"), InputItem(1, "b.mp4")]
    for rows in (scorer.stream(items, 2, 3), scorer.stream(items, batch_size=2, chunk_batches=3),
                 scorer.stream(items, 2, window_batches=3)):
        assert [(item.path, result.path) for item, result in rows] == [("a.mp4", "a.mp4"), ("b.mp4", "b.mp4")]
    assert asked == [(2, 3)] * 3
