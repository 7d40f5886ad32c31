"""Inference for users: `omni-regressor predict`, `SentimentScorer` and the `omni-sentiment-regression` pipeline."""

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import read_csv
from omni_regressor.data import read_mmsa
from omni_regressor.inference import SentimentScorer
from omni_regressor.predict import main as predict_main
from pipeline_omni_regressor import PIPELINE_TASK, label_bucket, polarity


@pytest.fixture(scope="module")
def scorer(trained_export) -> SentimentScorer:
    return SentimentScorer.from_pretrained(trained_export, device="cpu")


@pytest.fixture(scope="module")
def records(demo_dataset_dir):
    return read_mmsa(demo_dataset_dir)[0]


def predict(model_dir, *argv) -> int:
    return predict_main(["--model", str(model_dir), "--device", "cpu", "--no_progress", *map(str, argv)])


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def clip_folder(records, tmp_path) -> Path:
    """Three good clips (one in a subfolder), one corrupt .mp4 and a file that is not a video."""
    folder = tmp_path / "clips"
    (folder / "sub").mkdir(parents=True)
    for name, record in zip(["a.mp4", "b.mp4", "sub/c.mp4"], records):
        shutil.copyfile(record.media_path, folder / name)
    (folder / "broken.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (folder / "notes.txt").write_text("not a clip")
    return folder


def test_cli_scores_a_folder_and_names_the_corrupt_file_with_exit_status_1(trained_export, clip_folder, tmp_path, capsys):
    status = predict(trained_export, clip_folder, "--output", tmp_path / "scores.csv")
    stderr = capsys.readouterr().err
    rows = read_csv(tmp_path / "scores.csv")
    assert status == 1
    assert [Path(row["path"]).relative_to(clip_folder).as_posix() for row in rows] == [
        "a.mp4", "b.mp4", "broken.mp4", "sub/c.mp4"
    ]
    assert list(rows[0]) == ["path", "video_id", "clip_id", "score", "label_bucket", "acc2", "modalities", "error", "truncated"]
    assert [(row["video_id"], row["clip_id"]) for row in rows] == [("clips", "a"), ("clips", "b"), ("clips", "broken"), ("sub", "c")]
    good = [row for row in rows if not row["path"].endswith("broken.mp4")]
    for row in good:
        score = float(row["score"])
        assert np.isfinite(score) and row["error"] == ""
        assert int(row["label_bucket"]) == int(np.round(np.clip(score, -3, 3)))
        assert row["acc2"] == ("positive" if score >= 0 else "negative")
    broken = next(row for row in rows if row["path"].endswith("broken.mp4"))
    assert broken["score"] == broken["label_bucket"] == broken["acc2"] == ""
    assert "not a readable media file" in broken["error"]
    error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "broken.mp4" in error_lines[0] and "not a readable media file" in error_lines[0]
    assert "3 of 4 clips scored now, 1 failed; 4 rows in the output." in stderr


def test_jsonl_output_holds_the_same_rows_as_csv_output(trained_export, clip_folder, tmp_path):
    assert predict(trained_export, clip_folder, "--output", tmp_path / "scores.csv") == 1
    assert predict(trained_export, clip_folder, "--output", tmp_path / "scores.jsonl") == 1
    csv_rows, json_rows = read_csv(tmp_path / "scores.csv"), read_jsonl(tmp_path / "scores.jsonl")
    assert [row["path"] for row in json_rows] == [row["path"] for row in csv_rows]
    for csv_row, json_row in zip(csv_rows, json_rows):
        if json_row["score"] is None:
            assert json_row["label_bucket"] is None and json_row["error"] == csv_row["error"] != ""
        else:
            assert json_row["score"] == float(csv_row["score"])
            assert json_row["label_bucket"] == int(csv_row["label_bucket"])


def test_all_scored_is_exit_status_0_and_csv_on_stdout(trained_export, records, capsys):
    status = predict(trained_export, records[0].media_path, records[1].media_path)
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert status == 0
    assert [row["path"] for row in rows] == [records[0].media_path, records[1].media_path]
    assert all(row["error"] == "" and row["score"] for row in rows)


def test_cli_python_api_and_pipeline_give_identical_scores_for_the_same_clip(trained_export, scorer, records, tmp_path):
    from transformers import pipeline

    record = records[0]
    assert predict(trained_export, record.media_path, "--transcript", record.text, "--output", tmp_path / "one.jsonl") == 0
    (cli_row,) = read_jsonl(tmp_path / "one.jsonl")
    (api_score,) = SentimentScorer.from_pretrained(trained_export).score([record.media_path], [record.text])
    scorer_pipeline = pipeline(task=PIPELINE_TASK, model=str(trained_export), trust_remote_code=True)
    pipeline_result = scorer_pipeline(record.media_path, transcript=record.text)
    assert cli_row["modalities"] == pipeline_result["modalities"] == "text+audio+video"
    assert cli_row["score"] == api_score == pipeline_result["score"]
    assert cli_row["label_bucket"] == pipeline_result["label_bucket"] == label_bucket(api_score, (-3.0, 3.0))


def test_pipeline_is_declared_in_the_saved_config_and_scores_lists(trained_export, scorer, records):
    from transformers import pipeline

    config = json.loads((trained_export / "config.json").read_text())
    assert config["custom_pipelines"][PIPELINE_TASK]["impl"] == "pipeline_omni_regressor.OmniSentimentRegressionPipeline"
    assert (trained_export / "pipeline_omni_regressor.py").is_file()
    scorer_pipeline = pipeline(model=str(trained_export), trust_remote_code=True)  # the task comes from the config
    inputs = [{"path": record.media_path, "transcript": record.text} for record in records[:3]]
    results = scorer_pipeline(inputs, batch_size=2)
    expected = scorer.score([record.media_path for record in records[:3]], [record.text for record in records[:3]], batch_size=2)
    assert [result["score"] for result in results] == expected


def test_batched_and_one_at_a_time_predictions_agree(scorer, records):
    paths, texts = [record.media_path for record in records[:8]], [record.text for record in records[:8]]
    batched = scorer.score(paths, texts, batch_size=8)
    one_at_a_time = [scorer.score([path], [text], batch_size=1)[0] for path, text in zip(paths, texts)]
    np.testing.assert_allclose(batched, one_at_a_time, atol=1e-5, rtol=0)


def test_transcribe_writes_the_transcript_and_scores_with_it(trained_export, scorer, records, tiny_backbone_dir, tmp_path):
    clip = records[2].media_path
    # The export names its local base by a placeholder (no path of the training machine): the base is given here.
    # A bare boolean flag right before an INPUT must not take it as its value.
    status = predict(trained_export, "--transcribe_model", tiny_backbone_dir, "--transcribe", clip,
                     "--output", tmp_path / "transcribed.jsonl")
    (row,) = read_jsonl(tmp_path / "transcribed.jsonl")
    assert status == 0 and "transcript" in row
    # The tiny random Thinker writes whatever its weights give (here: blank lines, i.e. no text); the row says which
    # modalities the score used, and the score is the one of that transcript.
    assert row["modalities"] == ("text+audio+video" if row["transcript"].strip() else "audio+video")
    assert row["score"] == scorer.score_clips([clip], [row["transcript"]])[0].score


def test_transcription_gives_one_string_per_clip_and_none_for_a_clip_without_audio(tiny_backbone_dir, records):
    from transformers import AutoProcessor, Qwen2_5OmniThinkerForConditionalGeneration

    from omni_regressor.transcribe import transcribe_clips
    from processing_omni_regressor import MediaSettings, decode_clip

    thinker = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(tiny_backbone_dir)
    clip = decode_clip(records[0].media_path, MediaSettings(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16))
    silent = type(clip)(frames=clip.frames, fps=clip.fps, audio=None, duration=clip.duration)
    transcripts = transcribe_clips(thinker, AutoProcessor.from_pretrained(tiny_backbone_dir), [clip, silent, None],
                                   max_new_tokens=4)
    assert len(transcripts) == 3 and all(isinstance(text, str) for text in transcripts)
    assert transcripts[1:] == ["", ""]


def test_clip_without_transcript_runs_on_audio_and_video_and_says_so(trained_export, scorer, records, tmp_path):
    clip = records[3].media_path
    assert predict(trained_export, clip, "--output", tmp_path / "no-text.csv") == 0
    (row,) = read_csv(tmp_path / "no-text.csv")
    assert row["modalities"] == "audio+video" and "transcript" not in row
    assert float(row["score"]) == scorer.score([clip])[0]


def test_csv_input_resolves_relative_paths_against_its_own_folder(trained_export, scorer, records, tmp_path, monkeypatch):
    table_dir = tmp_path / "table"
    (table_dir / "videos").mkdir(parents=True)
    for index, record in enumerate(records[:2]):
        shutil.copyfile(record.media_path, table_dir / "videos" / f"{index}.mp4")
    (table_dir / "clips.csv").write_text(
        f'path,text\nvideos/0.mp4,"{records[0].text}"\nvideos/1.mp4,\n', encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)  # somewhere else than the CSV's folder
    assert predict(trained_export, "table/clips.csv", "--output", tmp_path / "out.csv") == 0
    rows = read_csv(tmp_path / "out.csv")
    assert [Path(row["path"]).resolve() for row in rows] == [(table_dir / "videos" / f"{i}.mp4").resolve() for i in range(2)]
    assert [row["modalities"] for row in rows] == ["text+audio+video", "audio+video"]
    expected = scorer.score([str(table_dir / "videos" / "0.mp4")], [records[0].text])[0]
    assert float(rows[0]["score"]) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["does-not-exist.mp4"], "does-not-exist.mp4: no such file or folder"),
        ([], "no INPUT given"),
        (["{clip}", "--not_a_flag"], "unrecognized arguments: --not_a_flag"),
        (["{clip}", "{clip}", "--transcript", "hello"], "--transcript is for a single INPUT file"),
    ],
)
def test_usage_errors_exit_with_status_2_and_say_why(trained_export, records, argv, message, capsys):
    argv = [value.format(clip=records[0].media_path) for value in argv]
    assert predict(trained_export, *argv) == 2
    assert message in capsys.readouterr().err


