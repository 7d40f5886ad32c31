"""Per-clip throughput of the input pipeline (decode + encode in DataLoader workers) with W workers vs 1, no model.

    python -m omni_regressor.benchmarks.input_pipeline [--clips 48] [--workers W] [--rounds 3]

The clips go through `stream_scores` with the model left out (a scoring step that returns nothing), without a media
cache: every clip is decoded (PyAV, resized to the official pixel limits) and encoded (prompt + Qwen processor).
W defaults to the cores available (2 here). Prints one JSON line: clips/s with 0 (main process), 1 and W workers
(median of interleaved rounds, worker start-up included), and the W-vs-1 ratio.
"""

import os

from .common import (OFFICIAL_PIXEL_FLAGS, base_parser, interleaved_medians, model_or_tiny, print_report, workspace,
                     write_clip_folder)


def stream_without_model(encoder, paths, num_workers: int) -> None:
    from pipeline_omni_regressor import ClipScore

    from ..streaming import InputItem, stream_scores

    items = [InputItem(index, str(path)) for index, path in enumerate(paths)]
    no_model = lambda clips: [ClipScore(clip.path, None, clip.modalities) for clip in clips]  # noqa: E731
    for _, result in stream_scores(None, encoder, items, batch_size=8, num_workers=num_workers, score_chunk=no_model):
        assert result.error is None, result.error


def main(argv=None) -> int:
    import torch

    from ..inference import SentimentScorer

    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as in a DataLoader worker: the comparison is about processes, not intra-op threads
    with workspace(args.workdir) as workdir:
        model = model_or_tiny(args.model, workdir)
        processing = {flag.lstrip("-"): int(value) for flag, value in zip(OFFICIAL_PIXEL_FLAGS[::2], OFFICIAL_PIXEL_FLAGS[1::2])}
        encoder = SentimentScorer.from_pretrained(model, processing=processing, media_cache_dir=None).encoder
        paths = write_clip_folder(workdir / "clips", args.clips)
        stream_without_model(encoder, paths[:2], 0)  # library start-up is not a per-clip cost
        seconds = interleaved_medians({workers: lambda workers=workers: stream_without_model(encoder, paths, workers)
                                       for workers in sorted({0, 1, args.workers})}, args.rounds)
        rates = {workers: args.clips / value for workers, value in seconds.items()}
    print_report({
        "benchmark": "input_pipeline",
        "clips": args.clips,
        "rounds": args.rounds,
        "workers": args.workers,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "clips_per_second": {str(workers): round(rate, 2) for workers, rate in rates.items()},
        "ms_per_clip": {str(workers): round(1000 / rate, 1) for workers, rate in rates.items()},
        "workers_vs_1": round(rates[args.workers] / rates[1], 3),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
