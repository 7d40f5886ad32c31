"""`omni-regressor sweep`: modality ablations x seeds, mean ± std per configuration (MMSA style).

    omni-regressor sweep --modalities T,T+A,T+V,T+A+V --seeds 1 2 3 4 \\
        --model_name_or_path Qwen/Qwen2.5-Omni-7B --dataset_dir MOSI --output_dir runs/sweep

Every other flag is a flag of `omni-regressor train` and is passed to every run. The runs share one media cache,
so each clip is decoded once for the whole sweep (each run's `media_cache.decode_calls` is in its summary).
"""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import HfArgumentParser

import train_with_trainer
from eval.compare import strip_flag
from eval.metrics import PRIMARY_METRICS, SIMS_METRIC_KEYS
from omni_regressor.media import default_cache_dir
from omni_regressor.processing import modality_tag, parse_modalities


@dataclass
class SweepArguments:
    output_dir: str = field(metadata={"help": "Root of the sweep: one folder per configuration and seed."})
    modalities: str = field(
        default="T,T+A,T+V,T+A+V", metadata={"help": "Comma-separated modality sets, each joined by '+' (T, A, V)."}
    )
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3, 4], metadata={"help": "Seeds, space-separated."})


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
    # No abbreviations: a training flag such as `--seed` must not be read as `--seeds`.
    parser = HfArgumentParser(SweepArguments, allow_abbrev=False)
    args, train_argv = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    train_argv = strip_flag(strip_flag(train_argv, "--seed"), "--output_dir")
    if not any(token.startswith(("--media_cache_dir", "--media-cache-dir")) for token in train_argv):
        train_argv += ["--media_cache_dir", str(default_cache_dir())]
    output_dir = Path(args.output_dir)
    modality_sets = [parse_modalities(part) for part in args.modalities.split(",") if part.strip()]

    results, decode_calls = {}, {}
    for modalities in modality_sets:
        tag = modality_tag(modalities)
        for seed in args.seeds:
            run_dir = output_dir / tag.replace("+", "") / f"seed{seed}"
            summary = train_with_trainer.main(
                [*train_argv, "--modalities", ",".join(modalities), "--seed", str(seed), "--output_dir", str(run_dir)]
            )
            results.setdefault(tag, []).append(summary["test_metrics"])
            decode_calls[f"{tag}/seed{seed}"] = summary["media_cache"]["decode_calls"]

    table, numbers = mean_std_table(results)
    report = {"configurations": numbers, "seeds": args.seeds, "decode_calls_per_run": decode_calls,
              "total_decode_calls": sum(decode_calls.values())}
    (output_dir / "sweep.md").write_text(table)
    (output_dir / "sweep.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(table)
    print(f"decodes: {report['total_decode_calls']} in total over {len(decode_calls)} runs ({decode_calls})")
    return 0
