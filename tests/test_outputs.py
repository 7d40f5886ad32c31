"""The output file of `predict` (`omni_regressor.outputs`): finite scores only, provenance, safe resumes, one writer,
a cache that never fails a clip, and one line (never a traceback) for what the user can fix."""

import csv
import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from conftest import cli, digests, hostile_training_flags, one_error_line
from omni_regressor.data import read_mmsa
from omni_regressor.outputs import OutputFile, read_rows, strict_dumps, write_json
from omni_regressor.predict import main as predict_main
from pipeline_omni_regressor import label_bucket, polarity
from hostile_media import non_finite_float_wav


def predict(model_dir, *argv) -> int:
    return predict_main(["--model", str(model_dir), "--device", "cpu", "--no_progress", *map(str, argv)])


@pytest.fixture(scope="module")
def clips(demo_dataset_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("output-clips")
    for number, record in enumerate(read_mmsa(demo_dataset_dir)[0][:3]):
        shutil.copyfile(record.media_path, folder / f"clip{number}.mp4")
    return folder


def model_with_head(trained_export, folder, change) -> Path:
    """A copy of the trained model whose head bias is `change(bias)`."""
    shutil.copytree(trained_export, folder)
    weights = load_file(folder / "model.safetensors")
    weights["head.out_proj.bias"] = change(weights["head.out_proj.bias"].clone())
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


@pytest.fixture(scope="module")
def other_model(trained_export, tmp_path_factory) -> Path:
    return model_with_head(trained_export, tmp_path_factory.mktemp("other") / "model", lambda bias: bias + 0.5)


@pytest.fixture(scope="module")
def scored(trained_export, clips, tmp_path_factory) -> Path:
    """A finished CSV output of the three clips (copied by tests that change it)."""
    output = tmp_path_factory.mktemp("scored") / "scores.csv"
    assert predict(trained_export, clips, "--output", output) == 0
    return output


def copy_output(scored, tmp_path) -> Path:
    for path in scored.parent.iterdir():
        if path.name.startswith(scored.name) and not path.name.endswith(".lock"):
            shutil.copyfile(path, tmp_path / path.name)
    return tmp_path / scored.name


# --- finite or refused ---------------------------------------------------------------------------------------------


def test_label_bucket_and_acc2_of_a_nan_score_are_none():
    assert label_bucket(float("nan"), (-3, 3)) is None and label_bucket(float("inf"), (-3, 3)) is None
    assert polarity(float("nan")) is None
    assert label_bucket(2.6, (-3, 3)) == 3 and polarity(-0.1) == "negative"


def test_a_nan_sample_in_the_audio_is_an_error_row_and_the_other_clips_are_scored(trained_export, clips, tmp_path, capsys):
    folder = tmp_path / "in"
    shutil.copytree(clips, folder)
    non_finite_float_wav(folder / "clip1b.wav")
    assert predict(trained_export, folder, "--output", tmp_path / "scores.csv") == 1
    rows = {Path(row["path"]).name: row for row in read_rows(tmp_path / "scores.csv")}
    assert "NaN or infinite" in rows["clip1b.wav"]["error"] and rows["clip1b.wav"]["score"] == ""
    assert rows["clip1b.wav"]["label_bucket"] == ""
    assert all(rows[f"clip{n}.mp4"]["score"] and not rows[f"clip{n}.mp4"]["error"] for n in range(3))
    assert "Traceback" not in capsys.readouterr().err


def test_check_data_names_non_finite_audio(tmp_path):
    from omni_regressor.data.checks import media_problems
    from omni_regressor.data.records import ClipRecord
    from omni_regressor.media import MediaCache
    from processing_omni_regressor import MediaSettings

    path = non_finite_float_wav(tmp_path / "nan.wav")
    record = ClipRecord("v/nan", "v", "fine", 0.0, "train", str(path))
    problems = media_problems(record, ("text", "audio"), MediaSettings(), MediaCache(tmp_path / "cache"))
    assert [problem.reason for problem in problems] == ["non_finite_audio"]


def test_a_head_holding_nan_writes_error_rows_never_a_nan_score(trained_export, clips, tmp_path):
    broken = model_with_head(trained_export, tmp_path / "nan-model", lambda bias: bias * float("nan"))
    assert predict(broken, clips, "--output", tmp_path / "scores.jsonl") == 1
    text = (tmp_path / "scores.jsonl").read_text()
    rows = [json.loads(line, parse_constant=pytest.fail) for line in text.splitlines()]
    assert len(rows) == 3 and all(row["score"] is None and "non-finite score" in row["error"] for row in rows)


def test_json_files_and_rows_are_strict_json_with_null_for_nan(tmp_path):
    write_json(tmp_path / "m.json", {"Corr": float("nan"), "values": [1.0, float("inf")], "n": np.float32("nan")})
    assert json.loads((tmp_path / "m.json").read_text(), parse_constant=pytest.fail) == {
        "Corr": None, "values": [1.0, None], "n": None}
    assert strict_dumps({"score": float("-inf")}) == '{"score": null}'


# --- provenance and resumes ----------------------------------------------------------------------------------------


def test_the_output_records_the_model_fingerprint_and_resolved_settings(scored, trained_export):
    from omni_regressor.outputs import model_fingerprint

    record = json.loads(Path(f"{scored}.provenance.json").read_text())
    assert record["model"]["fingerprint"] == model_fingerprint(trained_export)
    assert record["settings"]["max_pixels"] > 0 and record["settings"]["explain"] is False
    assert record["columns"] == next(csv.reader(scored.open()))


def test_resume_with_another_model_is_refused_and_the_output_kept(scored, other_model, clips, tmp_path, capsys):
    output = copy_output(scored, tmp_path)
    before = output.read_bytes()
    assert predict(other_model, clips, "--output", output, "--resume") == 2
    err = capsys.readouterr().err
    assert f"--output {output} was written by another model" in err and "--overwrite" in err
    assert output.read_bytes() == before


def test_resume_with_other_settings_or_columns_is_refused(scored, trained_export, clips, tmp_path, capsys):
    output = copy_output(scored, tmp_path)
    before = output.read_bytes()
    assert predict(trained_export, clips, "--output", output, "--resume", "--max_pixels", "3136") == 2
    assert "other settings (max_pixels:" in capsys.readouterr().err
    assert predict(trained_export, clips, "--output", output, "--resume", "--explain") == 2
    assert "other settings (explain: False then, True now)" in capsys.readouterr().err
    assert output.read_bytes() == before


def test_resume_of_an_output_without_provenance_is_refused(scored, trained_export, clips, tmp_path, capsys):
    output = copy_output(scored, tmp_path)
    Path(f"{output}.provenance.json").unlink()
    assert predict(trained_export, clips, "--output", output, "--resume") == 2
    assert "has no scores.csv.provenance.json" in capsys.readouterr().err


def test_a_second_writer_is_refused_naming_the_output(trained_export, clips, tmp_path, capsys):
    output = tmp_path / "scores.csv"
    with OutputFile(output, []).locked():  # another run writing it
        assert predict(trained_export, clips, "--output", output) == 2
    assert f"--output {output} is being written by another run" in capsys.readouterr().err
    assert not output.exists()


def test_error_rows_of_the_environment_are_scored_again_on_resume(scored, trained_export, clips, tmp_path):
    output = copy_output(scored, tmp_path)
    rows = read_rows(output)
    lines = output.read_text().splitlines()
    middle = rows[1]
    lines[2] = f"{middle['path']},{middle['video_id']},{middle['clip_id']},,,,,OSError: [Errno 28] No space left on device"
    output.write_text("\n".join(lines) + "\n")
    assert predict(trained_export, clips, "--output", output, "--resume") == 0
    resumed = read_rows(output)
    assert [row["path"] for row in resumed] == [row["path"] for row in rows]
    assert not resumed[1]["error"]  # scored again (alone, not in a padded batch: equal up to padding effects)
    assert float(resumed[1]["score"]) == pytest.approx(float(rows[1]["score"]), abs=1e-4)
    assert [row["score"] for row in resumed[::2]] == [row["score"] for row in rows[::2]]


# --- the cache never fails a clip ----------------------------------------------------------------------------------


def test_a_cache_that_cannot_be_written_falls_back_to_decoding_with_one_warning(clips, tmp_path, capsys):
    from omni_regressor.media import MediaCache
    from processing_omni_regressor import MediaSettings

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    cache = MediaCache(blocked)
    first, second = (cache.load(path, MediaSettings()) for path in sorted(clips.iterdir())[:2])
    assert first.frames is not None and second.audio is not None and cache.decode_calls == 2
    warnings = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: media cache {blocked} cannot be used")


# --- one line, never a traceback -----------------------------------------------------------------------------------


def test_output_equal_to_an_input_csv_is_refused_and_left_untouched(trained_export, clips, tmp_path, capsys):
    table = tmp_path / "inputs.csv"
    table.write_text("path,text\n" + "".join(f"{path},a fine day\n" for path in sorted(clips.iterdir())))
    before = table.read_bytes()
    assert predict(trained_export, table, "--output", table, "--overwrite") == 2
    assert "is also an INPUT" in capsys.readouterr().err
    assert table.read_bytes() == before


def test_a_file_name_with_a_line_break_is_refused_up_front(trained_export, clips, tmp_path, capsys):
    odd = tmp_path / "two\nlines.mp4"
    shutil.copyfile(next(clips.iterdir()), odd)
    assert predict(trained_export, odd, "--output", tmp_path / "scores.csv") == 2
    assert "a file name with a line break cannot be scored" in capsys.readouterr().err


def test_a_transcript_longer_than_the_csv_field_limit_is_read(trained_export, clips, tmp_path):
    from omni_regressor.predict import read_inputs_csv

    table = tmp_path / "inputs.csv"
    table.write_text(f"path,text\n{next(clips.iterdir())},{'word ' * 40000}\n")
    assert len(read_inputs_csv(table)[0][1]) > 131072


def test_ctrl_c_exits_130_keeping_the_rows_written(trained_export, clips, tmp_path, monkeypatch, capsys):
    import omni_regressor.streaming as streaming

    real = streaming.stream_scores

    def interrupted_after_one(*args, **kwargs):
        for number, pair in enumerate(real(*args, **kwargs)):
            if number == 1:
                raise KeyboardInterrupt
            yield pair

    monkeypatch.setattr(streaming, "stream_scores", interrupted_after_one)
    output = tmp_path / "scores.csv"
    assert predict(trained_export, clips, "--output", output, "--batch_size", "1", "--chunk_batches", "1") == 130
    assert "interrupted; the rows written so far are kept" in capsys.readouterr().err
    assert len(read_rows(output)) == 1


def test_a_full_disk_while_writing_is_one_line_keeping_the_rows(trained_export, clips, tmp_path, monkeypatch, capsys):
    from omni_regressor.outputs import RowWriter

    real, written = RowWriter.write, []

    def full_after_one(self, record):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(record)
        real(self, record)

    monkeypatch.setattr(RowWriter, "write", full_after_one)
    output = tmp_path / "scores.csv"
    assert predict(trained_export, clips, "--output", output) == 2
    err = capsys.readouterr().err
    assert f"cannot write {output}: No space left on device" in err and "Traceback" not in err
    assert len(read_rows(output)) == 1


# --- evaluate ------------------------------------------------------------------------------------------------------


def test_evaluate_records_provenance_and_names_non_finite_scores(trained_export, demo_dataset_dir, tmp_path, capsys):
    from omni_regressor.cli import main as cli_main
    from omni_regressor.outputs import model_fingerprint

    flags = ["--dataset_dir", str(demo_dataset_dir), "--split", "test"]
    assert cli_main(["evaluate", "--model", str(trained_export), *flags, "--output_dir", str(tmp_path / "good")]) == 0
    report = json.loads((tmp_path / "good" / "metrics.json").read_text(), parse_constant=pytest.fail)
    assert report["provenance"]["model"]["fingerprint"] == model_fingerprint(trained_export)
    assert report["provenance"]["settings"]["modalities"] == ["text", "audio", "video"]
    capsys.readouterr()
    broken = model_with_head(trained_export, tmp_path / "nan-model", lambda bias: bias * float("nan"))
    assert cli_main(["evaluate", "--model", str(broken), *flags, "--output_dir", str(tmp_path / "bad")]) == 1
    assert "\tnon_finite_score" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "metrics.json").exists()


