"""`omni-regressor evaluate`: a saved regressor on one split of a dataset -> predictions, MMSA metrics and plots.

    omni-regressor evaluate --model runs/mosi/model --dataset_dir data/MOSI --split test --output_dir runs/mosi/eval

Path: the model's config (processing settings, score range) -> `check_dataset` with those settings -> the
`SentimentScorer` of prediction (same `ClipEncoder` as training) -> `predictions.csv`, `metrics.json` and three PNGs
in `--output_dir`. `evaluate_model` is the Python API, shared with the comparison and sweep commands.
"""

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from configuration_omni_regressor import OmniRegressorConfig
from omni_regressor.data import DATASET_FORMATS, SPLITS, ClipProblem, DataProblemsError, check_dataset, write_skipped
from omni_regressor.inference import SentimentScorer
from omni_regressor.media import default_cache_dir
from omni_regressor.processing import ProcessingSettings

from .metrics import DATASETS, _canonical_dataset, metrics_for_score_range, msa_regression_metrics
from .plots import plot_confusion_matrix, plot_error_histogram, plot_scatter

EVALUATION_SPLITS = (*SPLITS, "all")
PREDICTIONS_FILE = "predictions.csv"
METRICS_FILE = "metrics.json"
SKIPPED_FILE = "skipped_clips.csv"
PLOT_FILES = {"scatter": "scatter.png", "confusion": "confusion_acc7.png", "error_histogram": "error_histogram.png"}


@dataclass
class EvaluateArguments:
    model: str = field(metadata={"help": "A saved regressor folder (the export `<run>/model` of `omni-regressor train`)."})
    dataset_dir: str = field(metadata={"help": "Dataset root: MMSA layout (label.csv + Raw/) or CMU-SDK raw layout."})
    output_dir: str = field(metadata={"help": "Where predictions.csv, metrics.json and the PNG plots are written."})
    dataset_format: str = field(default="mmsa", metadata={"help": "Dataset layout.", "choices": list(DATASET_FORMATS)})
    labels_csv: str | None = field(default=None, metadata={"help": "Labels CSV for --dataset_format cmu-sdk."})
    split: str = field(default="test", metadata={"help": "Split to evaluate (all = every split).", "choices": list(EVALUATION_SPLITS)})
    batch_size: int = field(default=8, metadata={"help": "Clips per forward pass."})
    modalities: str | None = field(
        default=None, metadata={"help": "Subset of text,audio,video (also T+A+V); None = the model's own, from its config."}
    )
    media_cache_dir: str | None = field(
        default=None, metadata={"help": "Decoded-media cache (default: $OMNI_REGRESSOR_CACHE or ~/.cache/omni_regressor/media)."}
    )
    skip_bad_clips: bool = field(
        default=False, metadata={"help": "Evaluate the usable clips and write the others to <output_dir>/skipped_clips.csv."}
    )
    metrics_dataset: str | None = field(
        default=None, metadata={"help": "Metric set; None = from the model's score_range (sims for -1,1, else mosi).", "choices": list(DATASETS)}
    )


