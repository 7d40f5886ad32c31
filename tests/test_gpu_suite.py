"""The GPU suite runs end to end on the CPU at the tiny shapes, so it cannot rot before a GPU is lent."""

import json

from omni_regressor.benchmarks import gpu_suite


def test_gpu_suite_rehearses_on_cpu_and_writes_json_and_table(tmp_path):
    output_dir = tmp_path / "suite"
    assert gpu_suite.main(["--arch", "tiny", "--moe_arch", "qwen3-omni-tiny", "--device", "cpu", "--num_clips", "1",
                           "--clip_seconds", "2", "--clip_size", "128x96", "--min_pixels", "3136", "--max_pixels", "12544",
                           "--batch_sizes", "1", "2", "--workers", "0", "1", "--data_wait_steps", "1", "--repeats", "1",
                           "--answer_tokens", "1", "--output_dir", str(output_dir)]) == 0
    report = json.loads((output_dir / "gpu_suite.json").read_text())
    assert report["device"] == "cpu"
    assert set(report["train_step_peak_mb"]) == {"1", "2"} and all(mb > 0 for mb in report["train_step_peak_mb"].values())
    assert set(report["data_wait_fraction"]) == {"0", "1"}
    assert all(0 <= fraction <= 1 for fraction in report["data_wait_fraction"].values())
    assert report["discriminative_ms_per_clip"] > 0 and report["batch8_clips_per_second"] > 0
    moe = report["moe_attention_only_step"]
    assert moe["arch"] == "qwen3-omni-tiny" and moe["peak_mb"] > 0 and 0 < moe["trainable"] < moe["parameters"]
    table = (output_dir / "gpu_suite.md").read_text()
    assert table.startswith("Device: cpu") and "| QLoRA step peak memory, batch 2" in table
    assert "| Data-wait fraction of training steps, 1 workers |" in table
