"""What the benchmarks (and the scaling tests) share: generated clip folders, a tiny exported regressor, and the
peak resident memory of a command and its worker processes."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

# 640x360 frames at the official pixel limits: each decoded clip is 4 frames of 364x644 (2.8 MB of uint8).
CLIP_SIZE = (640, 360)
OFFICIAL_PIXEL_FLAGS = ["--min_pixels", str(128 * 28 * 28), "--max_pixels", str(768 * 28 * 28)]  # Qwen2.5-Omni's
CLIP_SECONDS = 2.0
CLIP_FPS = 2.0


def write_clip_folder(folder, count: int, size=CLIP_SIZE, seconds: float = CLIP_SECONDS, fps: float = CLIP_FPS,
                      distinct: int = 4) -> list[Path]:
    """`count` H.264 + AAC clips named clip_0000.mp4...; `distinct` different ones, the others are byte copies (each
    still decoded on its own: the media cache keys on the path too)."""
    from ..media import write_clip

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    num_frames = max(1, round(seconds * fps))
    time_axis = np.arange(int(seconds * 16000)) / 16000
    paths = []
    for index in range(count):
        path = folder / f"clip_{index:04d}.mp4"
        if index < distinct:
            frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)  # (T, H, W, 3)
            frames[...] = np.linspace(0, 255, width, dtype=np.uint8)[None, None, :, None]
            for frame_index, frame in enumerate(frames):  # a bright square that moves: content differs per clip
                left = (index * 97 + frame_index * 53) % (width - height // 3)
                frame[height // 3 : 2 * height // 3, left : left + height // 3] = (255, 80 + 40 * index % 160, 0)
            audio = (0.2 * np.sin(2 * np.pi * (200 + 40 * index) * time_axis)).astype(np.float32)
            write_clip(path, frames, fps, audio, 16000)
        else:
            shutil.copyfile(paths[index % distinct], path)
        paths.append(path)
    return paths


def tiny_regressor(workdir, num_clips: int = 12, epochs: float = 1.0) -> Path:
    """A tiny regressor (random tiny Qwen2.5-Omni backbone, a short full-precision LoRA run) -> its export folder."""
    from ..training_arguments import parse_training_arguments
    from ..data import write_demo_dataset
    from ..run import run_training
    from ..tiny_backbone import write_tiny_backbone

    workdir = Path(workdir)
    backbone = write_tiny_backbone(workdir / "tiny-backbone", seed=0)
    data = write_demo_dataset(workdir / "demo-data", num_clips=num_clips, seed=0)
    with quiet_stdout():
        summary = run_training(*parse_training_arguments(tiny_training_flags(backbone, data, workdir / "tiny-run", epochs)))
    return Path(summary["export_dir"])


def tiny_training_flags(backbone, data, output_dir, epochs: float = 1.0, *extra) -> list[str]:
    return [
        "--model_name_or_path", str(backbone), "--dataset_dir", str(data), "--output_dir", str(output_dir),
        "--quantization", "none", "--head_hidden_size", "16", "--num_train_epochs", str(epochs),
        "--per_device_train_batch_size", "4", "--learning_rate", "2e-3", "--logging_steps", "1",
        "--min_pixels", str(28 * 28 * 4), "--max_pixels", str(28 * 28 * 16),
        "--media_cache_dir", str(Path(output_dir).parent / "media-cache"), "--disable_tqdm", "true",
        "--results_dir", "none", "--seed", "7", *extra,
    ]


_PEAK_PROBE = """
import json, resource, subprocess, sys
returncode = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as report:
    json.dump({"returncode": returncode, "peak_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}, report)
"""


# glibc raises its mmap threshold after large frees and then serves the ~10 MB arrays of a clip from the heap, whose
# high-water mark wanders by tens of MB from run to run; a fixed threshold makes RSS track the memory actually held.
STEADY_ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def peak_rss_bytes(command: list[str], env=None, cwd=None, timeout=None) -> tuple[int, int]:
    """(exit status, peak RSS in bytes) of `command`: the largest resident set any of its processes (it, its DataLoader
    workers) reached. A fresh Python parent whose only descendants they are reads it from RUSAGE_CHILDREN, which the
    kernel keeps exactly (no polling); the caller's own children do not mix in. Runs with `STEADY_ALLOCATOR`."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        report_path = handle.name
    env = {**(os.environ if env is None else env), **STEADY_ALLOCATOR}
    try:
        subprocess.run([sys.executable, "-c", _PEAK_PROBE, report_path, *map(str, command)], env=env, cwd=cwd,
                       timeout=timeout, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        report = json.loads(Path(report_path).read_text())
    finally:
        os.unlink(report_path)
    return report["returncode"], report["peak_rss_kb"] * 1024


def decoded_clip_bytes(model_dir, path, pixel_flags=OFFICIAL_PIXEL_FLAGS) -> int:
    """Bytes of one decoded clip (frames + audio) with the model's settings and the `--min/max_pixels` flags."""
    from ..inference import SentimentScorer

    processing = {flag.lstrip("-"): int(value) for flag, value in zip(pixel_flags[::2], pixel_flags[1::2])}
    scorer = SentimentScorer.from_pretrained(model_dir, processing=processing, device="cpu")
    clip = scorer.encoder.decode(str(path))
    return sum(array.nbytes for array in (clip.frames, clip.audio) if array is not None)


def predict_command(model_dir, *argv) -> list[str]:
    return [sys.executable, "-m", "omni_regressor.cli", "predict", "--model", str(model_dir), "--device", "cpu",
            "--no_progress", *map(str, argv)]


def base_parser(description: str, model: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    if model:
        parser.add_argument("--model", default=None, help="exported regressor folder (default: train a tiny one)")
    parser.add_argument("--workdir", default=None, help="keep the generated files here (default: a temporary folder)")
    return parser


@contextmanager
def workspace(workdir=None):
    """`workdir` (created), or a temporary folder removed afterwards."""
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        yield Path(workdir)
        return
    with tempfile.TemporaryDirectory(prefix="omni-benchmark-") as temporary:
        yield Path(temporary)


def model_or_tiny(model, workdir: Path) -> Path:
    return Path(model) if model else tiny_regressor(workdir / "model")


def print_report(report: dict) -> None:
    print(json.dumps(report), flush=True)


def interleaved_medians(measurements: dict, rounds: int) -> dict:
    """{name: median seconds} of `rounds` rounds, each timing every measurement once in turn: a burst of load from
    other processes then hits every arm alike instead of one."""
    import statistics
    import time

    seconds = {name: [] for name in measurements}
    for _ in range(rounds):
        for name, measure in measurements.items():
            started = time.perf_counter()
            measure()
            seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in seconds.items()}


@contextmanager
def quiet_stdout():
    """The Trainer prints its log lines on stdout; the benchmark's one JSON line must be alone there."""
    from contextlib import redirect_stdout

    with redirect_stdout(sys.stderr):
        yield
