"""`omni-regressor benchmark`: discriminative vs generative readout cost on the same model and the same clips.

One set of (4-bit) Thinker weights serves both readouts: the regressor's backbone *is* the generative Thinker's
`model`, so the ratio compares readouts, not two loads. Measured in one run and printed as one JSON object:

- latency per clip at batch 1: discriminative forward vs generative prefill + decoding `answer_tokens` tokens;
- discriminative throughput at batch 1 vs batch 8 (clips per second);
- peak memory of each measurement (CUDA max allocated; process peak RSS on CPU, which only grows);
- with `--train_step`: peak memory of one QLoRA training step (paper preset, batch 1).

`--arch 7b --random_weights` (or `qwen3-omni-30b-a3b`) builds the Thinker of that shape with random weights (no
download) and runs the same code. Processing flags are those of every command (official values by default).

    omni-regressor benchmark --arch tiny --random_weights --num_clips 8
    omni-regressor benchmark --arch 7b --random_weights --quantization 4bit --train_step   # on a GPU
"""

import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoProcessor

from configuration_omni_regressor import OmniRegressorConfig
from modeling_omni_regressor import OmniRegressionHead
from processing_omni_regressor import ClipEncoder, ProcessingSettings, model_inputs

from ..arguments import OmniArgumentParser, ProcessingArguments
from ..backbones import ARCHITECTURES, backbone_of
from ..media import MediaCache, write_clip
from ..metering import peak_memory_bytes
from ..readouts.generative import load_thinker


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

    def validate(self):
        if not self.random_weights and not self.model_name_or_path:
            raise ValueError("pass --model_name_or_path or --random_weights (with --arch).")
        if self.num_clips < 1 or self.repeats < 1 or self.answer_tokens < 1:
            raise ValueError("--num_clips, --repeats and --answer_tokens must be at least 1.")
        try:
            width, height = (int(part) for part in self.clip_size.lower().split("x"))
        except ValueError:
            raise ValueError(f"--clip_size must be WIDTHxHEIGHT, got {self.clip_size!r}.") from None
        if width < 2 or height < 2 or width % 2 or height % 2:
            raise ValueError(f"--clip_size needs even sides of at least 2, got {self.clip_size!r}.")


def reset_peak_memory():
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def synchronize():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(function, repeats: int) -> float:
    """Median wall seconds of `function()` after one warm-up call."""
    function()
    durations = []
    for _ in range(repeats):
        synchronize()
        started = time.perf_counter()
        function()
        synchronize()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


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


def run_benchmark(args: BenchmarkArguments, processing: ProcessingArguments) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="omni-benchmark-"))
    if args.random_weights:
        from ..tiny_backbone import write_random_thinker

        source = write_random_thinker(args.arch, workdir / f"random-{args.arch}")
    else:
        source = args.model_name_or_path
    backbone = backbone_of(source)
    thinker = load_thinker(str(source), backbone, args.quantization).eval()
    regressor = regressor_sharing_backbone(thinker, backbone)
    processor = AutoProcessor.from_pretrained(source)
    encoder = ClipEncoder(processor, processing.settings(ProcessingSettings()), media_cache=MediaCache(None))
    settings = encoder.settings
    size = tuple(int(part) for part in args.clip_size.lower().split("x"))
    paths = write_benchmark_clips(workdir / "clips", args.num_clips, args.clip_seconds, size)
    transcripts = ["i really loved this movie it was wonderful"] * len(paths)
    clips = [encoder.decode(path) if encoder.needs_media else None for path in paths]
    encoded = [encoder.encode(text, clip) for text, clip in zip(transcripts, clips)]
    device = thinker.lm_head.weight.device

    @torch.no_grad()
    def discriminative(batch_size: int):
        for start in range(0, len(encoded), batch_size):
            regressor(**model_inputs(encoder.collate(encoded[start : start + batch_size]), device))

    @torch.no_grad()
    def generative_one_by_one():
        for clip in encoded:
            inputs = model_inputs(encoder.collate([clip]), device)
            thinker.generate(
                **inputs,
                max_new_tokens=args.answer_tokens,
                min_new_tokens=args.answer_tokens,
                do_sample=False,
                pad_token_id=encoder.pad_token_id,
            )

    reset_peak_memory()
    discriminative_seconds = timed(lambda: discriminative(1), args.repeats)
    discriminative_peak = peak_memory_bytes()
    batch8_seconds = timed(lambda: discriminative(8), args.repeats)
    batch8_peak = peak_memory_bytes()
    reset_peak_memory()
    generative_seconds = timed(generative_one_by_one, args.repeats)
    generative_peak = peak_memory_bytes()

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
        "frames_per_clip": int(clips[0].frames.shape[0]) if clips[0] is not None and clips[0].frames is not None else 0,
        "prompt_tokens_per_clip": int(np.mean([clip["input_ids"].shape[1] for clip in encoded])),
        "answer_tokens": args.answer_tokens,
        "discriminative_ms_per_clip": 1000.0 * discriminative_seconds / clip_count,
        "generative_ms_per_clip": 1000.0 * generative_seconds / clip_count,
        "batch1_clips_per_second": clip_count / discriminative_seconds,
        "batch8_clips_per_second": clip_count / batch8_seconds,
        "peak_memory_mb": {
            "discriminative_batch1": round(discriminative_peak / 2**20, 1),
            "discriminative_batch8": round(batch8_peak / 2**20, 1),
            "generative": round(generative_peak / 2**20, 1),
            "kind": "cuda_max_allocated" if torch.cuda.is_available() else "process_peak_rss",
        },
    }
    report["generative_over_discriminative_latency"] = report["generative_ms_per_clip"] / report["discriminative_ms_per_clip"]
    report["batch8_over_batch1_throughput"] = report["batch8_clips_per_second"] / report["batch1_clips_per_second"]
    if args.train_step:
        del regressor, thinker
        report["qlora_train_step_peak_memory_mb"] = round(train_step_peak_memory(source, backbone, args, encoded, encoder) / 2**20, 1)
    return report


def train_step_peak_memory(source, backbone, args: BenchmarkArguments, encoded: list[dict], encoder: ClipEncoder) -> int:
    """Peak memory of one QLoRA step (forward, backward, AdamW) at batch 1 with the paper preset."""
    from ..readouts.discriminative import load_regressor_for_training

    model = load_regressor_for_training(str(source), backbone, quantization=args.quantization).train()
    optimizer = torch.optim.AdamW([parameter for parameter in model.parameters() if parameter.requires_grad], lr=2e-4)
    device = next(parameter for parameter in model.parameters() if parameter.requires_grad).device
    reset_peak_memory()
    batch = encoder.collate(encoded[:1], labels=[1.0])
    model(**model_inputs(batch, device)).loss.backward()
    optimizer.step()
    synchronize()
    return peak_memory_bytes()


def main(argv=None) -> int:
    parser = OmniArgumentParser((BenchmarkArguments, ProcessingArguments), prog="omni-regressor benchmark")
    args, processing = parser.parse(sys.argv[1:] if argv is None else argv)
    report = run_benchmark(args, processing)
    text = json.dumps(report, indent=2, default=float)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0
