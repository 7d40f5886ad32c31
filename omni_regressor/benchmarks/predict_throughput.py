"""End-to-end `omni-regressor predict` throughput at batch 8 vs batch 1 (clips/s, model loaded once per run).

    python -m omni_regressor.benchmarks.predict_throughput [--clips 64] [--rounds 3]

Each run is the command's own code (`omni_regressor.predict.main`, in this process: the one-off imports are paid by
a warm-up run that also fills the media cache), on 640x360 clips with a transcript at the official pixel limits
(`--model_pixels`: the model's own, 16 tokens per frame for the tiny one), rows written to a JSONL file. Prints one
JSON line: clips/s at batch 1 and batch 8 (median of interleaved rounds), and their ratio.
"""

import contextlib
import io

from .common import (OFFICIAL_PIXEL_FLAGS, base_parser, interleaved_medians, model_or_tiny, print_report, workspace,
                     write_clip_folder)


def run_predict(model, table, output, cache_dir, batch_size: int, pixel_flags) -> None:
    from ..predict import main as predict_main

    argv = ["--model", str(model), str(table), "--output", str(output), "--overwrite", "--batch_size", str(batch_size),
            "--device", "cpu", "--no_progress", "--media_cache_dir", str(cache_dir), *pixel_flags]
    with contextlib.redirect_stderr(io.StringIO()):
        status = predict_main(argv)
    if status != 0:
        raise SystemExit(f"predict exited with {status}")


def main(argv=None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--model_pixels", action="store_true", help="the model's saved pixel limits, not the official")
    args = parser.parse_args(argv)
    pixel_flags = [] if args.model_pixels else OFFICIAL_PIXEL_FLAGS
    with workspace(args.workdir) as workdir:
        model = model_or_tiny(args.model, workdir)
        paths = write_clip_folder(workdir / "clips", args.clips, distinct=8)
        table = workdir / "inputs.csv"
        words = ("it was great", "i did not like it at all", "fine", "the best film i have seen this year")
        table.write_text("path,text\n" + "".join(f"{path},{words[index % 4]}\n" for index, path in enumerate(paths)))
        run_predict(model, table, workdir / "warm-up.jsonl", workdir / "cache", 8, pixel_flags)
        seconds = interleaved_medians({
            batch: lambda batch=batch: run_predict(model, table, workdir / f"batch{batch}.jsonl", workdir / "cache",
                                                   batch, pixel_flags)
            for batch in (1, 8)}, args.rounds)
    print_report({
        "benchmark": "predict_throughput",
        "clips": args.clips,
        "rounds": args.rounds,
        "pixels": "model" if args.model_pixels else "official",
        "clips_per_second": {f"batch{batch}": round(args.clips / value, 2) for batch, value in seconds.items()},
        "batch8_vs_batch1": round(seconds[1] / seconds[8], 3),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
