"""`omni-regressor benchmark` (omni_regressor/experiments/benchmark.py, with omni_regressor/random_checkpoint.py,
benchmarks/process_memory.py and metering.py): both readouts measured in one run; the honest rehearsal: memory split
into allocated and file-backed pages, the inference model freed before the training step, nothing left behind,
interleaved timing, and a discriminative pass without LM head."""

import json
import mmap
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
import torch
from transformers import AutoProcessor

from conftest import SMALL_PIXEL_FLAGS
from omni_regressor.backbones import backbone_of
from omni_regressor.benchmarks.process_memory import PhaseMemory
from omni_regressor.experiments import benchmark
from omni_regressor.recipes.generative import load_thinker
from omni_regressor.tiny_backbone import write_random_thinker
from processing_omni_regressor import ClipEncoder, ProcessingSettings, model_inputs


def test_text_only_rehearsal_splits_memory_frees_the_model_and_leaves_no_folder(tmp_path, monkeypatch):
    workdir = tmp_path / "benchmark-workdir"
    monkeypatch.setattr(benchmark, "tempfile", SimpleNamespace(mkdtemp=lambda prefix: str(workdir.mkdir() or workdir)))
    output = tmp_path / "benchmark.json"
    assert benchmark.main(["--arch", "tiny", "--random_weights", "true", "--modalities", "text", "--num_clips", "2",
                           "--repeats", "1", "--answer_tokens", "2", "--train_step", "true", "--device", "cpu",
                           "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert not workdir.exists() and report["workdir"] is None
    assert report["inference_model_freed"] is True
    assert report["train_model"] == "built on the loaded 4-bit backbone"  # the random checkpoint is saved in 4 bits
    assert report["discriminative_lm_head_calls"] == 0
    assert report["discriminative_all_hidden_states_requests"] == 0
    phases = report["memory_phases_mb"]
    assert set(phases) == {"inference_load", "discriminative", "generative", "train_load", "train_step"}
    for peaks in phases.values():
        assert peaks["anon_mb"] > 0 and peaks["file_mb"] > 0
    assert report["qlora_train_step_peak_memory_mb"] == phases["train_step"]["anon_mb"]
    assert 0 < report["inference_weights_mb"] and 0 < report["train_model_weights_mb"]
    assert report["peak_memory_mb"]["kind"] == "process_anonymous_rss_peak"


def test_keep_workdir_keeps_the_folder_and_names_it(tmp_path, monkeypatch):
    workdir = tmp_path / "kept"
    monkeypatch.setattr(benchmark, "tempfile", SimpleNamespace(mkdtemp=lambda prefix: str(workdir.mkdir() or workdir)))
    monkeypatch.setattr(benchmark, "benchmark_in", lambda folder, args, processing: {})
    args = benchmark.BenchmarkArguments(random_weights=True, keep_workdir=True)
    report = benchmark.run_benchmark(args, benchmark.ProcessingArguments())
    assert workdir.exists() and report["workdir"] == str(workdir)


def test_each_measurement_is_warmed_up_once_then_timed_in_interleaved_rounds():
    calls = []
    seconds = benchmark.timed_together({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=2)
    assert calls == ["a", "b", "a", "b", "a", "b"] and set(seconds) == {"a", "b"}


def test_the_readout_probe_sees_an_lm_head_call_and_a_request_for_all_hidden_states(tmp_path):
    source = write_random_thinker("tiny", tmp_path / "tiny")
    backbone = backbone_of(source)
    thinker = load_thinker(str(source), backbone, "none").eval()
    regressor = benchmark.regressor_sharing_backbone(thinker, backbone)
    encoder = ClipEncoder(AutoProcessor.from_pretrained(source), ProcessingSettings(modalities=("text",)))
    inputs = model_inputs(encoder.collate([encoder.encode("a fine film", None)]))
    probe = benchmark.ReadoutProbe(thinker, regressor)
    with torch.no_grad():
        regressor(**inputs)
        assert (probe.lm_head_calls, probe.all_hidden_states_requests) == (0, 0)
        thinker(**inputs)
        regressor(**inputs, output_hidden_states=True)
    assert (probe.lm_head_calls, probe.all_hidden_states_requests) == (1, 1)


def test_only_the_large_shapes_of_a_backbone_that_allows_it_are_streamed_by_default():
    from omni_regressor.tiny_backbone import streams_random_weights

    assert streams_random_weights("7b") and streams_random_weights("3b")
    assert not streams_random_weights("tiny") and not streams_random_weights("qwen3-omni-tiny")
    assert not streams_random_weights("qwen3-omni-30b-a3b")  # transformers splits its fused experts back on save


def test_a_streamed_random_checkpoint_loads_every_weight(tmp_path):
    source = write_random_thinker("tiny", tmp_path / "streamed", streaming=True)
    assert (source / "model.safetensors.index.json").exists()
    backbone = backbone_of(source)
    model, info = backbone.generative_class.from_pretrained(source, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    _, regressor_info = backbone.regressor_class.from_pretrained(source, output_loading_info=True)  # released layout
    assert not regressor_info["unexpected_keys"]
    assert all(key.startswith("head.") for key in regressor_info["missing_keys"])
    encoder = ClipEncoder(AutoProcessor.from_pretrained(source), ProcessingSettings(modalities=("text",)))
    with torch.no_grad():
        logits = model(**model_inputs(encoder.collate([encoder.encode("a fine film", None)]))).logits
    assert torch.isfinite(logits).all()


def test_phase_memory_tells_allocated_pages_from_file_backed_ones(tmp_path):
    path = tmp_path / "pages.bin"
    path.write_bytes(b"\1" * (48 * 2**20))
    meter = PhaseMemory(interval_seconds=0.005)
    with meter.phase("idle"):
        pass
    with meter.phase("allocate"):
        array = np.ones(96 * 2**20, dtype=np.uint8)  # 96 MB of anonymous pages, touched
    with open(path, "rb") as handle:
        with meter.phase("map_file"):
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            checksum = sum(mapped[offset] for offset in range(0, len(mapped), 4096))  # touch every page
        mapped.close()
    assert array.sum() > 0 and checksum == 48 * 2**20 // 4096
    peaks = meter.peaks
    assert peaks["allocate"]["anon_mb"] >= peaks["idle"]["anon_mb"] + 90
    assert peaks["map_file"]["file_mb"] >= peaks["idle"]["file_mb"] + 40
    assert peaks["map_file"]["anon_mb"] < peaks["allocate"]["anon_mb"] + 40


def test_a_terminated_run_still_removes_its_working_folder(tmp_path, monkeypatch):
    import os
    import signal
    import time

    import pytest

    workdir = tmp_path / "terminated"
    monkeypatch.setattr(benchmark, "tempfile", SimpleNamespace(mkdtemp=lambda prefix: str(workdir.mkdir() or workdir)))

    def terminated(folder, args, processing):
        (folder / "random-7b").mkdir()
        os.kill(os.getpid(), signal.SIGTERM)  # what `timeout 900` sends
        time.sleep(5)

    monkeypatch.setattr(benchmark, "benchmark_in", terminated)
    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit):
        benchmark.run_benchmark(benchmark.BenchmarkArguments(random_weights=True), benchmark.ProcessingArguments())
    assert not workdir.exists()
    assert signal.getsignal(signal.SIGTERM) is handler_before


def test_a_prequantized_random_checkpoint_loads_4bit_layers_without_quantising(tmp_path):
    import bitsandbytes as bnb

    from omni_regressor.model_setup import load_kwargs_for

    source = write_random_thinker("tiny", tmp_path / "prequantized", prequantized=True)
    backbone = backbone_of(source)
    with mock.patch.object(bnb.functional, "quantize_4bit", side_effect=AssertionError("quantised at load")):
        model, info = backbone.generative_class.from_pretrained(
            source, output_loading_info=True, **load_kwargs_for("4bit", backbone.generative_skip_modules()))
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    layers = model.model.language_model.layers
    assert len(layers) == model.config.text_config.num_hidden_layers == 2
    assert all(isinstance(layer.mlp.up_proj, bnb.nn.Linear4bit) for layer in layers)
    assert not (tmp_path / ".prequantized-one-layer").exists()


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
