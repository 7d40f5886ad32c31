"""Streaming inference (omni_regressor/streaming.py, through `omni-regressor predict` and `evaluate`): memory that does
not grow with the number of inputs, chunks of `--chunk_batches` batches, rows that survive a kill, `--resume`, and
scoring sharded over torchrun ranks.

The prediction tests score 640x360 clips at the official pixel limits (each decoded clip ~2.9 MB, each scored in
~0.1 s on 2 cores), so that memory per clip is visible and a run lasts long enough to be killed half-way.
"""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from conftest import SMALL_PIXEL_FLAGS, free_port
from omni_regressor.benchmarks.common import (OFFICIAL_PIXEL_FLAGS, decoded_clip_bytes, peak_rss_bytes,
                                              predict_command, write_clip_folder)
from omni_regressor.predict import RowWriter, read_rows
from omni_regressor.predict import main as predict_main

REPO_ROOT = Path(__file__).resolve().parents[1]
NUM_CLIPS = 16


def torchrun(*argv) -> list[str]:
    """`torchrun --nproc_per_node 2 --no-python omni-regressor ...` on a free port."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
            "--no-python", shutil.which("omni-regressor") or "omni-regressor", *map(str, argv)]


def run(command) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, timeout=300)


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def assert_same_rows(rows, reference):
    """Every input once, in input order, with the reference scores."""
    assert [row["path"] for row in rows] == [row["path"] for row in reference]
    np.testing.assert_allclose([row["score"] for row in rows], [row["score"] for row in reference], atol=1e-5)


def wait_for_rows(paths, count: int, process, timeout: float = 240):
    """Polls until the files in `paths()` hold `count` complete lines together (or the process ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if sum(path.read_bytes().count(b"\n") for path in paths() if path.is_file()) >= count:
            return
        time.sleep(0.01)


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scale-clips") / "clips"
    write_clip_folder(folder, NUM_CLIPS, distinct=8)
    return folder


def scoring_flags(*extra) -> list[str]:
    """One clip per batch and per chunk: rows appear one by one, so a run can be stopped between them."""
    return ["--batch_size", "1", "--chunk_batches", "1", *OFFICIAL_PIXEL_FLAGS, *extra]


@pytest.fixture(scope="module")
def reference(trained_export, clip_folder, tmp_path_factory) -> list[dict]:
    """The rows of one uninterrupted single-process run."""
    output = tmp_path_factory.mktemp("reference") / "scores.jsonl"
    status = predict_main(["--model", str(trained_export), str(clip_folder), "--output", str(output), "--device", "cpu",
                           "--no_progress", *scoring_flags()])
    assert status == 0
    return read_jsonl(output)


def test_predict_peak_memory_does_not_grow_with_the_number_of_clips(trained_export, tmp_path):
    """8 vs 40 clips: the peak RSS of predict (largest of its processes) grows by less than one batch of decoded media.

    Memory holds one chunk of encoded clips (batch 4 x chunk 1) plus the worker's prefetch (2): 6 clips, fewer than
    8, so both runs reach the same steady state. Holding every clip instead would add 32 encoded clips (~11 MB each).
    """
    many = write_clip_folder(tmp_path / "many", 40, distinct=4)
    (tmp_path / "few").mkdir()
    for path in many[:8]:
        shutil.copyfile(path, tmp_path / "few" / path.name)
    batch_size = 4
    peaks = {}
    for name in ("few", "many"):
        status, peaks[name] = peak_rss_bytes(predict_command(
            trained_export, tmp_path / name, "--output", tmp_path / f"{name}.jsonl", "--num_workers", "1",
            "--batch_size", batch_size, "--chunk_batches", "1", "--media_cache_dir", tmp_path / f"cache-{name}",
            *OFFICIAL_PIXEL_FLAGS), cwd=REPO_ROOT, timeout=300)
        assert status == 0
    assert [len(read_jsonl(tmp_path / f"{name}.jsonl")) for name in ("few", "many")] == [8, 40]
    one_batch = batch_size * decoded_clip_bytes(trained_export, many[0])
    growth = peaks["many"] - peaks["few"]
    assert growth < one_batch, (f"peak RSS grew by {growth / 2**20:.1f} MB from 8 to 40 clips; one batch of decoded "
                                f"media is {one_batch / 2**20:.1f} MB")


def test_killed_predict_keeps_its_rows_and_resume_scores_only_the_rest(trained_export, clip_folder, reference, tmp_path):
    output = tmp_path / "scores.jsonl"
    command = predict_command(trained_export, clip_folder, "--output", output, *scoring_flags())
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_for_rows(lambda: [output], 2, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL

    killed = output.read_bytes()
    assert killed.endswith(b"\n"), "a row was half-written"
    kept = read_jsonl(output)
    assert 0 < len(kept) < NUM_CLIPS
    assert_same_rows(kept, reference[: len(kept)])

    resumed = run(predict_command(trained_export, clip_folder, "--output", output, "--resume", *scoring_flags()))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    remaining = NUM_CLIPS - len(kept)
    assert f"resuming: {len(kept)} of {NUM_CLIPS} inputs already scored." in resumed.stderr
    assert f"{remaining} of {remaining} clips scored now, 0 failed; {NUM_CLIPS} rows in the output." in resumed.stderr
    assert output.read_bytes().startswith(killed), "the rows written before the kill were rewritten"
    assert_same_rows(read_jsonl(output), reference)


def test_two_rank_torchrun_predict_gives_one_output_equal_to_one_rank(trained_export, clip_folder, reference, tmp_path):
    output = tmp_path / "scores.jsonl"
    result = run(torchrun("predict", "--model", trained_export, clip_folder, "--output", output, "--device", "cpu",
                          "--no_progress", *scoring_flags()))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_rows(read_jsonl(output), reference)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scores.jsonl", "scores.jsonl.lock", "scores.jsonl.provenance.json"], "partial files were left behind"


def test_a_failed_rank_fails_the_launch_and_resume_scores_only_what_is_missing(trained_export, clip_folder, reference,
                                                                               tmp_path):
    output = tmp_path / "scores.csv"
    launch = subprocess.Popen(torchrun("predict", "--model", trained_export, clip_folder, "--output", output,
                                       "--device", "cpu", "--no_progress", *scoring_flags()),
                              cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_rows(lambda: list(tmp_path.glob("scores.csv.partial-1-*.jsonl")), 1, launch)
    rank_1 = [child for child in psutil.Process(launch.pid).children() if child.environ().get("RANK") == "1"]
    assert len(rank_1) == 1
    rank_1[0].send_signal(signal.SIGKILL)
    _, stderr = launch.communicate(timeout=120)
    assert launch.returncode != 0
    assert "FAILED" in stderr.decode(errors="replace") or "failed" in stderr.decode(errors="replace").lower()
    assert not output.exists()
    partial_rows = [row for path in tmp_path.glob("scores.csv.partial-*.jsonl") for row in read_jsonl(path)]
    assert 0 < len(partial_rows) < NUM_CLIPS

    resumed = run(predict_command(trained_export, clip_folder, "--output", output, "--resume", *scoring_flags()))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    remaining = NUM_CLIPS - len(partial_rows)
    assert f"resuming: {len(partial_rows)} of {NUM_CLIPS} inputs already scored." in resumed.stderr
    assert f"{remaining} of {remaining} clips scored now, 0 failed; {NUM_CLIPS} rows in the output." in resumed.stderr
    rows = read_rows(output)
    assert_same_rows([{**row, "score": float(row["score"])} for row in rows], reference)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scores.csv", "scores.csv.lock", "scores.csv.provenance.json"], "partial files were left behind"


def test_two_rank_torchrun_evaluate_gives_the_metrics_of_one_process(trained_export, demo_dataset_dir, tmp_path):
    from omni_regressor.eval.evaluation import evaluate_model, read_predictions

    one = evaluate_model(trained_export, demo_dataset_dir, split="all", output_dir=tmp_path / "one", num_workers=0,
                         progress=False)
    result = run(torchrun("evaluate", "--model", trained_export, "--dataset_dir", demo_dataset_dir, "--split", "all",
                          "--output_dir", tmp_path / "two"))
    assert result.returncode == 0, result.stderr[-3000:]
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["processes"] == 2 and one["processes"] == 1
    for name, value in one.items():
        if isinstance(value, float) and name != "ms_per_clip":
            assert two[name] == pytest.approx(value, abs=1e-6), name
    ids_one, labels_one, predictions_one = read_predictions(tmp_path / "one" / "predictions.csv")
    ids_two, labels_two, predictions_two = read_predictions(tmp_path / "two" / "predictions.csv")
    assert ids_two == ids_one and labels_two == labels_one
    np.testing.assert_allclose(predictions_two, predictions_one, atol=1e-5)
    assert not list((tmp_path / "two").glob("*.partial-*"))


def test_unreadable_clip_mid_stream_is_an_error_row_and_the_stream_goes_on(trained_export, demo_dataset_dir, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    clips = sorted((demo_dataset_dir / "Raw").rglob("*.mp4"))[:6]
    for index, clip in enumerate(clips):
        shutil.copyfile(clip, folder / f"clip_{index * 2:02d}.mp4")
    (folder / "clip_05.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    output = tmp_path / "scores.csv"
    status = predict_main(["--model", str(trained_export), str(folder), "--output", str(output), "--device", "cpu",
                           "--no_progress", "--batch_size", "2", "--num_workers", "1", *SMALL_PIXEL_FLAGS])
    assert status == 1
    rows = read_rows(output)
    assert [Path(row["path"]).name for row in rows] == sorted(path.name for path in folder.iterdir())
    broken = rows[3]
    assert broken["score"] == "" and "clip_05.mp4" in broken["error"]
    assert all(row["score"] and row["error"] == "" for position, row in enumerate(rows) if position != 3)
    assert output.read_text(encoding="utf-8").count("\n") == len(rows) + 1


def test_each_row_is_one_line_whatever_its_text_holds(tmp_path):
    error = "decoder said:\nline two\r\nand a\u2028separator"
    for name in ("rows.csv", "rows.jsonl"):
        writer = RowWriter(tmp_path / name, ["path", "score", "error"], append=False)
        writer.write({"path": "a.mp4", "score": None, "error": error})
        writer.write({"path": "b.mp4", "score": 0.5, "error": ""})
        writer.close()
        rows = read_rows(tmp_path / name)
        assert [row["path"] for row in rows] == ["a.mp4", "b.mp4"]
        assert rows[0]["error"].startswith("decoder said:") and "separator" in rows[0]["error"]
        header = name.endswith(".csv")
        assert (tmp_path / name).read_bytes().count(b"\n") == 2 + header


def test_leftover_partial_files_are_refused_without_resume_or_overwrite(trained_export, clip_folder, tmp_path, capsys):
    output = tmp_path / "scores.jsonl"
    (tmp_path / "scores.jsonl.partial-1-0123456789ab.jsonl").write_text("")
    status = predict_main(["--model", str(trained_export), str(clip_folder), "--output", str(output), "--no_progress"])
    assert status == 2
    assert "interrupted run; pass --resume to complete it or --overwrite" in capsys.readouterr().err


def test_resume_refuses_an_output_with_rows_of_other_inputs(trained_export, clip_folder, tmp_path, capsys):
    output = tmp_path / "scores.jsonl"
    elsewhere = tmp_path / "elsewhere" / "clip.mp4"
    elsewhere.parent.mkdir()
    shutil.copyfile(next(clip_folder.iterdir()), elsewhere)
    assert predict_main(["--model", str(trained_export), str(elsewhere), "--output", str(output), "--no_progress"]) == 0
    capsys.readouterr()
    status = predict_main(["--model", str(trained_export), str(clip_folder), "--output", str(output), "--resume",
                           "--no_progress"])
    assert status == 2
    assert f"1 rows for inputs not given now (first: {elsewhere})" in capsys.readouterr().err


def test_input_workers_decoding_the_same_clip_leave_one_whole_cache_entry(trained_export, demo_dataset_dir, tmp_path):
    from omni_regressor.inference import SentimentScorer
    from omni_regressor.streaming import InputItem, stream_scores

    scorer = SentimentScorer.from_pretrained(trained_export, media_cache_dir=tmp_path / "cache", device="cpu")
    first, second = sorted((demo_dataset_dir / "Raw").rglob("*.mp4"))[:2]
    items = [InputItem(index, str(path)) for index, path in enumerate([first] * 6 + [second] * 2)]
    results = [result for _, result in stream_scores(scorer.model, scorer.encoder, items, batch_size=1, num_workers=2)]
    assert all(result.error is None for result in results)
    assert len({result.score for result in results[:6]}) == 1 and len({result.score for result in results[6:]}) == 1
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2
    assert not list((tmp_path / "cache").glob(".*.tmp"))


def test_chunks_hold_chunk_batches_times_batch_size_clips_and_the_former_keywords_work(
        tiny_regressor_dir, demo_dataset_dir, tmp_path):
    from omni_regressor.inference import SentimentScorer
    from omni_regressor.streaming import InputItem, stream_scores
    from pipeline_omni_regressor import ClipScore

    scorer = SentimentScorer.from_pretrained(tiny_regressor_dir, media_cache_dir=tmp_path / "cache", device="cpu")
    encoder = scorer.encoder
    paths = sorted((demo_dataset_dir / "Raw").rglob("*.mp4"))[:5]
    items = [InputItem(index, str(path)) for index, path in enumerate(paths)]
    sizes = []

    def score_by_position(clips):  # a score that says which clip it is: the rows must come back in input order
        sizes.append(len(clips))
        return [ClipScore(clip.path, float(clip.index), clip.modalities) for clip in clips]

    def chunks_seen(*positional, **keywords) -> list[int]:
        sizes.clear()
        results = list(stream_scores(None, encoder, items, *positional, **keywords))
        assert [result.score for _, result in results] == [0.0, 1.0, 2.0, 3.0, 4.0]
        return list(sizes)

    assert chunks_seen(batch_size=2, chunk_batches=2, score_chunk=score_by_position) == [4, 1]
    assert chunks_seen(batch_size=2, window_batches=2, score_window=score_by_position) == [4, 1]  # the former names
    # positions unchanged: batch_size, num_workers, chunk_batches, allow_missing_modalities, modalities, device, scorer
    assert chunks_seen(2, 0, 1, True, None, None, score_by_position) == [2, 2, 1]