def test_label_bucket_clips_to_the_score_range_and_rounds_half_to_even():
    assert [label_bucket(score, (-3, 3)) for score in (-3.7, -2.5, -0.5, 0.5, 1.5, 2.4, 9.0)] == [-3, -2, 0, 0, 2, 2, 3]
    assert [label_bucket(score, (-1, 1)) for score in (-1.6, -0.5, 0.49, 0.51, 1.2)] == [-1, 0, 0, 1, 1]
    assert (polarity(0.0), polarity(-0.01)) == ("positive", "negative")


def markdown_section_blocks(path: str, heading: str, language: str) -> list[str]:
    text = (Path(__file__).resolve().parents[1] / path).read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def readme_usage_blocks(language: str) -> list[str]:
    """The usage snippets (the manual's "Usage: scoring clips"), run by the tests below."""
    return markdown_section_blocks("docs/inference.md", "Usage: scoring clips", language)


def test_the_readme_quick_start_is_the_tested_usage_code():
    python_blocks = markdown_section_blocks("README.md", "Quick start", "python")
    [shell_block] = markdown_section_blocks("README.md", "Quick start", "bash")
    assert len(python_blocks) == 2 and set(python_blocks) <= set(readme_usage_blocks("python"))
    tested_commands = {line for block in readme_usage_blocks("bash") for line in block.splitlines()}
    assert shell_block.splitlines() and set(shell_block.splitlines()) <= tested_commands