def test_an_empty_folder_named_like_a_clip_is_named(trained_export, clips, tmp_path, capsys):
    (tmp_path / "x.mp4").mkdir()
    (tmp_path / "in" / "y.mp4").mkdir(parents=True)
    assert predict(trained_export, tmp_path / "x.mp4", "--output", tmp_path / "scores.csv") == 2
    err = capsys.readouterr().err
    assert "x.mp4 is a folder, not a media file; 0 media files found in it." in err
    assert f"no media file found in {tmp_path / 'x.mp4'}" in err
    assert predict(trained_export, tmp_path / "in", next(clips.iterdir()), "--output", tmp_path / "s.csv") == 0
    assert f"note: {tmp_path / 'in' / 'y.mp4'} is a folder, not a media file" in capsys.readouterr().err


def test_an_output_written_by_another_run_while_this_one_started_is_not_truncated(trained_export, clips, tmp_path,
                                                                                   monkeypatch, capsys):
    output = tmp_path / "scores.csv"
    real = OutputFile.acquire

    def other_run_finished_first(self):  # it passed the first check, then another run wrote and released the output
        output.write_text("path,score\nother.mp4,1.0\n")
        real(self)

    monkeypatch.setattr(OutputFile, "acquire", other_run_finished_first)
    assert predict(trained_export, clips, "--output", output) == 2
    assert f"--output {output} exists" in capsys.readouterr().err
    assert output.read_text() == "path,score\nother.mp4,1.0\n"


