"""`omni-regressor benchmark`: discriminative vs generative readout cost on the same model and the same clips.

One set of (4-bit) Thinker weights serves both readouts: the regressor's backbone *is* the generative Thinker's
`model`, so the ratio compares readouts, not two loads. Measured in one run and printed as one JSON object:

- latency per clip at batch 1: discriminative forward (the backbone without its LM head, last layer's hidden state
  only) vs generative prefill + decoding `answer_tokens` tokens, and the prefill alone (the Thinker's forward, whose
  LM head runs over every prompt position in transformers' Qwen-Omni Thinkers);
- discriminative throughput at batch 1 vs batch 8 (clips per second);
- memory of each phase, split (`omni_regressor.benchmarks.process_memory`): anonymous (allocated) peak vs
  file-backed pages (the memory-mapped checkpoint) on CPU, CUDA max allocated on a GPU;
- with `--train_step`: one QLoRA training step (paper preset, batch 1), after the inference model is freed.

Every measurement has one untimed warm-up; then `--repeats` rounds time each measurement once in turn (a burst of
load from other processes hits every arm alike) and the median is reported — `--repeats 1` is one warm-up plus one
timed call of each.

`--arch 7b --random_weights` (or `qwen3-omni-30b-a3b`) writes a Thinker of that shape with random weights (no
download; tensor by tensor, never the whole model in memory) into a working folder that is removed at the end, also
when the run is terminated (`--keep_workdir` keeps it). With `--quantization 4bit` the language model's layers are
saved already quantised (one layer quantised by the package's 4-bit loader, repeated): the load then reads the same
`Linear4bit` modules instead of spending minutes of CPU quantising 7 billion random values, and the training step's
model is built on that loaded backbone after the LM head and the generative wrapper are freed. `--device cpu` runs
on the CPU even where a GPU is present (it hides the GPUs from this process; pass it before anything uses CUDA).
Processing flags are those of every command (official values by default).

    omni-regressor benchmark --arch tiny --random_weights --num_clips 8
    omni-regressor benchmark --arch 7b --random_weights --quantization 4bit --modalities text --num_clips 1 \
        --repeats 1 --answer_tokens 2 --train_step true --device cpu     # CPU rehearsal: ~7 min, ~18 GB free RAM
    omni-regressor benchmark --arch 7b --random_weights --quantization 4bit --train_step true   # on a GPU
"""

import gc
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from configuration_omni_regressor import OmniRegressorConfig
from modeling_omni_regressor import OmniRegressionHead
from processing_omni_regressor import ClipEncoder, model_inputs

from ..arguments import OmniArgumentParser, ProcessingArguments, at_least
from ..backbones import ARCHITECTURES, backbone_of
from ..media import MediaCache, write_clip
from ..recipes.generative import load_thinker
from ..settings import resolve_settings


@dataclass
class BenchmarkArguments:
    _argument_group_name = "benchmark"
    model_name_or_path: str | None = field(default=None, metadata={"help": "Original checkpoint (or use --random_weights)."})
    arch: str = field(default="tiny", metadata={"help": "With --random_weights: the preset shape.", "choices": list(ARCHITECTURES)})
    random_weights: bool = field(default=False, metadata={"help": "Build the --arch Thinker with random weights (no download)."})
    quantization: str = field(default="4bit", metadata={"help": "4bit or none.", "choices": ["4bit", "none"]})
    num_clips: int = field(default=8, metadata={"help": "Generated clips (the same batch for every measurement)."})
    clip_seconds: float = field(default=8.0, metadata={"help": "Length of each generated clip."})
    clip_size: str = field(default="640x360", metadata={"help": "Width x height of the generated clips."})
    answer_tokens: int = field(default=4, metadata={"help": "Tokens the generative readout decodes per clip (e.g. '-1.4' + end)."})
    repeats: int = field(default=3, metadata={"help": "Timed repetitions (the median is reported)."})
    train_step: bool = field(default=False, metadata={"help": "Also measure one QLoRA training step's peak memory."})
    output: str | None = field(default=None, metadata={"help": "Also write the JSON here."})
    device: str = field(default="auto", metadata={
        "help": "auto (a GPU when there is one), cpu (even with a GPU present) or cuda.", "choices": ["auto", "cpu", "cuda"]})
    keep_workdir: bool = field(default=False, metadata={
        "help": "Keep the working folder (random checkpoint, clips); by default it is removed at the end."})

    def validate(self):
        if not self.random_weights and not self.model_name_or_path:
            raise ValueError("pass --model_name_or_path or --random_weights (with --arch).")
        at_least(self, num_clips=1, repeats=1, answer_tokens=1)
        try:
            width, height = (int(part) for part in self.clip_size.lower().split("x"))
        except ValueError:
            raise ValueError(f"--clip_size must be WIDTHxHEIGHT, got {self.clip_size!r}.") from None
        if width < 2 or height < 2 or width % 2 or height % 2:
            raise ValueError(f"--clip_size needs even sides of at least 2, got {self.clip_size!r}.")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is visible here; use --device cpu or auto.")


