"""The data-wait fraction of training steps (from `training_summary.json`'s `stages`), input workers vs none.

    python -m omni_regressor.benchmarks.training_stages [--clips 48] [--epochs 2] [--official_pixels]

Short runs of the tiny backbone on generated demo clips (full precision LoRA, batch 4, warm media cache) with
`--dataloader_num_workers 0`, the default (up to 4, one core left), and the default with persistent workers (not
restarted at every epoch and evaluation). Prints one JSON line: each run's seconds per stage and data-wait fraction.
"""

from .common import OFFICIAL_PIXEL_FLAGS, base_parser, print_report, quiet_stdout, tiny_training_flags, workspace


def main(argv=None) -> int:
    from ..arguments import default_num_workers
    from ..training_arguments import parse_training_arguments
    from ..data import write_demo_dataset
    from ..run import run_training
    from ..tiny_backbone import write_tiny_backbone

    parser = base_parser(__doc__.splitlines()[0], model=False)
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--official_pixels", action="store_true", help="128..768 tokens per frame, not 4..16")
    args = parser.parse_args(argv)
    workers = default_num_workers()
    arms = {
        "0_workers": ["--dataloader_num_workers", "0"],
        f"{workers}_workers": ["--dataloader_num_workers", str(workers)],
        f"{workers}_persistent_workers": ["--dataloader_num_workers", str(workers),
                                          "--dataloader_persistent_workers", "true"],
    }
    runs = {}
    with workspace(args.workdir) as workdir:
        backbone = write_tiny_backbone(workdir / "tiny-backbone", seed=0)
        data = write_demo_dataset(workdir / "demo-data", num_clips=args.clips, seed=0)
        for name, flags in arms.items():
            flags = tiny_training_flags(backbone, data, workdir / f"run-{name}", args.epochs, *flags,
                                        *(OFFICIAL_PIXEL_FLAGS if args.official_pixels else []))
            with quiet_stdout():
                summary = run_training(*parse_training_arguments(flags))
            runs[name] = {**summary["stages"], "train_seconds": summary["train_seconds"]}
    print_report({"benchmark": "training_stages", "clips": args.clips, "epochs": args.epochs,
                  "pixels": "official" if args.official_pixels else "4..16 tokens per frame", "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
