"""The controlled comparison: generative readout (zero-shot, fine-tuned), compare table, sweep, benchmark."""

import json
import math

import pytest
import torch
from transformers import Qwen2_5OmniThinkerForConditionalGeneration

import train_with_trainer
from conftest import SMALL_PIXEL_FLAGS, SMALL_PIXELS, training_flags
from omni_regressor.data import read_mmsa
from omni_regressor.media import MediaCache
from omni_regressor.recipes.generative import GenerativeCollator, format_score
from processing_omni_regressor import ClipEncoder, ProcessingSettings

PARSE_STATISTICS = ("unparsable_rate", "truncated_rate", "out_of_range_rate", "fallback", "ms_per_clip")


def small_run_flags(backbone, data, output_dir, *extra):
    """The training tests' flags, unquantised and for one epoch; the media cache sits beside `output_dir`."""
    return training_flags(backbone, data, output_dir, "--quantization", "none", "--num_train_epochs", "1", *extra)


def test_generative_collator_labels_only_the_written_score(tiny_processor, demo_dataset_dir):
    records = read_mmsa(demo_dataset_dir)[0][:3]
    encoder = ClipEncoder(tiny_processor, ProcessingSettings(modalities=("text",), **SMALL_PIXELS))
    batch = GenerativeCollator(encoder)([{"text": r.text, "media_path": r.media_path, "label": r.label} for r in records])
    for row, record in enumerate(records):
        answer_ids = batch["input_ids"][row][batch["labels"][row] != -100]
        assert tiny_processor.tokenizer.decode(answer_ids) == format_score(record.label) + "<|im_end|>"


@pytest.mark.parametrize("label, text", [(2.4, "2.4"), (-0.8, "-0.8"), (0.0, "0.0"), (-2.8000000000000003, "-2.8")])
def test_scores_are_written_with_one_decimal(label, text):
    assert format_score(label) == text