# --- output paths that are a file or read-only (hostile inputs, issue #13) --------------------------------------------


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


KEYS = ["a.mp4#0", "b.mp4#0", "c.mp4#0"]


def output_with_rows(tmp_path, *rows) -> OutputFile:
    """An output of the inputs KEYS holding `rows` ((path, error) pairs), as a run of model "model" writes it."""
    from omni_regressor.outputs import provenance

    columns = ["path", "score", "error"]
    output = OutputFile(tmp_path / "scores.csv", columns, provenance("model", "sha256:0", {"fps": 2.0}, columns))
    writer = output.open_writer(append=False)
    for path, error in rows:
        writer.write({"path": path, "score": None if error else 0.5, "error": error})
    writer.close()
    return output


def test_resumed_rows_go_straight_into_the_output_only_while_it_stays_a_prefix_of_the_inputs(tmp_path):
    def plan(*rows, resume=True, sharded=False):
        return output_with_rows(tmp_path, *rows).plan(KEYS, resume=resume, overwrite=False, sharded=sharded)

    assert not plan(resume=False).staged and plan(resume=False, sharded=True).staged  # several writers: partial files
    prefix = plan(("a.mp4", ""))
    assert list(prefix.done) == ["a.mp4#0"] and not prefix.staged
    gap = plan(("b.mp4", ""))
    assert list(gap.done) == ["b.mp4#0"] and gap.staged  # `a` would come after `b`: partial files, merged in order
    retried = plan(("a.mp4", "OSError: [Errno 28] No space left on device"), ("b.mp4", ""))
    assert list(retried.done) == ["b.mp4#0"] and retried.staged  # the machine's error row is scored again


