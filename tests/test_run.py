"""Training on hostile data (omni_regressor/run.py, through `omni-regressor train` and `train_with_trainer.main`):
bad clips stop the run before any model loads or are skipped and listed with --skip_bad_clips, special-token
transcripts leave the prompt's structure alone, resuming passes over a half-written checkpoint, and a missing split is
one line."""

import json
import shutil

import numpy as np
import pytest

import hostile_media as hm
import train_with_trainer
from conftest import SMALL_PIXELS, cli, dataset_view, hostile_training_flags, one_error_line, read_csv


def test_training_without_skip_bad_clips_stops_before_any_model_loads_naming_each_clip(
        tiny_backbone_dir, hostile_root, expected_problems, no_model_loads):
    output_dir = hostile_root[0].parent / "refused-run"
    status, _, err = cli("train", *hostile_training_flags(tiny_backbone_dir, hostile_root[0], output_dir))
    assert status == 1 and "Traceback" not in err
    printed = {line.split("\t")[0]: line.split("\t")[1] for line in err.splitlines() if line.count("\t") >= 2}
    assert printed == expected_problems
    assert "--skip_bad_clips" in err
    assert not output_dir.exists()


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