def test_readme_usage_python_snippets_run_and_agree(trained_export, records, tiny_backbone_dir, tmp_path):
    clip = records[0]
    substituted = [
        block.replace("runs/demo/run/model", str(trained_export))
        .replace("runs/demo/run/adapter", str(trained_export.parent / "adapter"))
        .replace("runs/demo/backbone", str(tiny_backbone_dir))
        .replace('"clip.mp4"', repr(clip.media_path))
        .replace("I really liked this movie.", clip.text)
        for block in readme_usage_blocks("python")
    ]
    assert len(substituted) == 4
    # The adapter snippet loads both ways; the loaded models score like the merged export.
    check = substituted[3] + textwrap.dedent(
        f"""
        import torch
        from omni_regressor import SentimentScorer
        for loaded in (model,):  # the adapter of a local base, on its base's folder (AutoPeft...: a Hub repository)
            scorer = SentimentScorer.from_model(loaded.eval(), processor=__import__("transformers").AutoProcessor.from_pretrained({str(trained_export)!r}, trust_remote_code=True))
            print(scorer.score([{clip.media_path!r}], [{clip.text!r}])[0])
        """
    )

    def run(code):
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                              stdin=subprocess.DEVNULL)

    with ThreadPoolExecutor(max_workers=2) as pool:  # fresh processes, two at a time (one per core)
        results = list(pool.map(run, [*substituted[:3], check]))
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    outputs = [result.stdout.strip().splitlines()[-1] for result in results]
    [python_score] = json.loads(outputs[0])
    [loaded_model_score] = json.loads(outputs[1])
    assert loaded_model_score == pytest.approx(python_score, abs=1e-6)
    assert float(outputs[2]) == pytest.approx(python_score, abs=1e-6)
    assert float(outputs[3]) == pytest.approx(python_score, abs=1e-3)