def reset_peak_memory():
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def synchronize():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(function, repeats: int) -> float:
    """Median wall seconds of `function()` after one warm-up call."""
    return timed_together({"only": function}, repeats)["only"]


def timed_together(measurements: dict, repeats: int) -> dict:
    """{name: median wall seconds}: one untimed warm-up of each, then `repeats` rounds timing each once in turn."""
    for function in measurements.values():
        function()
    durations = {name: [] for name in measurements}
    for _ in range(repeats):
        for name, function in measurements.items():
            synchronize()
            started = time.perf_counter()
            function()
            synchronize()
            durations[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in durations.items()}


def write_benchmark_clips(folder: Path, count: int, seconds: float, size=(640, 360), fps: float = 8.0) -> list[Path]:
    rng = np.random.default_rng(0)
    width, height = size
    paths = []
    for index in range(count):
        frames = rng.integers(0, 255, size=(int(seconds * fps), height, width, 3), dtype=np.uint8)
        time_axis = np.arange(int(seconds * 16000)) / 16000
        audio = (0.2 * np.sin(2 * np.pi * (200 + 40 * index) * time_axis)).astype(np.float32)
        paths.append(write_clip(folder / f"clip_{index:02d}.mp4", frames, fps, audio, 16000))
    return paths


def regressor_sharing_backbone(thinker, backbone):
    """A regressor whose backbone is the generative Thinker's own `model` (same weights, same memory)."""
    config = OmniRegressorConfig(thinker_config=thinker.config)
    with torch.device("meta"):
        regressor = backbone.regressor_class(config)
    regressor.thinker = thinker.model
    device, dtype = thinker.lm_head.weight.device, thinker.lm_head.weight.dtype
    regressor.head = OmniRegressionHead(config.thinker_config.text_config.hidden_size, config.head_hidden_size, 0.0)
    regressor.head.to(device=device, dtype=dtype)
    return regressor.eval()


def use_device(device: str) -> None:
    """`--device cpu` hides the GPUs from this process (before CUDA is initialised)."""
    if device == "cpu" and os.environ.get("CUDA_VISIBLE_DEVICES") != "":
        if torch.cuda.is_initialized():
            raise ValueError("--device cpu must be chosen before anything in this process uses CUDA.")
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


class ReadoutProbe:
    """Counts what a discriminative pass must never do: run the LM head, or ask the backbone for every layer's
    hidden states (the readout needs one layer's)."""

    def __init__(self, thinker, regressor):
        self.lm_head_calls = 0
        self.all_hidden_states_requests = 0
        self.handles = [
            thinker.lm_head.register_forward_hook(self._lm_head_called),
            regressor.thinker.register_forward_pre_hook(self._backbone_called, with_kwargs=True),
        ]

    def _lm_head_called(self, module, args, output):
        self.lm_head_calls += 1

    def _backbone_called(self, module, args, kwargs):
        if kwargs.get("output_hidden_states") or module.config.output_hidden_states:
            self.all_hidden_states_requests += 1

    def remove(self):
        for handle in self.handles:
            handle.remove()


