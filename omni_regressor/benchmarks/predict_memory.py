"""Peak resident memory of `omni-regressor predict` on N and factor*N clips: streaming keeps it flat.

    python -m omni_regressor.benchmarks.predict_memory [--clips 8] [--factor 10] [--batch_size 4] [--chunk_batches 1]

640x360 clips at the official pixel limits, each decoded clip ~2.9 MB. Memory holds one chunk of encoded clips
(`--chunk_batches` x `--batch_size`) plus the workers' prefetch, so N must be at least that for both runs to reach
the steady state. Prints one JSON line: peak RSS of each run (largest process: predict or one of its workers), the
growth, and the growth in units of one batch of decoded media (the issue's bound: < 1).
"""

import shutil

from .common import (OFFICIAL_PIXEL_FLAGS, base_parser, decoded_clip_bytes, model_or_tiny, peak_rss_bytes,
                     predict_command, print_report, workspace, write_clip_folder)


def main(argv=None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="N")
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--chunk_batches", "--window_batches", type=int, default=1)  # the second: its former name
    parser.add_argument("--num_workers", type=int, default=None)
    args = parser.parse_args(argv)
    with workspace(args.workdir) as workdir:
        model = model_or_tiny(args.model, workdir)
        many = write_clip_folder(workdir / "clips-many", args.clips * args.factor)
        (workdir / "clips-few").mkdir(exist_ok=True)
        for path in many[: args.clips]:
            shutil.copyfile(path, workdir / "clips-few" / path.name)
        decoded_bytes = decoded_clip_bytes(model, many[0])
        flags = ["--batch_size", args.batch_size, "--chunk_batches", args.chunk_batches, *OFFICIAL_PIXEL_FLAGS,
                 *(["--num_workers", args.num_workers] if args.num_workers is not None else [])]
        peaks = {}
        for name in ("few", "many"):
            command = predict_command(model, workdir / f"clips-{name}", "--output", workdir / f"scores-{name}.csv",
                                      "--overwrite", "--media_cache_dir", workdir / f"cache-{name}", *flags)
            status, peaks[name] = peak_rss_bytes(command)
            if status != 0:
                raise SystemExit(f"predict on {name} clips exited with {status}")
    growth = peaks["many"] - peaks["few"]
    batch_bytes = args.batch_size * decoded_bytes
    print_report({
        "benchmark": "predict_memory",
        "clips": [args.clips, args.clips * args.factor],
        "batch_size": args.batch_size,
        "chunk_batches": args.chunk_batches,
        "decoded_mb_per_clip": round(decoded_bytes / 2**20, 2),
        "peak_rss_mb": [round(peaks["few"] / 2**20, 1), round(peaks["many"] / 2**20, 1)],
        "growth_mb": round(growth / 2**20, 2),
        "growth_in_decoded_batches": round(growth / batch_bytes, 3),
        "peak_ratio": round(peaks["many"] / peaks["few"], 4),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
