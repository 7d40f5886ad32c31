"""Hostile inputs (issue #13): every damaged clip, odd transcript, bad flag, odd file and interrupted run the issue
lists, driven through the public entry points as a user would (`omni-regressor <command>` in this process or in a
subprocess, `train_with_trainer.main`), each with its exact outcome: problem kind, clip id, exit status, rows written,
files untouched.

Choices this suite pins down:
- A clip too short for a modality (1 frame + 5 ms of audio) is a `too_short_audio` problem for train/evaluate/
  check-data with audio; `predict` scores it on the modalities it can provide (the `modalities` column says which).
- A transcript is data: special-token strings (`<|VIDEO|>`, `<|im_start|>`...) are removed before the prompt is
  built, so the prompt's structure never changes; a transcript of special tokens only is an empty transcript.
- A clip cut after its header is found only by decoding (`check-data` decodes by default); `--full_decode false`
  reads headers and finds the rest.
"""

import contextlib
import csv
import hashlib
import io
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import hostile_media as hm
import train_with_trainer
from conftest import REPO_ROOT, SMALL_PIXEL_FLAGS, SMALL_PIXELS, training_flags
from omni_regressor.cli import main as cli_main

# --- helpers -------------------------------------------------------------------------------------------------------


def cli(*argv) -> tuple[int, str, str]:
    """`omni-regressor ARGV` in this process -> (exit status, stdout, stderr), as a shell sees them (argparse's
    usage errors raise SystemExit(2), which is the process's exit status)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli_main([str(value) for value in argv])
        except SystemExit as exit_request:
            status = exit_request.code
    return status, out.getvalue(), err.getvalue()


def predict(model, *argv) -> tuple[int, str, str]:
    return cli("predict", "--model", model, "--device", "cpu", "--no_progress", *argv)


PROGRESS_BAR = re.compile(r"^[^:]*: +\d+%\|")


def one_error_line(stderr: str, *fragments) -> str:
    """The user error is the only line on stderr besides progress bars, names what it is about, and is no traceback."""
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip() and not PROGRESS_BAR.match(line)]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def problem_lines(stdout: str) -> dict[str, str]:
    """check-data's `clip_id<TAB>kind<TAB>detail` lines -> {clip_id: kind}."""
    return {line.split("\t")[0]: line.split("\t")[1] for line in stdout.splitlines() if line.count("\t") >= 2}


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def digests(folder) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path (to show that nothing was touched)."""
    folder = Path(folder)
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def rewrite_modes(root, mode_of) -> Path:
    """Rewrites label.csv's `mode` column with `mode_of(old_mode)`."""
    label_csv = Path(root) / "label.csv"
    with open(label_csv, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    fieldnames = list(rows[0])
    for row in rows:
        row["mode"] = mode_of(row["mode"])
    with open(label_csv, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return Path(root)


def dataset_view(source, destination, mode_of) -> Path:
    """A dataset sharing `source`'s clips (Raw/ is a link) with other modes."""
    destination = Path(destination)
    destination.mkdir(parents=True)
    shutil.copyfile(Path(source) / "label.csv", destination / "label.csv")
    os.symlink(Path(source).resolve() / "Raw", destination / "Raw", target_is_directory=True)
    return rewrite_modes(destination, mode_of)


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fails the test if any model weights load (every regressor/backbone load goes through this classmethod)."""
    from transformers import PreTrainedModel

    def refuse(cls, *args, **kwargs):
        raise AssertionError(f"{cls.__name__} was loaded before the error was found")

    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(refuse))


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can write into: mode 0o555, and for root (who ignores modes) the immutable attribute."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    (folder / "kept.txt").write_text("kept")
    folder.chmod(0o555)
    immutable = False
    if os.access(folder, os.W_OK):
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("this user can write into any folder and cannot set the immutable attribute")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


# --- a dataset with every hostile clip -------------------------------------------------------------------------

TINY, CUT, TALL = "hostile/tiny", "hostile/cut", "hostile/tall"


@pytest.fixture(scope="module")
def hostile_root(demo_dataset_dir, tmp_path_factory):
    """The demo dataset plus a 1-frame + 5 ms clip (test split), a faststart mp4 cut at 60 % and a 2x600 video (train
    split), and special-token transcripts on the first four train clips. -> (root, {transcript: clip_id})."""
    root = tmp_path_factory.mktemp("hostile") / "data"
    shutil.copytree(demo_dataset_dir, root)
    hm.tiny_clip(root / "Raw" / "hostile" / "tiny.mp4")
    hm.truncated_faststart_clip(root / "Raw" / "hostile" / "cut.mp4", keep_fraction=0.6)
    hm.extreme_aspect_clip(root / "Raw" / "hostile" / "tall.mp4")
    with open(root / "label.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    fieldnames = list(rows[0])
    train_rows = [row for row in rows if row["mode"] == "train"]
    clip_of_transcript = {}
    for row, transcript in zip(train_rows, hm.SPECIAL_TOKEN_TRANSCRIPTS):
        row["text"] = transcript
        clip_of_transcript[transcript] = f"{row['video_id']}/{row['clip_id']}"
    for clip_id, mode in (("tiny", "test"), ("cut", "train"), ("tall", "train")):
        rows.append({**rows[0], "video_id": "hostile", "clip_id": clip_id, "text": "it was okay , fine and plain",
                     "label": "0.4", "label_T": "0.4", "label_A": "0.4", "label_V": "0.4", "annotation": "Neutral",
                     "mode": mode})
    with open(root / "label.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return root, clip_of_transcript


@pytest.fixture(scope="module")
def expected_problems(hostile_root) -> dict[str, str]:
    _, clip_of_transcript = hostile_root
    return {
        TINY: "too_short_audio",
        CUT: "corrupt_file",
        TALL: "unsupported_geometry",
        clip_of_transcript[hm.TRANSCRIPT_AUDIO_TOKEN_ONLY]: "empty_transcript",  # nothing left after cleaning
    }


@pytest.fixture(scope="module")
def hostile_cache(hostile_root):
    """The media cache the hostile runs share (beside the training run's output, as `training_flags` puts it)."""
    return hostile_root[0].parent / "media-cache"


@pytest.mark.parametrize("decode_flags", [[], ["--full_decode", "true"]], ids=["default", "full_decode"])
def test_check_data_names_each_hostile_clip_with_its_kind(hostile_root, hostile_cache, expected_problems, decode_flags):
    status, out, err = cli("check-data", hostile_root[0], *decode_flags, "--media_cache_dir", hostile_cache,
                           *SMALL_PIXEL_FLAGS)
    assert status == 1 and "Traceback" not in err
    assert problem_lines(out) == expected_problems
    assert "27 clips read, 4 problems." in out
    assert "4 problem(s): corrupt_file=1, unsupported_geometry=1, too_short_audio=1, empty_transcript=1" in out


def test_header_only_check_names_geometry_and_short_audio_but_needs_a_decode_for_the_cut_file(
        hostile_root, expected_problems):
    status, out, _ = cli("check-data", hostile_root[0], "--full_decode", "false", *SMALL_PIXEL_FLAGS)
    assert status == 1
    assert problem_lines(out) == {clip: kind for clip, kind in expected_problems.items() if clip != CUT}


def test_the_tiny_clip_is_no_problem_for_text_and_video(hostile_root, hostile_cache, expected_problems):
    status, out, _ = cli("check-data", hostile_root[0], "--modalities", "T+V", "--media_cache_dir", hostile_cache,
                         *SMALL_PIXEL_FLAGS)
    assert status == 1
    assert problem_lines(out) == {clip: kind for clip, kind in expected_problems.items() if clip != TINY}


# --- training on it ----------------------------------------------------------------------------------------------


def hostile_training_flags(backbone, root, output_dir, *extra):
    return training_flags(backbone, root, output_dir, "--num_train_epochs", "1", "--quantization", "none", *extra)


def test_training_without_skip_bad_clips_stops_before_any_model_loads_naming_each_clip(
        tiny_backbone_dir, hostile_root, expected_problems, no_model_loads):
    output_dir = hostile_root[0].parent / "refused-run"
    status, _, err = cli("train", *hostile_training_flags(tiny_backbone_dir, hostile_root[0], output_dir))
    assert status == 1 and "Traceback" not in err
    printed = {line.split("\t")[0]: line.split("\t")[1] for line in err.splitlines() if line.count("\t") >= 2}
    assert printed == expected_problems
    assert "--skip_bad_clips" in err
    assert not output_dir.exists()


@pytest.fixture(scope="module")
def skip_run(tiny_backbone_dir, hostile_root):
    """One epoch on the hostile dataset with --skip_bad_clips (special-token transcripts among the training clips)."""
    output_dir = hostile_root[0].parent / "run"
    summary = train_with_trainer.main(
        hostile_training_flags(tiny_backbone_dir, hostile_root[0], output_dir, "--skip_bad_clips", "true")
    )
    return output_dir, summary


@pytest.fixture(scope="module")
def regressor(skip_run) -> Path:
    """The exported model of `skip_run`: what predict, evaluate and inspect-inputs load here."""
    return skip_run[0] / "model"


def test_skip_bad_clips_trains_on_the_rest_and_lists_each_skipped_clip(skip_run, expected_problems):
    output_dir, summary = skip_run
    skipped = {row["clip_id"]: row["reason"] for row in read_csv(output_dir / "skipped_clips.csv")}
    assert skipped == expected_problems
    assert summary["skipped_clips"] == 4
    assert (output_dir / "model" / "model.safetensors").is_file()
    assert np.isfinite(summary["test_metrics"]["MAE"])


def test_special_token_transcripts_train_without_changing_the_prompt_structure(skip_run, hostile_root, tiny_processor):
    """The training collator gives a special-token transcript the same special tokens as a clean one."""
    from processing_omni_regressor import ClipEncoder, ProcessingSettings

    _, clip_of_transcript = hostile_root
    skipped = {row["clip_id"] for row in read_csv(skip_run[0] / "skipped_clips.csv")}
    trained_on = [transcript for transcript, clip in clip_of_transcript.items() if clip not in skipped]
    assert len(trained_on) == 3  # every special-token transcript except the one that holds nothing else

    encoder = ClipEncoder(tiny_processor, ProcessingSettings(**SMALL_PIXELS))
    clip = str(hostile_root[0] / "Raw" / "demo_00" / "001.mp4")
    tokenizer = tiny_processor.tokenizer
    special_ids = {token: tokenizer.convert_tokens_to_ids(token) for token in tokenizer.all_special_tokens}

    def token_counts(transcript):
        ids = encoder([{"text": transcript, "media_path": clip, "label": 0.0}])["input_ids"][0].tolist()
        return ids, {token: ids.count(token_id) for token, token_id in special_ids.items()}

    _, clean_counts = token_counts("it was fine")
    for transcript in trained_on:
        assert token_counts(transcript)[1] == clean_counts, transcript
    assert clean_counts["<|VIDEO|>"] > 0 and clean_counts["<|AUDIO|>"] > 0 and clean_counts["<|im_start|>"] == 3
    assert token_counts(hm.TRANSCRIPT_WITH_VIDEO_TOKEN)[0] == token_counts("it was great indeed")[0]


def test_resume_last_skips_a_half_written_checkpoint_and_names_it(skip_run, tiny_backbone_dir, hostile_root, tmp_path,
                                                                  caplog):
    source, _ = skip_run
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    (complete,) = [path for path in run_dir.glob("checkpoint-*")]
    half_written = run_dir / "checkpoint-400"  # a kill during save: weights half there, no trainer_state.json
    half_written.mkdir()
    for path in complete.glob("*.safetensors"):
        (half_written / path.name).write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    caplog.set_level("WARNING", logger="omni_regressor.run")
    summary = train_with_trainer.main(hostile_training_flags(
        tiny_backbone_dir, hostile_root[0], run_dir, "--skip_bad_clips", "true", "--resume_from_checkpoint", "last"))
    assert f"Skipping {half_written}: incomplete" in caplog.text
    saved_state = json.loads((complete / "trainer_state.json").read_text())
    assert summary["log_history"][: len(saved_state["log_history"])] == saved_state["log_history"]
    assert np.isfinite(summary["test_metrics"]["MAE"])


def test_resume_last_without_any_complete_checkpoint_is_one_line(tiny_backbone_dir, demo_dataset_dir, tmp_path,
                                                                 no_model_loads):
    (tmp_path / "run" / "checkpoint-3").mkdir(parents=True)
    status, _, err = cli("train", *hostile_training_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "run",
                                                          "--resume_from_checkpoint", "last"))
    assert status == 2
    one_error_line(err, "--resume_from_checkpoint last", "no complete checkpoint")


@pytest.mark.parametrize(
    ("mode_of", "message"),
    [
        (lambda mode: "train" if mode == "valid" else mode, "no usable clip has mode 'valid'"),
        (lambda mode: "test", "no usable clip has mode 'train'"),
    ],
    ids=["no_valid_split", "no_train_split"],
)
def test_training_without_a_needed_split_is_refused_before_any_model_loads(
        tiny_backbone_dir, demo_dataset_dir, tmp_path, mode_of, message, no_model_loads):
    root = dataset_view(demo_dataset_dir, tmp_path / "data", mode_of)
    status, _, err = cli("train", *hostile_training_flags(tiny_backbone_dir, root, tmp_path / "run"))
    assert status == 2
    one_error_line(err, message)
    assert not (tmp_path / "run").exists()


# --- evaluate ----------------------------------------------------------------------------------------------------


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


# --- predict -----------------------------------------------------------------------------------------------------

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
def clip_folder(demo_dataset_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("predict-inputs") / "clips"
    folder.mkdir()
    shutil.copyfile(demo_dataset_dir / "Raw" / "demo_00" / "001.mp4", folder / "a_good.mp4")
    shutil.copyfile(demo_dataset_dir / "Raw" / "demo_00" / "002.mp4", folder / "b_good.mp4")
    for name, builder in [("tiny", hm.tiny_clip), ("cut", hm.truncated_faststart_clip), ("tall", hm.extreme_aspect_clip),
                          ("wide", hm.wide_extreme_aspect_clip), ("rotated", hm.rotated_clip),
                          ("variable_frame_rate", hm.variable_frame_rate_clip), ("audio_only", hm.audio_only_clip),
                          ("video_only", hm.video_only_clip), ("ultra_hd", hm.ultra_hd_clip),
                          ("ten_minutes", hm.ten_minute_clip), ("zero_byte", hm.zero_byte_file),
                          ("text", hm.text_file_named_mp4), ("random", hm.random_bytes_mp4)]:
        builder(folder / f"{name}.mp4")
    hm.non_ascii_name_clip(folder)
    os.symlink(folder / "missing_target.mp4", folder / "dangling.mp4")
    os.symlink("loop.mp4", folder / "loop.mp4")
    os.symlink(".", folder / "again", target_is_directory=True)  # a folder cycle: not followed, said so
    (folder / "notes.txt").write_text("not a clip")
    return folder


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


def test_special_tokens_in_a_transcript_leave_the_media_tokens_of_the_prompt_alone(regressor, clip_folder):
    def inspected(transcript):
        status, out, err = cli("inspect-inputs", "--model", regressor, clip_folder / "a_good.mp4",
                               "--transcript", transcript)
        assert status == 0, err
        return json.loads(out)

    clean = inspected("it was great indeed")
    for transcript in (hm.TRANSCRIPT_WITH_VIDEO_TOKEN, hm.TRANSCRIPT_WITH_TURN_INJECTION, hm.TRANSCRIPT_WITH_IMAGE_TOKENS):
        report = inspected(transcript)
        assert (report["audio_tokens"], report["video_tokens"]) == (clean["audio_tokens"], clean["video_tokens"])
        assert report["modalities"] == ["text", "audio", "video"]
    assert inspected(hm.TRANSCRIPT_WITH_VIDEO_TOKEN)["total_tokens"] == clean["total_tokens"]


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


def test_a_clip_replaced_with_same_size_and_mtime_gets_its_own_score(regressor, tmp_path):
    cache = tmp_path / "cache"
    dark, bright = hm.uniform_grey_clip(tmp_path / "dark.mp4", 40), hm.uniform_grey_clip(tmp_path / "bright.mp4", 220)
    assert dark.stat().st_size == bright.stat().st_size
    status, _, _ = predict(regressor, dark, bright, "--output", tmp_path / "first.csv", "--media_cache_dir", cache,
                           "--batch_size", "1")
    assert status == 0
    dark_score, bright_score = (row["score"] for row in read_csv(tmp_path / "first.csv"))
    assert dark_score != bright_score
    before = dark.stat()
    dark.write_bytes(bright.read_bytes())  # `cp -p bright.mp4 dark.mp4`
    os.utime(dark, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (dark.stat().st_size, dark.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    status, _, _ = predict(regressor, dark, "--output", tmp_path / "second.csv", "--media_cache_dir", cache,
                           "--batch_size", "1")
    assert status == 0
    assert read_csv(tmp_path / "second.csv")[0]["score"] == bright_score


def test_orphaned_cache_temporary_files_are_cleaned(regressor, clip_folder, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    orphan, live = cache / ".0123abcd.killed.tmp", cache / ".4567cdef.writing.tmp"
    orphan.write_bytes(b"half an entry")
    live.write_bytes(b"another process is writing this one")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(orphan, (two_hours_ago, two_hours_ago))
    status, _, _ = predict(regressor, clip_folder / "a_good.mp4", "--output", tmp_path / "out.csv",
                           "--media_cache_dir", cache)
    assert status == 0
    assert not orphan.exists() and live.exists()
    assert len(list(cache.glob("*.safetensors"))) == 1


def test_a_ten_minute_clip_is_cut_to_the_model_window_and_a_4k_clip_to_its_pixel_budget(regressor, clip_folder):
    def inspected(name):
        status, out, err = cli("inspect-inputs", "--model", regressor, clip_folder / name)
        assert status == 0, err
        return json.loads(out)

    ten_minutes = inspected("ten_minutes.mp4")
    assert ten_minutes["truncated"] is True and ten_minutes["audio_seconds"] == 300.0
    assert ten_minutes["frames"] == ten_minutes["settings"]["max_frames"]
    ultra_hd = inspected("ultra_hd.mp4")
    assert ultra_hd["frame_height"] * ultra_hd["frame_width"] <= ultra_hd["settings"]["max_pixels"]
    assert ultra_hd["frame_width"] > ultra_hd["frame_height"]


def test_a_rotated_video_is_fed_upright(regressor, clip_folder):
    from transformers import AutoConfig

    from omni_regressor.media import MediaCache
    from processing_omni_regressor import ProcessingSettings

    # 12 tokens' worth of pixels at least: 48x64 is scaled to 84x112 (the model's 56x56 would hide the aspect ratio).
    min_pixels = 12 * 28 * 28
    status, out, err = cli("inspect-inputs", "--model", regressor, clip_folder / "rotated.mp4", "--min_pixels", min_pixels)
    assert status == 0, err
    report = json.loads(out)
    assert (report["frame_height"], report["frame_width"]) == (112, 84)  # stored 64x48 landscape, displayed portrait
    settings = replace(ProcessingSettings.from_config(AutoConfig.from_pretrained(regressor, trust_remote_code=True)),
                       min_pixels=min_pixels)
    frames = MediaCache(None).load(clip_folder / "rotated.mp4", settings.media_settings()).frames
    assert frames.shape[1:3] == (112, 84)
    height, width = frames.shape[1:3]
    top_left = frames[:, : height // 8, : width // 8].reshape(-1, 3).mean(axis=0)
    top_right = frames[:, : height // 16, -(width // 16):].reshape(-1, 3).mean(axis=0)
    bottom = frames[:, -(height // 4):].reshape(-1, 3).mean(axis=0)
    assert top_left[0] > 200 and top_left[1] < 60  # red, where the display puts it
    assert top_right[1] > 200 and top_right[0] < 60  # green
    assert np.all(np.abs(bottom - 128) < 20)  # grey


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


def _check_into_cache(root, cache_dir):
    sys.exit(cli_main(["check-data", str(root), "--media_cache_dir", str(cache_dir), *SMALL_PIXEL_FLAGS]))


def test_concurrent_cache_writers_leave_whole_entries_only(demo_dataset_dir, tmp_path):
    from omni_regressor.data import read_mmsa
    from omni_regressor.media import MediaCache
    from processing_omni_regressor import ProcessingSettings, decode_clip

    cache_dir = tmp_path / "cache"
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_check_into_cache, args=(demo_dataset_dir, cache_dir)) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=240)
    assert [writer.exitcode for writer in writers] == [0, 0]
    assert not list(cache_dir.glob(".*.tmp"))
    records = read_mmsa(demo_dataset_dir)[0]
    assert len(list(cache_dir.glob("*.safetensors"))) == len(records)

    settings = ProcessingSettings(**SMALL_PIXELS).resolve_for(image_factor=28, extractor_seconds=300.0).media_settings()
    reader = MediaCache(cache_dir)
    for record in records[:3]:
        cached, fresh = reader.load(record.media_path, settings), decode_clip(record.media_path, settings)
        np.testing.assert_array_equal(cached.frames, fresh.frames)
        np.testing.assert_array_equal(cached.audio, fresh.audio)
    assert (reader.hits, reader.decode_calls) == (3, 0)


# --- model folders -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_without_tokenizer(regressor, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("incomplete") / "model"
    shutil.copytree(regressor, folder)
    (folder / "tokenizer.json").unlink()
    return folder


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize(
    ("which", "fragments"),
    [
        ("missing_tokenizer", ["lacks tokenizer.json", "export the model again"]),
        ("base_checkpoint", ["is a `qwen2_5_omni` checkpoint, not a trained sentiment regressor",
                             "omni-regressor train --model_name_or_path"]),
        ("adapter_folder", ["is an adapter folder", "pass the merged model folder"]),
    ],
)
def test_a_model_folder_that_is_not_a_regressor_is_one_line_saying_what_to_pass(
        command, which, fragments, model_without_tokenizer, tiny_backbone_dir, regressor, demo_dataset_dir,
        tmp_path, no_model_loads):
    model = {"missing_tokenizer": model_without_tokenizer, "base_checkpoint": tiny_backbone_dir,
             "adapter_folder": regressor.parent / "adapter"}[which]
    assert (model / "config.json").is_file()
    if command == "predict":
        status, _, err = predict(model, demo_dataset_dir / "Raw" / "demo_00" / "001.mp4")
    else:
        status, _, err = cli("evaluate", "--model", model, "--dataset_dir", demo_dataset_dir, "--output_dir",
                             tmp_path / "eval")
    assert status == 2
    one_error_line(err, f"omni-regressor {command}: error: {model}", *fragments)


# --- flags and output paths ----------------------------------------------------------------------------------------


def _no_cuda():
    import torch

    return not torch.cuda.is_available()


FLAG_CASES = [
    ("predict", ["--max_frames", "0"], "--max_frames must be at least 2"),
    ("predict", ["--fps", "0"], "--fps must be a positive number"),
    ("predict", ["--modalities", "smell"], "--modalities: unknown modality 'smell'"),
    ("predict", ["--batch_size", "0"], "--batch_size must be at least 1"),
    pytest.param("predict", ["--device", "cuda"], "--device cuda: no CUDA device",
                 marks=pytest.mark.skipif(not _no_cuda(), reason="a CUDA device is present")),
    ("train", ["--max_frames", "0"], "--max_frames must be at least 2"),
    ("train", ["--fps", "0"], "--fps must be a positive number"),
    ("train", ["--modalities", "smell"], "--modalities: unknown modality 'smell'"),
    ("train", ["--score_range", "3"], "--score_range must be 'low,high'"),
    ("train", ["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be at least 1"),
    ("train", ["--num_train_epochs", "0"], "--num_train_epochs must be positive"),
    ("train", ["--device", "cuda"], "unrecognized arguments: --device"),
    ("evaluate", ["--fps", "0"], "--fps must be a positive number"),
    ("evaluate", ["--modalities", "smell"], "--modalities: unknown modality 'smell'"),
    ("check-data", ["--score_range", "3"], "--score_range must be 'low,high'"),
    ("check-data", ["--max_frames", "0"], "--max_frames must be at least 2"),
]


@pytest.mark.parametrize(("command", "flags", "message"), FLAG_CASES)
def test_an_invalid_flag_value_is_one_line_naming_it_with_exit_status_2_before_any_model_loads(
        command, flags, message, regressor, tiny_backbone_dir, demo_dataset_dir, tmp_path, no_model_loads):
    required = {
        "predict": ["predict", "--model", regressor, demo_dataset_dir / "Raw" / "demo_00" / "001.mp4"],
        "train": ["train", *hostile_training_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "run")],
        "evaluate": ["evaluate", "--model", regressor, "--dataset_dir", demo_dataset_dir, "--output_dir",
                     tmp_path / "eval"],
        "check-data": ["check-data", demo_dataset_dir],
    }[command]
    started = time.perf_counter()
    status, out, err = cli(*required, *flags)
    assert time.perf_counter() - started < 5
    assert status == 2
    one_error_line(err, f"omni-regressor {command}: error:", message)
    assert out == "" and not (tmp_path / "run").exists() and not (tmp_path / "eval").exists()


def test_an_invalid_flag_value_exits_2_from_a_real_process(regressor, demo_dataset_dir):
    command = [sys.executable, "-m", "omni_regressor.cli", "predict", "--model", str(regressor),
               str(demo_dataset_dir / "Raw" / "demo_00" / "001.mp4"), "--max_frames", "0"]
    finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2
    one_error_line(finished.stderr, "omni-regressor predict: error: --max_frames must be at least 2")


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("predict_output_under_a_file", "a-file is a file"),
        ("predict_output_exists", "exists; pass --resume to complete it or --overwrite to replace it"),
        ("predict_output_in_read_only_folder", "read-only is not writable"),
        ("train_output_dir_is_a_file", "--output_dir {a_file} is a file"),
        ("train_output_dir_in_read_only_folder", "read-only is not writable"),
        ("evaluate_output_dir_is_a_file", "--output_dir {a_file} is a file"),
        ("evaluate_output_dir_in_read_only_folder", "read-only is not writable"),
        ("tiny_backbone_output_dir_is_a_file", "--output_dir {a_file} is a file"),
        ("demo_data_output_dir_in_read_only_folder", "read-only is not writable"),
    ],
)
def test_an_output_that_is_a_file_or_read_only_is_refused_before_any_model_loads(
        case, message, request, a_file, regressor, tiny_backbone_dir, demo_dataset_dir, tmp_path, no_model_loads):
    clip = demo_dataset_dir / "Raw" / "demo_00" / "001.mp4"
    read_only = request.getfixturevalue("read_only_folder") if "read_only" in case else None
    argv = {
        "predict_output_under_a_file": lambda: ["predict", "--model", regressor, clip, "--output", a_file / "out.csv"],
        "predict_output_exists": lambda: ["predict", "--model", regressor, clip, "--output", a_file.with_suffix(".csv")],
        "predict_output_in_read_only_folder": lambda: ["predict", "--model", regressor, clip, "--output",
                                                       read_only / "out.csv"],
        "train_output_dir_is_a_file": lambda: ["train", *hostile_training_flags(tiny_backbone_dir, demo_dataset_dir, a_file)],
        "train_output_dir_in_read_only_folder": lambda: [
            "train", *hostile_training_flags(tiny_backbone_dir, demo_dataset_dir, read_only / "run")],
        "evaluate_output_dir_is_a_file": lambda: ["evaluate", "--model", regressor, "--dataset_dir", demo_dataset_dir,
                                                  "--output_dir", a_file],
        "evaluate_output_dir_in_read_only_folder": lambda: [
            "evaluate", "--model", regressor, "--dataset_dir", demo_dataset_dir, "--output_dir", read_only / "eval"],
        "tiny_backbone_output_dir_is_a_file": lambda: ["tiny-backbone", "--output_dir", a_file],
        "demo_data_output_dir_in_read_only_folder": lambda: ["demo-data", "--output_dir", read_only / "data"],
    }[case]()
    if case == "predict_output_exists":
        a_file.with_suffix(".csv").write_text("path,score\nkept.mp4,1.0\n")
    untouched = digests(tmp_path)
    status, _, err = cli(*argv)
    assert status == 2
    one_error_line(err, message.format(a_file=a_file))
    assert digests(tmp_path) == untouched


def test_tiny_backbone_refuses_a_non_empty_folder_and_leaves_it_untouched(regressor, tmp_path):
    folder = tmp_path / "my-model"
    shutil.copytree(regressor, folder)
    before = digests(folder)
    status, _, err = cli("tiny-backbone", "--output_dir", folder)
    assert status == 2
    one_error_line(err, f"--output_dir {folder} is not empty; pass --overwrite")
    assert digests(folder) == before


def test_demo_data_refuses_a_folder_with_a_real_label_csv_and_writes_there_with_overwrite(tmp_path):
    folder = tmp_path / "MOSI"
    hm.label_csv_with_bom(folder)
    before = digests(folder)
    status, _, err = cli("demo-data", "--output_dir", folder, "--num_clips", "3")
    assert status == 2
    one_error_line(err, f"--output_dir {folder} is not empty; pass --overwrite")
    assert digests(folder) == before
    status, _, _ = cli("demo-data", "--output_dir", folder, "--num_clips", "3", "--overwrite", "true")
    assert status == 0 and digests(folder) != before


# --- label files and transcripts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [hm.label_csv_with_bom, hm.label_csv_latin1], ids=["bom", "latin1"])
def test_check_data_reads_bom_and_latin1_label_files(tmp_path, builder):
    root = builder(tmp_path / "data")
    status, out, _ = cli("check-data", root, "--media_cache_dir", tmp_path / "cache", *SMALL_PIXEL_FLAGS)
    assert status == 0
    assert "2 clips read, 0 problems." in out


def test_check_data_reads_a_latin1_cmu_sdk_transcript(tmp_path):
    from omni_regressor.data import read_dataset

    root, labels_csv = hm.cmu_sdk_latin1_transcript(tmp_path / "sdk")
    status, out, err = cli("check-data", root, "--dataset_format", "cmu-sdk", "--labels_csv", labels_csv,
                           "--media_cache_dir", tmp_path / "cache", *SMALL_PIXEL_FLAGS)
    assert status == 0 and "Traceback" not in err
    assert "2 clips read, 0 problems." in out
    records, _ = read_dataset(root, "cmu-sdk", labels_csv=labels_csv)
    assert [record.text for record in records] == [hm.LATIN1_TRANSCRIPT, "it was okay"]


def test_a_header_only_label_file_is_a_problem_for_check_data_and_train(tiny_backbone_dir, tmp_path, no_model_loads):
    root = hm.header_only_label_csv(tmp_path / "data")
    status, out, _ = cli("check-data", root)
    assert status == 1
    assert problem_lines(out) == {"label.csv": "no_rows"}
    assert "0 clips read, 1 problems." in out
    status, _, err = cli("train", *hostile_training_flags(tiny_backbone_dir, root, tmp_path / "run"))
    assert status == 1 and "label.csv\tno_rows\t" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