def test_readme_usage_shell_commands_run(trained_export, records, demo_dataset_dir, tmp_path):
    clip_dir = tmp_path / "clips"
    clip_dir.mkdir()
    shutil.copy(records[0].media_path, clip_dir / "a.mp4")
    for block in readme_usage_blocks("bash"):
        for command in [line for line in block.splitlines() if line.strip()]:
            command = (
                command.replace("runs/demo/run/model", str(trained_export))
                .replace("runs/demo/data", str(demo_dataset_dir))
                .replace("clip.mp4", records[0].media_path)
                .replace("clips/", str(clip_dir))
            )
            result = subprocess.run(shlex.split(command), capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL)
            assert result.returncode == 0, (command, result.stderr[-3000:])
    assert (tmp_path / "scores.csv").exists()
    assert {"predictions.csv", "metrics.json", "scatter.png"} <= set(os.listdir(tmp_path / "runs" / "eval"))


def test_a_summary_line_counts_clips_scored_on_fewer_modalities_and_says_why(trained_export, records, tmp_path, capsys):
    clips = [shutil.copyfile(record.media_path, tmp_path / f"{index}.mp4") for index, record in enumerate(records[:3])]
    table = tmp_path / "inputs.csv"
    table.write_text("path,text\n" + "".join(
        f"{clip},{'' if index < 2 else 'it was fine'}\n" for index, clip in enumerate(clips)), encoding="utf-8")
    assert predict(trained_export, table, "--output", tmp_path / "scores.csv") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "fewer modalities" in line]
    assert len(lines) == 1 and lines[0].startswith("2 clips scored on fewer modalities") and "empty_transcript: 2" in lines[0]
    rows = read_csv(tmp_path / "scores.csv")
    assert [row["modalities"] for row in rows] == ["audio+video", "audio+video", "text+audio+video"]


def test_a_parquet_output_holds_the_rows_of_the_csv_output_and_resumes_from_its_row_journal(trained_export, records,
                                                                                            tmp_path, capsys):
    import pyarrow.parquet as pq

    clips = [shutil.copyfile(record.media_path, tmp_path / f"{index}.mp4") for index, record in enumerate(records[:3])]
    assert predict(trained_export, *clips, "--output", tmp_path / "scores.csv") == 0
    assert predict(trained_export, *clips[:2], "--output", tmp_path / "scores.parquet") == 0
    journal = tmp_path / "scores.parquet.rows.jsonl"
    assert len(read_jsonl(journal)) == 2
    # The same inputs again, resumed: only the third clip is scored, and the Parquet file then holds all three.
    assert predict(trained_export, *clips, "--output", tmp_path / "scores.parquet", "--resume") == 0
    assert "resuming: 2 of 3" in capsys.readouterr().err
    table = pq.read_table(tmp_path / "scores.parquet").to_pylist()
    expected = read_csv(tmp_path / "scores.csv")
    assert [row["path"] for row in table] == [row["path"] for row in expected]
    assert list(table[0]) == list(expected[0])  # the same columns, in the same order
    assert [row["score"] for row in table] == pytest.approx([float(row["score"]) for row in expected], abs=1e-6)
    assert predict(trained_export, *clips, "--output", tmp_path / "scores.parquet") == 2  # exists: refused
