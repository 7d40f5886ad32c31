"""One run for a lent GPU (≤ 10 minutes on an H100/H200): the numbers the README's performance table needs.

    python -m omni_regressor.benchmarks.gpu_suite --output_dir gpu-suite            # 7B random weights, 4-bit
    python -m omni_regressor.benchmarks.gpu_suite --arch tiny --moe_arch qwen3-omni-tiny --device cpu   # rehearsal

Writes `gpu_suite.json` and `gpu_suite.md` (a Markdown table, the device named) into `--output_dir`:

1. QLoRA step peak memory (paper preset, 4-bit, one forward + backward + AdamW step) at batch 1 and batch 4, on
   T+A+V inputs of 8-s 640x360 clips with the official preprocessing (2 fps, 128..768 tokens per frame);
2. data-wait fraction of such steps with 0, 2 and 4 DataLoader workers (decode + encode in the workers, no cache);
3. discriminative vs generative latency per clip (batch 1) and discriminative batch-8 throughput (clips/s), on one
   4-bit Thinker shared by both readouts (`omni-regressor benchmark`'s measurement);
4. Qwen3-Omni-30B-A3B's step memory with the `attention-only` LoRA preset when the card has the memory: built on the
   device from the released config in bf16 (a 60 GB checkpoint does not fit the lent machine's disk and time), so
   the figure is an upper bound of a 4-bit load (only the attention projections would be quantised: the fused
   experts stay bf16 either way, STACK-NOTES).

Memory is CUDA max allocated on a GPU, the anonymous (allocated) peak on CPU. `--arch 7b --random_weights` writes
its checkpoint tensor by tensor into a working folder that is removed at the end.
"""

import argparse
import gc
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