def test_the_plan_refuses_rows_of_other_inputs_and_an_interrupted_run_without_resume_or_overwrite(tmp_path):
    from omni_regressor.outputs import OutputError

    output = output_with_rows(tmp_path, ("b.mp4", ""))
    with pytest.raises(OutputError, match=r"has 1 rows for inputs not given now \(first: b.mp4\)"):
        output.plan(KEYS[:1], resume=True, overwrite=False, sharded=False)
    output.partial_path(1).write_text("")
    with pytest.raises(OutputError, match="holds rows of an interrupted run; pass --resume to complete it or --overwrite"):
        output.plan(KEYS, resume=False, overwrite=False, sharded=False)
    assert output.plan(KEYS, resume=True, overwrite=False, sharded=False).staged  # its rows are merged in order


def test_overwrite_removes_the_old_files_but_not_a_partial_file_begun_after_the_plan(tmp_path):
    output = output_with_rows(tmp_path, ("a.mp4", ""))
    output.partial_path(1).write_text("")  # left by an interrupted run
    plan = output.plan(KEYS, resume=False, overwrite=True, sharded=True)
    begun = output.partial_writer(0)  # a rank that passed the barrier first
    begun.close()
    output.prepare(plan)
    assert output.partial_files() == [begun.output] and not output.exists() and not output.provenance_path.exists()