@contextmanager
def terminated_as_exit():
    """SIGTERM (`timeout`, a scheduler) ends the run through Python's exit path, so the working folder (a 17 GB random
    checkpoint at 7B) is removed; Python's default would die on the spot."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_on_terminate(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_on_terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_benchmark(args: BenchmarkArguments, processing: ProcessingArguments) -> dict:
    use_device(args.device)
    workdir = Path(tempfile.mkdtemp(prefix="omni-benchmark-"))
    try:
        with terminated_as_exit():
            report = benchmark_in(workdir, args, processing)
    finally:
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    report["workdir"] = str(workdir) if args.keep_workdir else None
    return report


def readout_passes(regressor, thinker, encoder, encoded: list[dict], device, answer_tokens: int):
    """The timed passes over `encoded` clips: (discriminative(batch_size), generative one by one, generative's prefill
    alone one by one — the Thinker's forward with its LM head over every position)."""

    @torch.no_grad()
    def discriminative(batch_size: int):
        for start in range(0, len(encoded), batch_size):
            regressor(**model_inputs(encoder.collate(encoded[start : start + batch_size]), device))

    @torch.no_grad()
    def generative_one_by_one():
        for clip in encoded:
            thinker.generate(**model_inputs(encoder.collate([clip]), device), max_new_tokens=answer_tokens,
                             min_new_tokens=answer_tokens, do_sample=False, pad_token_id=encoder.pad_token_id)

    @torch.no_grad()
    def generative_prefill_one_by_one():
        for clip in encoded:
            thinker(**model_inputs(encoder.collate([clip]), device), use_cache=False)

    return discriminative, generative_one_by_one, generative_prefill_one_by_one


def benchmark_in(workdir: Path, args: BenchmarkArguments, processing: ProcessingArguments) -> dict:
    from ..benchmarks.process_memory import PhaseMemory, current_mb, tensor_bytes

    memory = PhaseMemory(log=sys.stderr)
    started = time.perf_counter()
    if args.random_weights:
        from ..tiny_backbone import write_random_thinker

        # 4-bit: the language model's layers are written already quantised (no minutes of CPU quantisation at load).
        source = write_random_thinker(args.arch, workdir / f"random-{args.arch}",
                                      prequantized=args.quantization == "4bit")
    else:
        source = args.model_name_or_path
    checkpoint_seconds = time.perf_counter() - started
    backbone = backbone_of(source)
    with memory.phase("inference_load"):
        thinker = load_thinker(str(source), backbone, args.quantization).eval()
    weights_mb = round(tensor_bytes(thinker) / 2**20, 1)
    regressor = regressor_sharing_backbone(thinker, backbone)
    settings, processor = resolve_settings(processing, str(source))
    encoder = ClipEncoder(processor, settings, media_cache=MediaCache(None))
    size = tuple(int(part) for part in args.clip_size.lower().split("x"))
    paths = write_benchmark_clips(workdir / "clips", args.num_clips, args.clip_seconds, size)
    transcripts = ["i really loved this movie it was wonderful"] * len(paths)
    clips = [encoder.decode(path) if encoder.needs_media else None for path in paths]
    encoded = [encoder.encode(text, clip) for text, clip in zip(transcripts, clips)]
    device = thinker.lm_head.weight.device

    discriminative, generative_one_by_one, generative_prefill_one_by_one = readout_passes(
        regressor, thinker, encoder, encoded, device, args.answer_tokens)
    probe = ReadoutProbe(thinker, regressor)
    with memory.phase("discriminative"):
        seconds = timed_together({"batch1": lambda: discriminative(1), "batch8": lambda: discriminative(8)}, args.repeats)
    discriminative_lm_head_calls = probe.lm_head_calls
    discriminative_hidden_state_requests = probe.all_hidden_states_requests
    probe.remove()
    with memory.phase("generative"):
        seconds.update(timed_together({"generative": generative_one_by_one, "prefill": generative_prefill_one_by_one,
                                       "discriminative": lambda: discriminative(1)}, args.repeats))
    print(json.dumps({"seconds_per_clip": {name: value / len(encoded) for name, value in seconds.items()}}),
          file=sys.stderr, flush=True)

    clip_count = len(encoded)
    report = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "arch": args.arch if args.random_weights else str(source),
        "backbone": backbone.name,
        "processing": settings.to_dict(),
        "random_weights": args.random_weights,
        "quantization": args.quantization,
        "modalities": list(settings.modalities),
        "num_clips": clip_count,
        "repeats": args.repeats,
        "frames_per_clip": int(clips[0].frames.shape[0]) if clips[0] is not None and clips[0].frames is not None else 0,
        "prompt_tokens_per_clip": int(np.mean([clip["input_ids"].shape[1] for clip in encoded])),
        "answer_tokens": args.answer_tokens,
        # Interleaved with the generative rounds (same load conditions); the first-phase median is reported too.
        "discriminative_ms_per_clip": 1000.0 * seconds["discriminative"] / clip_count,
        "discriminative_first_phase_ms_per_clip": 1000.0 * seconds["batch1"] / clip_count,
        "generative_ms_per_clip": 1000.0 * seconds["generative"] / clip_count,
        "generative_prefill_ms_per_clip": 1000.0 * seconds["prefill"] / clip_count,
        "batch1_clips_per_second": clip_count / seconds["batch1"],
        "batch8_clips_per_second": clip_count / seconds["batch8"],
        "discriminative_lm_head_calls": discriminative_lm_head_calls,
        "discriminative_all_hidden_states_requests": discriminative_hidden_state_requests,
        "random_checkpoint_seconds": round(checkpoint_seconds, 1) if args.random_weights else None,
        # The Thinker's tensors: anonymous after a quantise-at-load, file-backed where the load memory-maps them.
        "inference_weights_mb": weights_mb,
    }
    peaks = memory.peaks
    report["peak_memory_mb"] = {
        "discriminative_batch1": peak_figure(peaks["discriminative"]),
        "discriminative_batch8": peak_figure(peaks["discriminative"]),
        "generative": peak_figure(peaks["generative"]),
        "kind": "cuda_max_allocated" if torch.cuda.is_available() else "process_anonymous_rss_peak",
    }
    report["generative_over_discriminative_latency"] = report["generative_ms_per_clip"] / report["discriminative_ms_per_clip"]
    report["batch8_over_batch1_throughput"] = report["batch8_clips_per_second"] / report["batch1_clips_per_second"]
    if args.train_step:
        # A checkpoint saved already quantised loads through the generative class only: the training model is then
        # built on the loaded backbone (the same 4-bit modules a load gives), with the LM head and the generative
        # wrapper freed first. Any other checkpoint is loaded again, after the inference model is freed.
        reuse_backbone = getattr(thinker.config, "quantization_config", None) is not None and args.random_weights
        backbone_model = thinker.model if reuse_backbone else None
        thinker_alive = weakref.ref(thinker)
        del regressor, thinker, discriminative, generative_one_by_one, generative_prefill_one_by_one, probe
        gc.collect()
        report["inference_model_freed"] = thinker_alive() is None  # before the training model exists
        report["train_model"] = "built on the loaded 4-bit backbone" if reuse_backbone else "loaded again"
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        report["after_freeing_inference_model_mb"] = current_mb()
        report["train_model_weights_mb"] = round(
            train_step_peak_memory(source, backbone, args, encoded, encoder, memory, backbone_model) / 2**20, 1)
        del backbone_model
        report["qlora_train_step_peak_memory_mb"] = peak_figure(memory.peaks["train_step"])
    report["memory_phases_mb"] = peaks
    return report