TRANSCRIPT = "i really loved this movie it was wonderful"


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="7b", help="Qwen2.5-Omni shape with random weights (tiny for a rehearsal)")
    parser.add_argument("--model_name_or_path", default=None, help="a real checkpoint instead of random weights")
    parser.add_argument("--moe_arch", default="qwen3-omni-30b-a3b", help="Qwen3-Omni shape of stage 4 ('none': skip)")
    parser.add_argument("--quantization", default="4bit", choices=["4bit", "none"])
    parser.add_argument("--clip_seconds", type=float, default=8.0)
    parser.add_argument("--clip_size", default="640x360")
    parser.add_argument("--num_clips", type=int, default=8)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    parser.add_argument("--data_wait_steps", type=int, default=6)
    parser.add_argument("--answer_tokens", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min_pixels", type=int, default=None, help="per-frame area bounds (default: official)")
    parser.add_argument("--max_pixels", type=int, default=None)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--output_dir", default="gpu-suite")
    parser.add_argument("--keep_workdir", action="store_true")
    return parser.parse_args(argv)


def step_once(model, optimizer, batch, device) -> None:
    from processing_omni_regressor import model_inputs

    model(**model_inputs(batch, device)).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def train_step_memory(model, encoder, encoded, batch_sizes, memory) -> tuple[dict, torch.optim.Optimizer]:
    """({batch size: peak MB} of one QLoRA step each (the optimizer state allocated at the first), the optimizer)."""
    from ..experiments.benchmark import peak_figure

    optimizer = torch.optim.AdamW([parameter for parameter in model.parameters() if parameter.requires_grad], lr=2e-4)
    device = next(parameter for parameter in model.parameters() if parameter.requires_grad).device
    peaks = {}
    for batch_size in batch_sizes:
        batch = encoder.collate((encoded * batch_size)[:batch_size], labels=[0.5] * batch_size)
        with memory.phase(f"train_step_batch{batch_size}"):
            step_once(model, optimizer, batch, device)
        peaks[batch_size] = peak_figure(memory.peaks[f"train_step_batch{batch_size}"])
    return peaks, optimizer


def data_wait_fractions(model, optimizer, encoder, paths, workers_list, steps) -> dict:
    """{workers: data-wait fraction} of `steps` training steps at batch 1 (the first batch, worker start-up, excluded)."""
    from torch.utils.data import DataLoader

    from ..metering import StageClock

    rows = [{"text": TRANSCRIPT, "media_path": str(path), "label": 0.5} for path in paths]
    device = next(parameter for parameter in model.parameters() if parameter.requires_grad).device
    fractions = {}
    for workers in workers_list:
        loader = DataLoader((rows * (steps + 1))[: steps + 1], batch_size=1, num_workers=workers, collate_fn=encoder)
        batches = iter(loader)
        step_once(model, optimizer, next(batches), device)
        clock = StageClock()
        for _ in range(steps):
            with clock.timed("data_wait"):
                batch = next(batches)
            with clock.timed("forward_backward"):
                step_once(model, optimizer, batch, device)
        fractions[workers] = clock.report()["data_wait_fraction"]
        del batches, loader
    return fractions


def moe_step_memory(arch: str, paths, memory) -> dict:
    """Peak of one attention-only LoRA step of `arch` built on the device in bf16 (no checkpoint), or why not."""
    from configuration_omni_regressor import OmniRegressorConfig
    from processing_omni_regressor import ClipEncoder, ProcessingSettings

    from ..backbones import architecture
    from ..experiments.benchmark import peak_figure
    from ..model_setup import lora_config_for, prepare_for_training
    from ..tiny_backbone import build_processor, thinker_config_for_tokenizer

    spec, preset = architecture(arch)
    processor = build_processor(spec.name, "small")
    config = OmniRegressorConfig(thinker_config=thinker_config_for_tokenizer(spec, preset, processor.tokenizer))
    with torch.device("meta"):
        parameters = sum(parameter.numel() for parameter in spec.regressor_class(config).parameters())
    needed = parameters * 2 * 1.15  # bf16 weights + LoRA, optimizer and activations
    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        if free < needed:
            return {"skipped": f"needs ~{needed / 2**30:.0f} GiB, the card has {free / 2**30:.0f} GiB free",
                    "parameters": parameters}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = ClipEncoder(processor, ProcessingSettings())
    encoded = [encoder.encode(TRANSCRIPT, encoder.decode(paths[0]))]
    with memory.phase("moe_build"), torch.device(device):
        model = spec.regressor_class._from_config(config, dtype=torch.bfloat16)
        model = prepare_for_training(
            model, quantized=False, lora_config=lora_config_for(spec, "attention-only", modules_to_save=["head"]),
            gradient_checkpointing=True, fp32_modules=["head"])
    optimizer = torch.optim.AdamW([parameter for parameter in model.parameters() if parameter.requires_grad], lr=2e-4)
    with memory.phase("moe_step"):
        step_once(model, optimizer, encoder.collate(encoded, labels=[0.5]), device)
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    del model, optimizer
    gc.collect()
    return {"peak_mb": peak_figure(memory.peaks["moe_step"]), "parameters": parameters, "trainable": trainable,
            "weights": "bf16 (upper bound of a 4-bit load)"}


def run_suite(args, workdir: Path) -> dict:
    from processing_omni_regressor import ClipEncoder

    from ..backbones import backbone_of
    from ..experiments.benchmark import (readout_passes, regressor_sharing_backbone, timed_together, use_device,
                                         write_benchmark_clips)
    from ..media import MediaCache
    from ..recipes.discriminative import load_regressor_for_training
    from ..recipes.generative import load_thinker
    from ..settings import resolve_settings
    from .process_memory import PhaseMemory

    use_device(args.device)
    started = time.perf_counter()
    memory = PhaseMemory()
    if args.model_name_or_path:
        source = args.model_name_or_path
    else:
        from ..tiny_backbone import write_random_thinker

        source = write_random_thinker(args.arch, workdir / f"random-{args.arch}")
    backbone = backbone_of(source)
    pixels = {key: getattr(args, key) for key in ("min_pixels", "max_pixels") if getattr(args, key)}
    settings, processor = resolve_settings(pixels, str(source))
    encoder = ClipEncoder(processor, settings, media_cache=MediaCache(None))
    size = tuple(int(part) for part in args.clip_size.lower().split("x"))
    paths = write_benchmark_clips(workdir / "clips", args.num_clips, args.clip_seconds, size)
    encoded = [encoder.encode(TRANSCRIPT, encoder.decode(path)) for path in paths]
    report = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "arch": args.model_name_or_path or args.arch, "quantization": args.quantization,
        "inputs": f"T+A+V, {args.clip_seconds:g}-s {args.clip_size} clips, "
                  + (f"frames of {args.min_pixels}..{args.max_pixels} pixels" if pixels else "official preprocessing"),
        "prompt_tokens_per_clip": int(encoded[0]["input_ids"].shape[1]),
        "seconds": {},
    }

    model = load_regressor_for_training(str(source), backbone, quantization=args.quantization).train()
    report["train_step_peak_mb"], optimizer = train_step_memory(model, encoder, encoded, args.batch_sizes, memory)
    report["seconds"]["train_steps"] = round(time.perf_counter() - started, 1)
    report["data_wait_fraction"] = data_wait_fractions(model, optimizer, encoder, paths, args.workers, args.data_wait_steps)
    report["seconds"]["data_wait"] = round(time.perf_counter() - started, 1)
    del model, optimizer
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

    thinker = load_thinker(str(source), backbone, args.quantization).eval()
    regressor = regressor_sharing_backbone(thinker, backbone)
    device = thinker.lm_head.weight.device

    discriminative, generative, _ = readout_passes(regressor, thinker, encoder, encoded, device, args.answer_tokens)

    seconds = timed_together({"discriminative": lambda: discriminative(1), "generative": generative,
                              "batch8": lambda: discriminative(8)}, args.repeats)
    report["discriminative_ms_per_clip"] = round(1000 * seconds["discriminative"] / len(encoded), 1)
    report["generative_ms_per_clip"] = round(1000 * seconds["generative"] / len(encoded), 1)
    report["generative_over_discriminative_latency"] = round(seconds["generative"] / seconds["discriminative"], 2)
    report["batch8_clips_per_second"] = round(len(encoded) / seconds["batch8"], 2)
    report["seconds"]["readouts"] = round(time.perf_counter() - started, 1)
    del thinker, regressor, discriminative, generative
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if not args.model_name_or_path:
        shutil.rmtree(workdir / f"random-{args.arch}", ignore_errors=True)  # the disk stage 4 may need

    report["moe_attention_only_step"] = (
        {"skipped": "--moe_arch none"} if args.moe_arch == "none" else {"arch": args.moe_arch, **moe_step_memory(args.moe_arch, paths, memory)})
    report["seconds"]["moe_step"] = round(time.perf_counter() - started, 1)
    report["memory_phases_mb"] = memory.peaks
    return report


