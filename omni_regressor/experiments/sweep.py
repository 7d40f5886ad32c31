"""`omni-regressor sweep`: modality ablations x seeds, mean ± std per configuration (MMSA style).

    omni-regressor sweep --modality_sets T,T+A,T+V,T+A+V --seeds 1 2 3 4 \
        --model_name_or_path Qwen/Qwen2.5-Omni-7B --dataset_dir MOSI --output_dir runs/sweep

Every other flag is a flag of `omni-regressor train` and is passed to every run (in this process, one after the
other). The runs share one media cache, so each clip is decoded once for the whole sweep (each run's
`media_cache.decode_calls` is in its summary). Each configuration appends one row (mean ± std over the seeds) to the
dataset's results CSV.
"""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omni_regressor.eval.metrics import PRIMARY_METRICS, SIMS_METRIC_KEYS
from processing_omni_regressor import modality_tag, parse_modalities

from ..arguments import OmniArgumentParser
from ..data import read_dataset
from ..media import default_cache_dir
from ..results import append_results
from ..run import RunError, run_training
from ..training_arguments import training_parser


@dataclass
class SweepArguments:
    _argument_group_name = "sweep"
    modality_sets: str = field(default="T,T+A,T+V,T+A+V", metadata={
        "help": "Comma-separated modality sets, each joined by '+' (T, A, V)."})
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3, 4], metadata={"help": "Seeds, space-separated."})

    def validate(self):
        for part in self.modality_sets.split(","):
            try:
                parse_modalities(part)
            except ValueError as error:
                raise ValueError(f"--modality_sets: {error}") from None


def mean_std_table(results: dict[str, list[dict]]) -> tuple[str, dict]:
    """`results[tag]` holds one test-metrics dict per seed -> markdown table of mean ± std, and the numbers."""
    first = next(iter(results.values()))[0]
    metric_keys = PRIMARY_METRICS if "Has0_acc_2" in first else SIMS_METRIC_KEYS
    lines = ["| modalities | runs | " + " | ".join(metric_keys) + " |", "|---|---|" + "---|" * len(metric_keys)]
    summary = {}
    for tag, runs in results.items():
        summary[tag] = {}
        cells = []
        for key in metric_keys:
            values = np.asarray([run[key] for run in runs], dtype=np.float64)
            mean, std = float(np.nanmean(values)), float(np.nanstd(values))
            summary[tag][key] = {"mean": mean, "std": std, "values": values.tolist()}
            cells.append(f"{mean:.4f} ± {std:.4f}")
        lines.append(f"| {tag} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", summary


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    sweep_parser = OmniArgumentParser(SweepArguments, prog="omni-regressor sweep", description=__doc__)
    args, train_argv = sweep_parser.parse(argv, allow_remaining=True)
    model_args, data_args, processing, training_args = training_parser("omni-regressor sweep").parse(train_argv)
    if processing.modalities is not None:
        sweep_parser.error("--modalities is set per configuration by --modality_sets")
    processing.media_cache_dir = processing.media_cache_dir or str(default_cache_dir())
    records, _ = read_dataset(data_args.dataset_dir, data_args.dataset_format, **data_args.dataset_options())
    if not any(record.split == "test" for record in records):
        raise RunError(f"{data_args.dataset_dir}: no clip has mode 'test', which every run of the sweep is scored on.")
    output_dir = Path(training_args.output_dir)
    results_dir = training_args.results_dir
    modality_sets = [parse_modalities(part) for part in args.modality_sets.split(",") if part.strip()]

    results, decode_calls = {}, {}
    for modalities in modality_sets:
        tag = modality_tag(modalities)
        for seed in args.seeds:
            run_args = training_parser("omni-regressor sweep").parse(train_argv)
            run_model, run_data, run_processing, run_training_args = run_args
            run_processing.modalities = ",".join(modalities)
            run_processing.media_cache_dir = processing.media_cache_dir
            run_training_args.seed = seed
            run_training_args.output_dir = str(output_dir / tag.replace("+", "") / f"seed{seed}")
            run_training_args.results_dir = "none"  # the sweep appends one row per configuration below
            summary = run_training(run_model, run_data, run_processing, run_training_args)
            results.setdefault(tag, []).append(summary["test_metrics"])
            decode_calls[f"{tag}/seed{seed}"] = summary["media_cache"]["decode_calls"]
        if str(results_dir or "").lower() != "none":
            append_results(
                results_dir or output_dir.resolve().parent / "results",
                data_args.dataset_name or Path(data_args.dataset_dir).resolve().name, model_args.model_name_or_path,
                summary["backbone"], model_args.readout, modalities, args.seeds, results[tag], output_dir,
            )

    table, numbers = mean_std_table(results)
    report = {"configurations": numbers, "seeds": args.seeds, "decode_calls_per_run": decode_calls,
              "total_decode_calls": sum(decode_calls.values())}
    (output_dir / "sweep.md").write_text(table)
    (output_dir / "sweep.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(table)
    print(f"decodes: {report['total_decode_calls']} in total over {len(decode_calls)} runs ({decode_calls})")
    return 0