def evaluate_model(
    model_dir,
    dataset_dir,
    split: str = "test",
    output_dir="eval",
    dataset_format: str = "mmsa",
    labels_csv=None,
    batch_size: int = 8,
    modalities=None,
    media_cache_dir=None,
    skip_bad_clips: bool = False,
    metrics_dataset: str | None = None,
    progress: bool = True,
) -> dict:
    """Scores every clip of `split` and writes the outputs; returns the `metrics.json` content.

    Raises `DataProblemsError` when a clip of the split has a data problem (or cannot be scored) unless
    `skip_bad_clips`, in which case those clips are listed in `<output_dir>/skipped_clips.csv` and under "skipped".
    """
    if split not in EVALUATION_SPLITS:
        raise ValueError(f"`split` must be one of {list(EVALUATION_SPLITS)}, got {split!r}.")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    output_dir = Path(output_dir).resolve()
    config = OmniRegressorConfig.from_pretrained(model_dir)
    settings = ProcessingSettings.from_config(config, modalities or None)
    score_range = tuple(config.score_range)
    metrics_dataset = _canonical_dataset(metrics_dataset or metrics_for_score_range(score_range))

    # 1. Data, checked with the settings the model decodes with, before the model is loaded.
    records, problems = check_dataset(
        dataset_dir,
        dataset_format=dataset_format,
        labels_csv=labels_csv,
        settings=settings.media_settings(),
        modalities=settings.modalities,
        score_range=score_range,
    )
    records, skipped = _split_records(records, problems, split)
    if skipped and not skip_bad_clips:
        raise DataProblemsError(skipped, root=dataset_dir)
    if not records and not skipped:
        raise ValueError(f"{dataset_dir}: no clip has mode {split!r} (modes present must be among {list(SPLITS)}).")

    # 2. Inference through the prediction path; a clip that cannot be scored is named, never dropped silently.
    scorer = SentimentScorer.from_pretrained(
        model_dir, modalities=settings.modalities, media_cache_dir=media_cache_dir or default_cache_dir()
    )
    started = time.perf_counter()
    results = scorer.score_clips(
        [record.media_path for record in records],
        [record.text for record in records],
        batch_size=batch_size,
        allow_missing_modalities=False,
        progress=progress,
    )
    inference_seconds = time.perf_counter() - started
    unscored = [
        ClipProblem(record.clip_id, "unreadable_file", f"{record.media_path}: {result.error}")
        for record, result in zip(records, results)
        if result.error is not None
    ]
    if unscored and not skip_bad_clips:
        raise DataProblemsError(unscored, root=dataset_dir)
    skipped += unscored
    scored = [(record, result.score) for record, result in zip(records, results) if result.error is None]
    if not scored:
        raise DataProblemsError(skipped, root=dataset_dir)

    # 3. Outputs.
    clip_ids = [record.clip_id for record, _ in scored]
    labels = [record.label for record, _ in scored]
    predictions = [score for _, score in scored]
    metrics = msa_regression_metrics(predictions, labels, metrics_dataset)
    files = {"predictions": str(write_predictions(output_dir / PREDICTIONS_FILE, clip_ids, labels, predictions))}
    files["scatter"] = str(plot_scatter(labels, predictions, output_dir / PLOT_FILES["scatter"], score_range))
    files["confusion"] = str(
        plot_confusion_matrix(labels, predictions, output_dir / PLOT_FILES["confusion"], metrics_dataset)
    )
    files["error_histogram"] = str(
        plot_error_histogram(labels, predictions, output_dir / PLOT_FILES["error_histogram"])
    )
    if skipped:
        files["skipped"] = str(write_skipped(skipped, output_dir / SKIPPED_FILE))
    files["metrics"] = str(output_dir / METRICS_FILE)
    report = {
        **metrics,
        "metrics_dataset": metrics_dataset,
        "num_clips": len(scored),
        "split": split,
        "model": str(Path(model_dir).resolve()),
        "dataset_dir": str(Path(dataset_dir).resolve()),
        "modalities": list(settings.modalities),
        "ms_per_clip": round(1000 * inference_seconds / len(records), 3),
        "skipped": [asdict(problem) for problem in skipped],
        "files": files,
    }
    (output_dir / METRICS_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _split_records(records, problems, split):
    """-> (usable records of `split`, problems that concern `split`).

    A problem whose row gave no record (bad label, unknown mode, duplicate id, unreadable label file) cannot be tied
    to a split, so it counts for every split.
    """
    split_of = {record.clip_id: record.split for record in records}
    in_split = [record for record in records if split in ("all", record.split)]
    relevant = [problem for problem in problems if split in ("all", split_of.get(problem.clip_id, split))]
    bad_ids = {problem.clip_id for problem in relevant}
    return [record for record in in_split if record.clip_id not in bad_ids], relevant


def write_predictions(path, clip_ids, labels, predictions) -> Path:
    """CSV with columns clip_id, label, prediction; floats written with `repr` so they read back bit for bit."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["clip_id", "label", "prediction"])
        for clip_id, label, prediction in zip(clip_ids, labels, predictions):
            writer.writerow([clip_id, repr(float(label)), repr(float(prediction))])
    return path


def read_predictions(path) -> tuple[list[str], list[float], list[float]]:
    """`predictions.csv` -> (clip ids as strings, labels, predictions)."""
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    clip_ids = [row["clip_id"] for row in rows]
    return clip_ids, [float(row["label"]) for row in rows], [float(row["prediction"]) for row in rows]


def format_summary(report: dict) -> str:
    accuracy_key = "Mult_acc_3" if report["metrics_dataset"] == "sims" else "Mult_acc_7"
    accuracy_name = "Acc-3" if accuracy_key == "Mult_acc_3" else "Acc-7"
    lines = [
        f"{report['split']} split: {report['num_clips']} clips ({'+'.join(report['modalities'])}), "
        f"{report['ms_per_clip']:.1f} ms/clip",
        f"MAE {_number(report['MAE'])}  Corr {_number(report['Corr'])}  "
        f"{accuracy_name} {_number(report[accuracy_key])}",
    ]
    if report["skipped"]:
        lines.append(f"skipped {len(report['skipped'])} clip(s): {report['files']['skipped']}")
    output_dir = Path(report["files"]["metrics"]).parent
    lines.append(f"wrote {', '.join(Path(path).name for path in report['files'].values())} to {output_dir}")
    return "\n".join(lines)


def _number(value) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def main(argv=None) -> int:
    (args,) = HfArgumentParser(EvaluateArguments).parse_args_into_dataclasses(argv)
    report = evaluate_model(
        args.model,
        args.dataset_dir,
        split=args.split,
        output_dir=args.output_dir,
        dataset_format=args.dataset_format,
        labels_csv=args.labels_csv,
        batch_size=args.batch_size,
        modalities=args.modalities,
        media_cache_dir=args.media_cache_dir,
        skip_bad_clips=args.skip_bad_clips,
        metrics_dataset=args.metrics_dataset,
    )
    print(format_summary(report))
    return 0
