"""Real-model fidelity: what Qwen2.5-Omni-7B sees (released tokenizer and preprocessor settings, official sizing),
audio features sized to the clip, generative answers decoded to their end, and the weight memory of the 7B setup."""

import json
import logging
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoProcessor, LogitsProcessor, LogitsProcessorList

import train_with_trainer
from conftest import SMALL_PIXEL_FLAGS, SMALL_PIXELS, training_flags
from omni_regressor.backbones import backbone_of
from omni_regressor.cli import main as cli_main
from omni_regressor.data import read_mmsa
from omni_regressor.eval.score_parsing import parse_scores
from omni_regressor.media import MediaCache, write_clip
from processing_omni_regressor import ClipEncoder, MediaError, MediaSettings, ProcessingSettings, decode_clip

SAMPLE_RATE = 16000


def speech_like_tone(seconds: float) -> np.ndarray:
    time = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.2 * np.sin(2 * np.pi * 220 * time) * (1 + np.sin(2 * np.pi * 3 * time)) / 2).astype(np.float32)


def write_test_clip(path, width: int, height: int, seconds: float, fps: float = 25.0):
    frames = np.zeros((int(seconds * fps), height, width, 3), dtype=np.uint8)
    frames[:, : height // 2] = 140
    frames[:, :, : width // 3] = 60
    return write_clip(path, frames, fps, speech_like_tone(seconds), SAMPLE_RATE)


@pytest.fixture(scope="module")
def clip_360p_8s(tmp_path_factory):
    return write_test_clip(tmp_path_factory.mktemp("fidelity") / "clip_360p_8s.mp4", 640, 360, 8.0)


# --- the real tokenizer through every path ---------------------------------------------------------------------------


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


# --- official preprocessing ------------------------------------------------------------------------------------------


def official_token_counts(width: int, height: int, seconds: float, fps: float = 25.0, max_frames: int = 16) -> dict:
    """Video and audio tokens of a clip by qwen-omni-utils' sizing rules (the official implementation) and the
    released processor's audio rule, computed without the code under test."""
    from qwen_omni_utils.v2_5.vision_process import (FPS_MIN_FRAMES, VIDEO_MAX_TOKEN_NUM, VIDEO_MIN_TOKEN_NUM,
                                                     smart_nframes, smart_resize)

    factor = 28
    total_frames = int(seconds * fps)
    frames = smart_nframes({"fps": 2.0, "max_frames": max_frames, "min_frames": FPS_MIN_FRAMES}, total_frames, fps)
    min_pixels = VIDEO_MIN_TOKEN_NUM * factor * factor
    max_pixels = max(min(VIDEO_MAX_TOKEN_NUM * factor * factor, 128000 * factor * factor * 0.9 / frames * 2), int(min_pixels * 1.05))
    resized_height, resized_width = smart_resize(height, width, factor, min_pixels, int(max_pixels))
    video_tokens = frames // 2 * (resized_height // 14) * (resized_width // 14) // 4
    mel_frames = int(seconds * 100)
    audio_tokens = ((mel_frames - 1) // 2 + 1 - 2) // 2 + 1
    return {"frames": frames, "frame_height": resized_height, "frame_width": resized_width,
            "video_tokens": video_tokens, "audio_tokens": audio_tokens}


def test_inspect_inputs_reports_the_official_token_counts_of_a_360p_clip(real_tokenizer_backbone_dir, clip_360p_8s, capsys):
    assert cli_main(["inspect-inputs", "--model", str(real_tokenizer_backbone_dir), str(clip_360p_8s),
                     "--transcript", "I really liked it"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = official_token_counts(640, 360, 8.0)
    assert {key: report[key] for key in expected} == expected
    assert (expected["frame_height"], expected["frame_width"], expected["video_tokens"]) == (364, 644, 2392)
    assert report["audio_seconds"] == 8.0 and report["audio_feature_frames"] == 800 and report["fps"] == 2.0
    assert report["total_tokens"] == report["text_tokens"] + report["audio_tokens"] + report["video_tokens"]
    assert report["text_tokens"] > 0 and report["modalities"] == ["text", "audio", "video"]


def test_inspect_inputs_applies_processing_flags_and_a_saved_regressors_settings(tiny_backbone_dir, clip_360p_8s, capsys, tmp_path):
    assert cli_main(["inspect-inputs", "--model", str(tiny_backbone_dir), str(clip_360p_8s), "--modalities", "T+V",
                     "--transcript", "ok", "--max_frames", "4", *SMALL_PIXEL_FLAGS]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    height, width = report["frame_height"], report["frame_width"]
    assert report["frames"] == 4 and report["audio_tokens"] == 0 and height * width <= 28 * 28 * 16
    assert report["video_tokens"] == 4 // 2 * (height // 14) * (width // 14) // 4


def test_audio_features_are_sized_to_the_clip_with_the_same_pooled_state(real_tokenizer_backbone_dir, clip_360p_8s):
    from modeling_omni_regressor import Qwen2_5OmniForSentimentRegression

    processor = AutoProcessor.from_pretrained(real_tokenizer_backbone_dir)
    assert processor.feature_extractor.chunk_length == 300  # the released setting
    encoder = ClipEncoder(processor, ProcessingSettings(modalities=("audio",)))
    clip = encoder.decode(clip_360p_8s)
    sized = encoder.encode(None, clip)
    prompt = processor.apply_chat_template(
        [{"role": "system", "content": [{"type": "text", "text": encoder.settings.system_prompt}]},
         {"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": encoder.settings.task_prompt.format(low="-3", high="3")}]}],
        add_generation_prompt=True, tokenize=False,
    )
    padded = processor(text=[prompt], audio=[clip.audio], audio_kwargs={"sampling_rate": 16000}, return_tensors="pt")
    assert padded["input_features"].shape == (1, 128, 30000)  # what the released extractor does by default
    assert sized["input_features"].shape[-1] <= 802 and torch.equal(sized["input_ids"], padded["input_ids"])
    model = Qwen2_5OmniForSentimentRegression.from_pretrained(real_tokenizer_backbone_dir, head_hidden_size=16).eval()
    with torch.no_grad():
        small = model(**encoder.collate([sized]), output_pooled_hidden_state=True).pooled_hidden_state
        full = model(**dict(padded), output_pooled_hidden_state=True).pooled_hidden_state
    torch.testing.assert_close(small, full, atol=1e-5, rtol=1e-5)


def test_official_defaults_are_the_processing_defaults():
    settings = ProcessingSettings().resolve_for(image_factor=28, extractor_seconds=300.0)
    assert (settings.fps, settings.min_frames, settings.max_frames) == (2.0, 4, 16)
    assert (settings.min_pixels, settings.max_pixels) == (128 * 28 * 28, 768 * 28 * 28)
    assert settings.total_pixels == int(128000 * 0.9 * 28 * 28) and settings.max_audio_seconds == 300.0
    qwen3 = ProcessingSettings().resolve_for(image_factor=32, extractor_seconds=300.0)
    assert (qwen3.min_pixels, qwen3.max_pixels) == (128 * 32 * 32, 768 * 32 * 32)


# --- bad input at the official settings ------------------------------------------------------------------------------


def test_a_clip_shorter_than_the_minimum_frame_count_repeats_frames(tmp_path):
    path = write_clip(tmp_path / "short.mp4", np.full((2, 48, 64, 3), 90, np.uint8), 25, speech_like_tone(0.5))
    clip = decode_clip(path, MediaSettings(**SMALL_PIXELS))
    assert clip.frames.shape[0] == 4 and np.array_equal(clip.frames[0], clip.frames[-1])


def test_a_clip_longer_than_the_audio_limit_is_cut_with_one_warning(tmp_path, caplog):
    path = write_test_clip(tmp_path / "long.mp4", 64, 48, 6.0, fps=5)
    with caplog.at_level(logging.WARNING):
        clip = decode_clip(path, MediaSettings(max_audio_seconds=2.0, **SMALL_PIXELS))
    assert clip.truncated and len(clip.audio) == 2 * SAMPLE_RATE and clip.duration == 2.0
    warnings = [record.getMessage() for record in caplog.records if "only the first" in record.getMessage()]
    assert len(warnings) == 1 and str(path) in warnings[0] and "\n" not in warnings[0]


def test_an_extreme_resolution_is_an_error_naming_the_clip(tmp_path):
    path = write_clip(tmp_path / "sliver.mp4", np.full((4, 600, 2, 3), 90, np.uint8), 4, None)
    with pytest.raises(MediaError) as error:
        decode_clip(path, MediaSettings(**SMALL_PIXELS))
    assert error.value.reason == "unsupported_geometry" and str(path) in str(error.value)


# --- weight memory of the 7B setup -----------------------------------------------------------------------------------


def test_weight_memory_of_the_7b_qlora_setup_keeps_towers_and_embeddings_in_bf16(capsys):
    assert cli_main(["params", "--arch", "7b", "--lora_preset", "paper", "--memory"]) == 0
    report = json.loads(capsys.readouterr().out.strip())
    memory = report["memory"]
    assert memory["language_model"]["dtype"] == "bfloat16+nf4"  # NF4 linears, bf16 norms and biases
    assert memory["audio_tower"]["dtype"] == memory["visual"]["dtype"] == memory["embeddings"]["dtype"] == "bfloat16"
    assert memory["lora"]["dtype"] == "float32" and memory["head"]["dtype"] == "float32"
    assert memory["audio_tower"]["bytes"] == 2 * memory["audio_tower"]["params"]
    assert memory["lora"]["params"] == report["lora_params"] and memory["lora"]["bytes"] == 4 * report["lora_params"]
    assert report["weight_bytes_total"] == sum(part["bytes"] for part in memory.values())
    # NF4 with double quantisation: about 0.52 bytes per weight.
    language_linears = memory["language_model"]["params"]
    assert 0.5 * language_linears < memory["language_model"]["bytes"] < 0.56 * language_linears
    assert 7.0e9 < report["weight_bytes_total"] < 8.0e9


def test_upcasting_the_frozen_weights_costs_the_fp32_copies(capsys):
    assert cli_main(["params", "--arch", "tiny", "--memory"]) == 0
    bf16 = json.loads(capsys.readouterr().out.strip())
    assert cli_main(["params", "--arch", "tiny", "--memory", "--upcast_frozen_weights", "true"]) == 0
    fp32 = json.loads(capsys.readouterr().out.strip())
    for part in ("audio_tower", "visual", "embeddings"):
        assert fp32["memory"][part]["dtype"] == "float32" and fp32["memory"][part]["bytes"] == 2 * bf16["memory"][part]["bytes"]