def markdown_table(report: dict) -> str:
    memory_kind = "CUDA max allocated" if report["device"] != "cpu" else "anonymous (allocated) peak"
    rows = [(f"QLoRA step peak memory, batch {size} ({memory_kind})", f"{mb / 1024:.2f} GB")
            for size, mb in report["train_step_peak_mb"].items()]
    rows += [("Discriminative latency per clip (batch 1)", f"{report['discriminative_ms_per_clip']:.0f} ms"),
             ("Generative latency per clip (batch 1)", f"{report['generative_ms_per_clip']:.0f} ms"),
             ("Generative / discriminative latency", f"{report['generative_over_discriminative_latency']:.2f}x"),
             ("Discriminative throughput, batch 8", f"{report['batch8_clips_per_second']:.2f} clips/s")]
    rows += [(f"Data-wait fraction of training steps, {workers} workers", f"{fraction:.1%}")
             for workers, fraction in report["data_wait_fraction"].items()]
    moe = report["moe_attention_only_step"]
    rows.append((f"{moe.get('arch', 'Qwen3-Omni')} step memory, attention-only LoRA",
                 f"{moe['peak_mb'] / 1024:.2f} GB ({moe['weights']})" if "peak_mb" in moe else f"skipped: {moe['skipped']}"))
    lines = [f"Device: {report['device']} · {report['arch']} ({report['quantization']}) · {report['inputs']} · "
             f"{report['prompt_tokens_per_clip']} prompt tokens per clip · suite {report['seconds']['moe_step']:.0f} s", "",
             "| Measurement | Value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_arguments(argv)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="omni-gpu-suite-"))
    try:
        report = run_suite(args, workdir)
    finally:
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    (output_dir / "gpu_suite.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (output_dir / "gpu_suite.md").write_text(markdown_table(report))
    print(markdown_table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