def test_zero_shot_generative_readout_runs_end_to_end_and_reports_parse_statistics(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    from omni_regressor.experiments.zero_shot import main

    assert main([
        "--model_name_or_path", str(tiny_backbone_dir), "--dataset_dir", str(demo_dataset_dir),
        "--output_dir", str(tmp_path), "--quantization", "4bit", *SMALL_PIXEL_FLAGS,
        "--media_cache_dir", str(tmp_path / "cache"),
    ]) == 0
    result = json.loads((tmp_path / "zero_shot.json").read_text())
    test_clips = [record for record in read_mmsa(demo_dataset_dir)[0] if record.split == "test"]
    assert result["num_clips"] == len(test_clips) == len(result["answers"]) == len(result["predictions"])
    assert all(key in result for key in PARSE_STATISTICS) and 0.0 <= result["unparsable_rate"] <= 1.0
    from omni_regressor.eval.score_parsing import parse_score

    unparsable = sum(parse_score(answer) is None and not truncated
                     for answer, truncated in zip(result["answers"], result["truncated"])) / len(result["answers"])
    assert result["unparsable_rate"] == pytest.approx(unparsable)
    assert result["truncated_rate"] == pytest.approx(sum(result["truncated"]) / len(result["truncated"]))
    assert math.isfinite(result["MAE"])


def test_fine_tuned_generative_readout_trains_the_same_lora_and_exports_a_thinker(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    summary = train_with_trainer.main(
        small_run_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "gen", "--readout", "generative", "--lora_preset", "paper")
    )
    assert summary["readout"] == "generative"
    assert all(key in summary["test_metrics"] for key in PARSE_STATISTICS)
    assert len(summary["test_answers"]) == len(summary["test_predictions"])
    assert summary["parameters"]["head_params"] == 0 and summary["parameters"]["lora_params"] > 0
    adapter_config = json.loads((tmp_path / "gen" / "adapter" / "adapter_config.json").read_text())
    assert set(adapter_config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert not adapter_config["modules_to_save"]
    thinker = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(tmp_path / "gen" / "model")
    assert thinker.lm_head.weight.shape[1] == 64
    settings = json.loads((tmp_path / "gen" / "model" / "processing_settings.json").read_text())
    assert settings["modalities"] == ["text", "audio", "video"] and settings["score_range"] == [-3.0, 3.0]


def test_compare_writes_one_table_with_metrics_failures_latency_and_memory(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    from omni_regressor.experiments.compare import main

    flags = small_run_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "compare", "--max_frames", "4", "--fps", "3")
    assert main(["--skip_generative_finetune", "true", *flags]) == 0
    rows = json.loads((tmp_path / "compare" / "comparison.json").read_text())
    assert [row["readout"] for row in rows] == [
        "discriminative (fine-tuned)", "head-only (frozen backbone)", "generative (zero-shot)"]
    for row in rows:
        assert row["ms_per_clip"] > 0 and row["peak_memory_mb"] > 0 and "MAE" in row and "Mult_acc_7" in row
        assert math.isfinite(row["MAE"])
    assert "unparsable_rate" in rows[2] and "truncated_rate" in rows[2]
    assert rows[0]["seconds_per_epoch"] > 0 and rows[1]["seconds_per_epoch"] > 0
    # Every arm used the same settings: frames, fps, pixels, audio window, prompts, score range.
    assert rows[0]["processing"] == rows[1]["processing"] == rows[2]["processing"]
    assert rows[0]["score_range"] == rows[1]["score_range"] == rows[2]["score_range"]
    assert rows[0]["processing"]["max_frames"] == 4 and rows[0]["processing"]["fps"] == 3.0
    table = (tmp_path / "compare" / "comparison.md").read_text()
    assert table.count("\n") == 5 and "| discriminative (fine-tuned) |" in table and "unparsable_rate" in table
    assert "| head-only (frozen backbone) |" in table and "seconds_per_epoch" in table


def test_sweep_over_two_modality_sets_and_two_seeds_decodes_each_clip_once(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    from omni_regressor.experiments.sweep import main

    flags = small_run_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "sweep")
    assert main(["--modality_sets", "T,T+A", "--seeds", "1", "2", *flags]) == 0
    report = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert set(report["configurations"]) == {"T", "T+A"}
    assert all(len(metric["values"]) == 2 for metric in report["configurations"]["T+A"].values())
    clips = len(read_mmsa(demo_dataset_dir)[0])
    assert report["decode_calls_per_run"] == {"T/seed1": 0, "T/seed2": 0, "T+A/seed1": clips, "T+A/seed2": 0}
    assert len(MediaCache(tmp_path / "media-cache").entries()) == clips
    for tag in ("T", "TA"):
        for seed in (1, 2):
            assert (tmp_path / "sweep" / tag / f"seed{seed}" / "training_summary.json").exists()
    mae = report["configurations"]["T"]["MAE"]
    assert mae["mean"] == pytest.approx(sum(mae["values"]) / 2)
    assert "±" in (tmp_path / "sweep" / "sweep.md").read_text()


def test_benchmark_reports_both_readouts_measured_in_one_run(tmp_path):
    from omni_regressor.experiments.benchmark import main

    output = tmp_path / "benchmark.json"
    assert main(["--arch", "tiny", "--random_weights", "true", "--num_clips", "8", "--clip_seconds", "2",
                 "--clip_size", "128x96", *SMALL_PIXEL_FLAGS, "--repeats", "1", "--train_step", "true",
                 "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    for key in ("discriminative_ms_per_clip", "generative_ms_per_clip", "batch1_clips_per_second", "batch8_clips_per_second",
                "generative_over_discriminative_latency", "batch8_over_batch1_throughput", "peak_memory_mb",
                "qlora_train_step_peak_memory_mb"):
        assert key in report
    assert report["generative_over_discriminative_latency"] == pytest.approx(
        report["generative_ms_per_clip"] / report["discriminative_ms_per_clip"]
    )
    assert report["batch8_over_batch1_throughput"] == pytest.approx(
        report["batch8_clips_per_second"] / report["batch1_clips_per_second"]
    )
    assert report["frames_per_clip"] == 4 and report["quantization"] == "4bit"


def test_benchmark_regressor_shares_the_generative_thinkers_weights(tiny_backbone_dir):
    from omni_regressor.backbones import get_backbone
    from omni_regressor.experiments.benchmark import regressor_sharing_backbone
    from omni_regressor.recipes.generative import load_thinker

    backbone = get_backbone("qwen2.5-omni")
    thinker = load_thinker(str(tiny_backbone_dir), backbone, "none")
    regressor = regressor_sharing_backbone(thinker, backbone)
    assert regressor.thinker is thinker.model
    assert not any(parameter.is_meta for parameter in regressor.parameters())
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        hidden = thinker.model(input_ids=ids).last_hidden_state[:, -1]
        torch.testing.assert_close(regressor(input_ids=ids, output_pooled_hidden_state=True).pooled_hidden_state, hidden)


def test_ms_per_clip_leaves_the_warm_up_batch_out():
    from omni_regressor.metering import BatchTimer

    timer = BatchTimer()
    timer.started, timer.batch_ends, timer.batch_sizes = 0.0, [5.0, 5.8, 6.6, 7.0], [8, 8, 8, 4]
    assert timer.ms_per_clip(28) == pytest.approx(1000.0 * 2.0 / 20)
    timer.batch_ends, timer.batch_sizes = [0.4], [4]
    assert timer.ms_per_clip(4) == pytest.approx(100.0)