def peak_figure(phase_peaks: dict) -> float:
    """The one number of a phase: CUDA max allocated on a GPU, the anonymous (allocated) peak on CPU."""
    if phase_peaks.get("cuda_max_allocated_mb") is not None:
        return phase_peaks["cuda_max_allocated_mb"]
    return phase_peaks["anon_mb"]


def train_step_peak_memory(source, backbone, args: BenchmarkArguments, encoded: list[dict], encoder: ClipEncoder,
                           memory, backbone_model=None) -> int:
    """One QLoRA step (forward, backward, AdamW) at batch 1 with the paper preset, in `memory`'s "train_step" phase
    (and its load in "train_load"): `load_regressor_for_training`, or the same preparation (LoRA, a full-precision
    head, checkpointing) of `backbone_model`, an already loaded Thinker backbone. Returns the training model's tensor
    bytes (LoRA and head included)."""
    from ..model_setup import lora_config_for, prepare_for_training
    from ..recipes.discriminative import load_regressor_for_training

    with memory.phase("train_load"):
        if backbone_model is None:
            model = load_regressor_for_training(str(source), backbone, quantization=args.quantization).train()
        else:
            config = OmniRegressorConfig(thinker_config=backbone_model.config)
            with torch.device("meta"):
                regressor = backbone.regressor_class(config)
            regressor.thinker = backbone_model
            regressor.head = OmniRegressionHead(config.thinker_config.text_config.hidden_size, config.head_hidden_size,
                                                config.head_dropout)
            lora_config = lora_config_for(backbone, "paper", modules_to_save=["head"])
            model = prepare_for_training(regressor, quantized=args.quantization != "none", lora_config=lora_config,
                                         gradient_checkpointing=True, fp32_modules=["head"]).train()
            del regressor
    optimizer = torch.optim.AdamW([parameter for parameter in model.parameters() if parameter.requires_grad], lr=2e-4)
    device = next(parameter for parameter in model.parameters() if parameter.requires_grad).device
    batch = encoder.collate(encoded[:1], labels=[1.0])
    with memory.phase("train_step"):
        model(**model_inputs(batch, device)).loss.backward()
        optimizer.step()
    from ..benchmarks.process_memory import tensor_bytes

    weights = tensor_bytes(model)
    del model, optimizer
    gc.collect()
    return weights


def main(argv=None) -> int:
    parser = OmniArgumentParser((BenchmarkArguments, ProcessingArguments), prog="omni-regressor benchmark")
    args, processing = parser.parse(sys.argv[1:] if argv is None else argv)
    report = run_benchmark(args, processing)
    text = json.dumps(report, indent=2, default=float)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0
