"""The tiny backbone with the released Qwen vocabulary and special-token ids (`tiny-backbone --tokenizer qwen`,
omni_regressor/released_tokenizer.py) through every path: it tokenizes like Qwen, trains and exports, evaluates and
predicts the same scores, scores through the transformers pipeline, runs zero-shot and generative fine-tuning."""

import json

import numpy as np
import pytest
from transformers import AutoProcessor

import train_with_trainer
from conftest import SMALL_PIXEL_FLAGS, training_flags
from omni_regressor.cli import main as cli_main
from omni_regressor.data import read_mmsa


@pytest.fixture(scope="module")
def real_tokenizer_run(real_tokenizer_backbone_dir, demo_dataset_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("real-vocab") / "run"
    flags = training_flags(real_tokenizer_backbone_dir, demo_dataset_dir, output_dir, "--num_train_epochs", "1")
    return output_dir, train_with_trainer.main(flags)


def test_the_real_tokenizer_backbone_tokenizes_like_qwen(real_tokenizer_backbone_dir):
    tokenizer = AutoProcessor.from_pretrained(real_tokenizer_backbone_dir).tokenizer
    assert tokenizer("user").input_ids == [872]
    assert len(tokenizer("-1.5").input_ids) == 4  # digits one by one
    assert tokenizer.convert_tokens_to_ids(["<|AUDIO|>", "<|VIDEO|>", "<|im_end|>"]) == [151646, 151656, 151645]
    config = json.loads((real_tokenizer_backbone_dir / "config.json").read_text())["thinker_config"]
    assert config["audio_token_index"] == 151646 and config["video_token_index"] == 151656


def test_real_tokenizer_backbone_trains_and_exports(real_tokenizer_run):
    output_dir, summary = real_tokenizer_run
    assert np.isfinite(summary["test_metrics"]["MAE"]) and (output_dir / "model" / "tokenizer.json").is_file()


def test_real_tokenizer_export_evaluates_and_predicts_with_the_same_scores(real_tokenizer_run, demo_dataset_dir, tmp_path):
    output_dir, summary = real_tokenizer_run
    model_dir = output_dir / "model"
    cache = str(output_dir.parent / "media-cache")
    assert cli_main(["evaluate", "--model", str(model_dir), "--dataset_dir", str(demo_dataset_dir), "--output_dir",
                     str(tmp_path / "eval"), "--media_cache_dir", cache]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    test_records = [record for record in read_mmsa(demo_dataset_dir)[0] if record.split == "test"]
    clips = tmp_path / "inputs.csv"
    clips.write_text("path,text\n" + "".join(f'{r.media_path},"{r.text}"\n' for r in test_records), encoding="utf-8")
    assert cli_main(["predict", "--model", str(model_dir), str(clips), "--output", str(tmp_path / "scores.jsonl"),
                     "--media_cache_dir", cache, "--no_progress"]) == 0
    scores = [json.loads(line)["score"] for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    predictions = [float(line.split(",")[3]) for line in (tmp_path / "eval" / "predictions.csv").read_text().splitlines()[1:]]
    np.testing.assert_allclose(scores, predictions, atol=1e-6)
    assert metrics["num_clips"] == len(test_records)


def test_real_tokenizer_export_scores_through_the_transformers_pipeline(real_tokenizer_run, demo_dataset_dir):
    from transformers import pipeline

    from omni_regressor.inference import SentimentScorer

    output_dir, _ = real_tokenizer_run
    record = next(record for record in read_mmsa(demo_dataset_dir)[0] if record.split == "test")
    sentiment = pipeline("omni-sentiment-regression", model=str(output_dir / "model"), trust_remote_code=True)
    (expected,) = SentimentScorer.from_pretrained(output_dir / "model").score([record.media_path], [record.text])
    assert sentiment(record.media_path, transcript=record.text)["score"] == pytest.approx(expected, abs=1e-5)


def test_real_tokenizer_zero_shot_and_generative_fine_tuning_run(real_tokenizer_backbone_dir, demo_dataset_dir, tmp_path):
    from omni_regressor.experiments.zero_shot import main as zero_shot

    assert zero_shot(["--model_name_or_path", str(real_tokenizer_backbone_dir), "--dataset_dir", str(demo_dataset_dir),
                      "--output_dir", str(tmp_path / "zs"), "--quantization", "none", "--max_new_tokens", "8",
                      *SMALL_PIXEL_FLAGS, "--media_cache_dir", str(tmp_path / "cache")]) == 0
    result = json.loads((tmp_path / "zs" / "zero_shot.json").read_text())
    assert len(result["answers"]) == result["num_clips"] and 0 <= result["truncated_rate"] <= 1
    summary = train_with_trainer.main(training_flags(
        real_tokenizer_backbone_dir, demo_dataset_dir, tmp_path / "gen", "--readout", "generative", "--num_train_epochs", "1",
        "--quantization", "none", "--max_new_tokens", "8",
    ))
    assert summary["readout"] == "generative" and len(summary["test_answers"]) == len(summary["test_predictions"])
    assert (tmp_path / "gen" / "model" / "processing_settings.json").is_file()
