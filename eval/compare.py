"""`omni-regressor compare`: discriminative vs generative readout (zero-shot and fine-tuned), one table.

All arms use the same backbone, data, modalities, quantisation, LoRA preset and seed: the flags are those of
`omni-regressor train`, passed to every arm. Each arm runs in its own process so that its peak memory is its own.

    omni-regressor compare --model_name_or_path Qwen/Qwen2.5-Omni-7B --dataset_dir MOSI --output_dir runs/compare
"""

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from eval.metrics import PRIMARY_METRICS, SIMS_METRIC_KEYS
from train_with_trainer import parse_arguments

COST_COLUMNS = ["unparsable_rate", "out_of_range_rate", "ms_per_clip", "peak_memory_mb"]


def table_columns(rows: list[dict]) -> list[str]:
    """MMSA's MOSI/MOSEI keys, or its SIMS keys for a (-1, 1) dataset."""
    metric_keys = PRIMARY_METRICS if "Has0_acc_2" in rows[0] else SIMS_METRIC_KEYS
    return ["readout", *metric_keys, *COST_COLUMNS]


@dataclass
class CompareArguments:
    skip_zero_shot: bool = field(default=False, metadata={"help": "Leave out the zero-shot generative arm."})
    skip_generative_finetune: bool = field(default=False, metadata={"help": "Leave out the fine-tuned generative arm."})
    max_new_tokens: int = field(default=8, metadata={"help": "Longest generated answer (generative arms)."})


def run_arm(command: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "omni_regressor.cli", *command], stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"`omni-regressor {' '.join(command[:1])}` failed with exit status {result.returncode}.")


def row_from_training(summary: dict, readout: str) -> dict:
    num_clips = len(summary["test_predictions"])
    return {"readout": readout, **summary["test_metrics"], "peak_memory_mb": summary["peak_memory_mb"], "num_clips": num_clips}


def format_value(value) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    return "" if value is None else str(value)


def markdown_table(rows: list[dict], columns=None) -> str:
    columns = columns or table_columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_value(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    compare_args, train_argv = HfArgumentParser(CompareArguments, allow_abbrev=False).parse_args_into_dataclasses(
        argv, return_remaining_strings=True
    )
    model_args, data_args, training_args = parse_arguments(train_argv)
    output_dir = Path(training_args.output_dir)
    shared = strip_flag(strip_flag(train_argv, "--output_dir"), "--readout")

    rows = []
    run_arm(["train", *shared, "--readout", "discriminative", "--output_dir", str(output_dir / "discriminative")])
    summary = json.loads((output_dir / "discriminative" / "training_summary.json").read_text())
    rows.append(row_from_training(summary, "discriminative (fine-tuned)"))
    if not compare_args.skip_generative_finetune:
        run_arm(["train", *shared, "--readout", "generative", "--output_dir", str(output_dir / "generative")])
        summary = json.loads((output_dir / "generative" / "training_summary.json").read_text())
        rows.append(row_from_training(summary, "generative (fine-tuned)"))
    if not compare_args.skip_zero_shot:
        zero_shot = [
            "zero-shot",
            "--model_name_or_path", model_args.model_name_or_path,
            "--dataset_dir", data_args.dataset_dir,
            "--dataset_format", data_args.dataset_format,
            "--modalities", data_args.modalities,
            "--quantization", model_args.quantization,
            "--max_pixels", str(data_args.max_pixels),
            "--max_new_tokens", str(compare_args.max_new_tokens),
            "--output_dir", str(output_dir / "zero_shot"),
        ]
        if data_args.labels_csv:
            zero_shot += ["--labels_csv", data_args.labels_csv]
        if data_args.media_cache_dir:
            zero_shot += ["--media_cache_dir", data_args.media_cache_dir]
        run_arm(zero_shot)
        result = json.loads((output_dir / "zero_shot" / "zero_shot.json").read_text())
        rows.append({"readout": result["readout"], **result, "num_clips": result["num_clips"]})

    table = markdown_table(rows)
    (output_dir / "comparison.md").write_text(table)
    slim_rows = [{key: value for key, value in row.items() if key not in ("answers", "predictions")} for row in rows]
    (output_dir / "comparison.json").write_text(json.dumps(slim_rows, indent=2, default=float) + "\n")
    print(table)
    return 0


def strip_flag(argv: list[str], flag: str) -> list[str]:
    """argv without `flag` and its value (both `--flag value` and `--flag=value` forms)."""
    kept, skip_next = [], False
    for token in argv:
        if skip_next:
            skip_next = False
        elif token == flag or token == flag.replace("_", "-"):
            skip_next = True
        elif not token.startswith((flag + "=", flag.replace("_", "-") + "=")):
            kept.append(token)
    return kept
