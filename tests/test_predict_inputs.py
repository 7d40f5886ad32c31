"""`omni-regressor predict` on hostile inputs (omni_regressor/predict.py): every damaged, odd or non-media file in a
folder gets its own row (a too-short clip is scored on the modalities it has), special-token transcripts are plain
text, BOM and Latin-1 input tables are read, and a run killed with SIGKILL resumes without losing or repeating a row."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hostile_media as hm
from conftest import REPO_ROOT, predict, read_csv


# file name -> (modalities of the row, or None for an error row; a fragment of the error)
FOLDER_CASES = {
    "a_good.mp4": ("audio+video", ""),
    "b_good.mp4": ("audio+video", ""),
    "tiny.mp4": ("video", ""),  # 5 ms of audio is no audio input: scored on what it has
    "cut.mp4": (None, "file cut or corrupt after its header"),
    "tall.mp4": (None, "unsupported frame geometry 2x600"),
    "wide.mp4": (None, "unsupported frame geometry 600x2"),
    "rotated.mp4": ("video", ""),
    "variable_frame_rate.mp4": ("audio+video", ""),
    "audio_only.mp4": ("audio", ""),
    "video_only.mp4": ("video", ""),
    "ultra_hd.mp4": ("audio+video", ""),
    "ten_minutes.mp4": ("audio+video", ""),
    hm.NON_ASCII_CLIP_NAME: ("audio+video", ""),
    "zero_byte.mp4": (None, "not a readable media file"),
    "text.mp4": (None, "not a readable media file"),
    "random.mp4": (None, "not a readable media file"),
    "dangling.mp4": (None, "a broken symbolic link"),
    "loop.mp4": (None, "a symbolic link loop"),
}


@pytest.fixture(scope="module")
def folder_prediction(regressor, clip_folder):
    """`predict FOLDER --output new/sub/out.csv`: (exit status, stderr, rows by file name, output path)."""
    output = clip_folder.parent / "new" / "sub" / "out.csv"
    status, _, err = predict(regressor, clip_folder, "--output", output, "--batch_size", "4")
    rows = {Path(row["path"]).name: row for row in read_csv(output)} if output.is_file() else {}
    return status, err, rows, output


def test_predict_creates_the_output_folders(folder_prediction):
    _, _, rows, output = folder_prediction
    assert output.is_file() and len(rows) == len(FOLDER_CASES)


def test_predict_gives_each_hostile_file_its_row_and_exit_status_1(folder_prediction):
    status, err, rows, _ = folder_prediction
    assert status == 1 and "Traceback" not in err
    assert set(rows) == set(FOLDER_CASES)
    for name, (modalities, error) in FOLDER_CASES.items():
        row = rows[name]
        if modalities is None:
            assert row["score"] == "" and error in row["error"], (name, row)
            assert f"error: {row['path']}" in err, name
        else:
            assert row["error"] == "" and np.isfinite(float(row["score"])), (name, row)
            assert row["modalities"] == modalities, (name, row)
    failed = sum(modalities is None for modalities, _ in FOLDER_CASES.values())
    scored = len(FOLDER_CASES) - failed
    assert f"{scored} of {len(FOLDER_CASES)} clips scored now, {failed} failed; {len(FOLDER_CASES)} rows in the output." in err


def test_predict_says_it_does_not_follow_a_looping_folder_link(folder_prediction, clip_folder):
    assert f"note: {clip_folder / 'again'} is a symbolic link to a folder; not followed." in folder_prediction[1]


def test_hostile_files_do_not_change_the_scores_of_the_good_clips(folder_prediction, regressor, clip_folder, tmp_path):
    good = [name for name, (modalities, _) in FOLDER_CASES.items() if modalities is not None]
    output = tmp_path / "good.csv"
    status, _, _ = predict(regressor, *[clip_folder / name for name in good], "--output", output, "--batch_size", "4")
    assert status == 0
    alone = {Path(row["path"]).name: float(row["score"]) for row in read_csv(output)}
    for name in good:
        assert float(folder_prediction[2][name]["score"]) == pytest.approx(alone[name], abs=1e-5), name


def test_special_token_transcripts_are_scored_as_plain_text(regressor, clip_folder, tmp_path):
    clip = str(clip_folder / "a_good.mp4")
    texts = [*hm.SPECIAL_TOKEN_TRANSCRIPTS, "it was great indeed", ""]
    table = hm.write_csv(tmp_path / "inputs.csv", ("path", "text"), [(clip, text) for text in texts])
    status, _, err = predict(regressor, table, "--output", tmp_path / "out.csv", "--batch_size", "1")
    assert status == 0, err
    rows = dict(zip(texts, read_csv(tmp_path / "out.csv")))
    assert all(row["error"] == "" for row in rows.values())
    assert rows[hm.TRANSCRIPT_WITH_VIDEO_TOKEN]["score"] == rows["it was great indeed"]["score"]
    assert rows[hm.TRANSCRIPT_AUDIO_TOKEN_ONLY]["modalities"] == "audio+video"  # nothing left: no text
    assert rows[hm.TRANSCRIPT_AUDIO_TOKEN_ONLY]["score"] == rows[""]["score"]
    for text in (hm.TRANSCRIPT_WITH_TURN_INJECTION, hm.TRANSCRIPT_WITH_IMAGE_TOKENS):
        assert rows[text]["modalities"] == "text+audio+video"


@pytest.mark.parametrize("builder, text", [(hm.predict_csv_with_bom, "it was great"),
                                           (hm.predict_csv_latin1, hm.LATIN1_TRANSCRIPT)], ids=["bom", "latin1"])
def test_predict_reads_bom_and_latin1_path_text_csvs(regressor, tmp_path, builder, text):
    table = builder(tmp_path)
    status, _, err = predict(regressor, table, "--output", tmp_path / "out.csv")
    assert status == 0, err
    (row,) = read_csv(tmp_path / "out.csv")
    assert row["modalities"] == "text+audio+video"
    clip = tmp_path / Path(row["path"]).name
    status, _, _ = predict(regressor, clip, "--transcript", text, "--output", tmp_path / "typed.csv")
    assert status == 0
    assert row["score"] == read_csv(tmp_path / "typed.csv")[0]["score"]


def test_predict_killed_with_sigkill_resumes_without_losing_or_repeating_a_row(regressor, demo_dataset_dir, tmp_path):
    clips = sorted(str(path) for path in (demo_dataset_dir / "Raw").rglob("*.mp4"))
    inputs = clips * 3
    table = hm.write_csv(tmp_path / "inputs.csv", ("path", "text"), [(clip, "it was fine") for clip in inputs])
    output = tmp_path / "scores.csv"
    command = [sys.executable, "-m", "omni_regressor.cli", "predict", "--model", str(regressor), str(table),
               "--output", str(output), "--batch_size", "1", "--num_workers", "0", "--device", "cpu", "--no_progress"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if output.is_file() and output.read_bytes().count(b"\n") >= 2:  # the header and the first rows
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    written_before = output.read_bytes().count(b"\n") - 1
    assert 0 < written_before < len(inputs)

    status, _, err = predict(regressor, table, "--output", output, "--resume", "--batch_size", "1",
                             "--num_workers", "0")
    assert status == 0, err
    assert f"resuming: {written_before} of {len(inputs)} inputs already scored." in err
    rows = read_csv(output)
    assert [row["path"] for row in rows] == inputs
    score_of = {}
    for row in rows:
        assert row["error"] == "" and score_of.setdefault(row["path"], row["score"]) == row["score"]
