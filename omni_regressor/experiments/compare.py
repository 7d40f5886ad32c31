"""`omni-regressor compare`: discriminative vs generative readout (zero-shot and fine-tuned), and the MLP head trained
alone on the frozen backbone's cached features (head-only), one table.

    omni-regressor compare --model_name_or_path Qwen/Qwen2.5-Omni-7B --dataset_dir MOSI --output_dir runs/compare

Every flag of `omni-regressor train` is passed on, unchanged, to both fine-tuned arms (backbone, data, modalities,
processing, quantisation, LoRA preset, seed, epochs, ...); the zero-shot arm gets the same model, data, processing
flags, score range, quantisation and evaluation batch size; the head-only arm (`omni-regressor probe
--train_head_epochs`) the same model, data, processing flags, quantisation, epochs, head width, head learning rate and
seed, on the final layer's last-token state, the paper's readout, frozen. Each arm runs in its own process so that its peak
memory is its own, and records the processing settings it used (`processing` in comparison.json).
"""

import json
import subprocess
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from omni_regressor.eval.metrics import PRIMARY_METRICS, SIMS_METRIC_KEYS

from ..arguments import OmniArgumentParser
from ..recipes.generative import DEFAULT_MAX_NEW_TOKENS
from ..training_arguments import training_parser

COST_COLUMNS = ["unparsable_rate", "truncated_rate", "out_of_range_rate", "ms_per_clip", "peak_memory_mb", "seconds_per_epoch"]


@dataclass
class CompareArguments:
    _argument_group_name = "compare"
    skip_zero_shot: bool = field(default=False, metadata={"help": "Leave out the zero-shot generative arm."})
    skip_generative_finetune: bool = field(default=False, metadata={"help": "Leave out the fine-tuned generative arm."})
    skip_head_only: bool = field(default=False, metadata={"help": "Leave out the head-only arm (frozen backbone)."})


def table_columns(rows: list[dict]) -> list[str]:
    """MMSA's MOSI/MOSEI keys, or its SIMS keys for a (-1, 1) dataset."""
    metric_keys = PRIMARY_METRICS if "Has0_acc_2" in rows[0] else SIMS_METRIC_KEYS
    return ["readout", *metric_keys, *COST_COLUMNS]


def run_arm(command: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "omni_regressor.cli", *command], stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"`omni-regressor {command[0]}` failed with exit status {result.returncode}.")


def row_from_training(summary: dict, readout: str, epochs: float | None = None) -> dict:
    """`seconds_per_epoch`: the run's training time (with its valid passes) over its epochs."""
    return {
        "readout": readout, **summary["test_metrics"], "peak_memory_mb": summary["peak_memory_mb"],
        "seconds_per_epoch": summary["train_seconds"] / epochs if epochs and "train_seconds" in summary else None,
        "num_clips": len(summary["test_predictions"]), "processing": summary["processing"],
        "score_range": summary["score_range"],
    }


def head_only_row(model_args, data_args, processing, training_args, output_dir: Path) -> dict:
    """The MLP head trained for the same epochs on cached frozen features of the final layer's last token."""
    command = [
        "probe", "--model", model_args.model_name_or_path, "--dataset_dir", data_args.dataset_dir,
        "--dataset_format", data_args.dataset_format, "--output_dir", str(output_dir), "--overwrite", "true",
        "--poolings", "last", "--layers", "-1", "--quantization", model_args.quantization,
        "--train_head_epochs", str(max(1, round(training_args.num_train_epochs))),
        "--head_hidden_size", str(model_args.head_hidden_size), "--head_learning_rate", str(model_args.head_learning_rate),
        "--seed", str(training_args.seed), "--batch_size", str(training_args.per_device_eval_batch_size),
        *flags_of(processing),
    ]
    if data_args.labels_csv:
        command += ["--labels_csv", data_args.labels_csv]
    if data_args.score_range:
        command.append("--score_range=" + data_args.score_range)
    run_arm(command)
    report = json.loads((output_dir / "probe.json").read_text())
    head = report["head_only"]
    return {
        "readout": "head-only (frozen backbone)", **head["test_metrics"], "ms_per_clip": report["ms_per_clip"],
        "peak_memory_mb": report["peak_memory_mb"], "seconds_per_epoch": head["seconds_per_epoch"],
        "num_clips": report["num_clips"]["test"], "processing": report["processing"],
        "score_range": report["score_range"],
    }


def format_value(value) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    return "" if value is None else str(value)


def markdown_table(rows: list[dict], columns=None) -> str:
    columns = columns or table_columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_value(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def flags_of(instance) -> list[str]:
    """A dataclass instance as command-line flags (fields left at None are left out)."""
    flags = []
    for item in fields(instance):
        value = getattr(instance, item.name)
        if value is not None:
            flags.append(f"--{item.name}={str(value).lower() if isinstance(value, bool) else value}")
    return flags


def strip_flag(argv: list[str], flag: str) -> list[str]:
    """argv without `flag` and its value."""
    kept, skip_next = [], False
    for token in argv:
        if skip_next:
            skip_next = False
        elif token == flag:
            skip_next = True
        elif not token.startswith(flag + "="):
            kept.append(token)
    return kept


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    compare_parser = OmniArgumentParser(CompareArguments, prog="omni-regressor compare", description=__doc__)
    compare_args, train_argv = compare_parser.parse(argv, allow_remaining=True)
    model_args, data_args, processing, training_args = training_parser("omni-regressor compare").parse(train_argv)
    output_dir = Path(training_args.output_dir)
    shared = strip_flag(strip_flag(train_argv, "--output_dir"), "--readout")

    rows = []
    run_arm(["train", *shared, "--readout", "discriminative", "--output_dir", str(output_dir / "discriminative")])
    summary = json.loads((output_dir / "discriminative" / "training_summary.json").read_text())
    rows.append(row_from_training(summary, "discriminative (fine-tuned)", training_args.num_train_epochs))
    if not compare_args.skip_head_only:
        rows.append(head_only_row(model_args, data_args, processing, training_args, output_dir / "head_only"))
    if not compare_args.skip_generative_finetune:
        run_arm(["train", *shared, "--readout", "generative", "--output_dir", str(output_dir / "generative")])
        summary = json.loads((output_dir / "generative" / "training_summary.json").read_text())
        rows.append(row_from_training(summary, "generative (fine-tuned)", training_args.num_train_epochs))
    if not compare_args.skip_zero_shot:
        zero_shot = [
            "zero-shot",
            "--model_name_or_path", model_args.model_name_or_path,
            "--dataset_dir", data_args.dataset_dir,
            "--dataset_format", data_args.dataset_format,
            "--quantization", model_args.quantization,
            "--max_new_tokens", str(model_args.max_new_tokens or DEFAULT_MAX_NEW_TOKENS),
            "--batch_size", str(training_args.per_device_eval_batch_size),
            "--score_range=" + ",".join(f"{value:g}" for value in summary["score_range"]),  # "=": it may start with "-"
            "--output_dir", str(output_dir / "zero_shot"),
            *flags_of(processing),
        ]
        if data_args.labels_csv:
            zero_shot += ["--labels_csv", data_args.labels_csv]
        run_arm(zero_shot)
        result = json.loads((output_dir / "zero_shot" / "zero_shot.json").read_text())
        rows.append({key: value for key, value in result.items() if key not in ("answers", "predictions", "truncated", "clip_ids")})

    table = markdown_table(rows)
    (output_dir / "comparison.md").write_text(table)
    (output_dir / "comparison.json").write_text(json.dumps(rows, indent=2, default=float) + "\n")
    print(table)
    return 0
