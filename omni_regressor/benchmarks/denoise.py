"""What `--denoise deepfilternet` costs, and the hidden-state analysis of the demo model before and after fine-tuning.

    python -m omni_regressor.benchmarks.denoise [--clips 8] [--demo_dir runs/demo] [--workdir DIR]

Prints one JSON line:
- `denoiser`: DeepFilterNet3 through `denoise_waveform` on 16 kHz audio: seconds of compute per audio second (the slope
  between a 0.1 s and a `--long_seconds` call), the fixed cost of one call (a fresh model state per call keeps the
  output deterministic), and the real-time factor;
- `decode`: per clip, a first decode (miss: decode + cache write) with and without denoising, and a load from the warm
  media cache, on `--clips` generated H.264 + AAC clips (640x360, `--clip_seconds` each, official pixel limits);
- `analysis`: `omni-regressor analyze` on the demo's test split and on all its clips, for the base checkpoint (before)
  and the fine-tuned export (after), with the run's own processing settings. `--demo_dir` reuses an
  `omni-regressor demo` output; by default the demo runs first (20-90 s on 2 CPU cores). `--skip_analysis` leaves it out.
"""

import contextlib
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .common import base_parser, print_report, workspace, write_clip_folder


def timed(function, repeats: int = 3) -> float:
    """Median wall seconds of `repeats` calls."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def denoiser_cost(long_seconds: float, repeats: int) -> dict:
    from ..denoise import denoise_waveform, denoiser_info

    info = denoiser_info()  # loads the runtime once: not a per-call cost
    rng = np.random.default_rng(0)
    time_axis = np.arange(int(long_seconds * 16000)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 180 * time_axis) + 0.05 * rng.standard_normal(len(time_axis))).astype(np.float32)
    short = timed(lambda: denoise_waveform(audio[:1600]), repeats)  # 0.1 s: mostly the fixed cost
    long = timed(lambda: denoise_waveform(audio), repeats)
    per_second = (long - short) / (long_seconds - 0.1)
    return {
        "seconds_per_audio_second": round(per_second, 4),
        "real_time_factor": round(1 / per_second, 1),
        "fixed_seconds_per_call": round(short - 0.1 * per_second, 3),
        "long_call_seconds": round(long, 3),
        "long_call_audio_seconds": long_seconds,
        "model_rate": info.sampling_rate,
        "frame_length": info.frame_length,
        "delay_samples": info.delay_samples,
    }


def decode_cost(workdir: Path, num_clips: int, clip_seconds: float) -> dict:
    from ..media import MediaCache
    from ..settings import resolve_settings

    paths = write_clip_folder(workdir / "clips", num_clips, seconds=clip_seconds, distinct=num_clips)
    plain = resolve_settings()[0].media_settings()  # the default backbone's official settings
    report = {"clips": num_clips, "clip_seconds": clip_seconds}
    for name, settings in (("none", plain), ("deepfilternet", replace(plain, denoise="deepfilternet"))):
        cache = MediaCache(workdir / f"cache-{name}")
        cache.load(paths[0], replace(settings, fps=settings.fps * 2))  # start-up (libraries, runtime), not per clip
        started = time.perf_counter()
        for path in paths:
            cache.load(path, settings)
        first = (time.perf_counter() - started) / num_clips
        warm = MediaCache(workdir / f"cache-{name}")
        started = time.perf_counter()
        for path in paths:
            warm.load(path, settings)
        cached = (time.perf_counter() - started) / num_clips
        assert (cache.decode_calls, warm.decode_calls) == (num_clips + 1, 0), "the warm cache decoded a clip"
        report[f"first_decode_ms_per_clip_{name}"] = round(1000 * first, 1)
        report[f"cached_load_ms_per_clip_{name}"] = round(1000 * cached, 2)
    report["denoise_overhead_ms_per_clip"] = round(
        report["first_decode_ms_per_clip_deepfilternet"] - report["first_decode_ms_per_clip_none"], 1)
    report["first_decode_slowdown_with_denoise"] = round(
        report["first_decode_ms_per_clip_deepfilternet"] / report["first_decode_ms_per_clip_none"], 2)
    return report


def demo_analysis(workdir: Path, demo_dir) -> dict:
    import json

    from ..analyze import main as analyze_main
    from ..demo import main as demo_main

    if demo_dir is None:
        demo_dir = workdir / "demo"
        with contextlib.redirect_stdout(sys.stderr):  # this benchmark's stdout is its one JSON line
            demo_main(["--output_dir", str(demo_dir)])
    demo_dir = Path(demo_dir)
    model_dir = demo_dir / "run" / "model"
    saved = json.loads((model_dir / "config.json").read_text())["processing"]
    # The base checkpoint sees the clips exactly as the run did (its saved pixel budget and modalities).
    same_settings = ["--min_pixels", str(saved["min_pixels"]), "--max_pixels", str(saved["max_pixels"]),
                     "--modalities", ",".join(saved["modalities"]), "--media_cache_dir", str(demo_dir / "media-cache")]
    report = {"demo_dir": str(demo_dir)}
    for split in ("test", "all"):
        for stage, model in (("before", demo_dir / "backbone"), ("after", model_dir)):
            output_dir = workdir / "analysis" / f"{stage}-{split}"
            with contextlib.redirect_stdout(sys.stderr):
                analyze_main(["--model", str(model), "--dataset_dir", str(demo_dir / "data"), "--split", split,
                              "--k", "10", "--output_dir", str(output_dir), "--overwrite", *same_settings])
            analysis = json.loads((output_dir / "analysis.json").read_text())
            report[f"{stage}_{split}"] = {key: round(analysis[key], 3) if isinstance(analysis[key], float) else analysis[key]
                                          for key in ("num_clips", "k", "knn_label_distance", "permuted_label_distance",
                                                      "permutation_p_value")}
    return report


def main(argv=None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="generated clips decoded with and without denoising")
    parser.add_argument("--clip_seconds", type=float, default=4.0, help="length of each generated clip")
    parser.add_argument("--long_seconds", type=float, default=20.0, help="audio length of the long denoiser call")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of each denoiser call (median)")
    parser.add_argument("--demo_dir", default=None, help="an `omni-regressor demo` output to analyse (default: run it)")
    parser.add_argument("--skip_analysis", action="store_true", help="only the denoising and decoding costs")
    args = parser.parse_args(argv)
    with workspace(args.workdir) as workdir:
        report = {"denoiser": denoiser_cost(args.long_seconds, args.repeats),
                  "decode": decode_cost(workdir, args.clips, args.clip_seconds)}
        if not args.skip_analysis:
            report["analysis"] = demo_analysis(workdir, args.demo_dir)
    print_report(report)


if __name__ == "__main__":
    main()
