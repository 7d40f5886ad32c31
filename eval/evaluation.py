"""`omni-regressor evaluate`: a saved regressor on one split of a dataset -> predictions, MMSA metrics and plots.

    omni-regressor evaluate --model runs/mosi/model --dataset_dir data/MOSI --split test --output_dir runs/mosi/eval
    torchrun --nproc_per_node 4 --no-python omni-regressor evaluate ...      # the same metrics, split over processes

Path: the model's saved settings -> the dataset checked with them (every clip decoded through the media cache) ->
the streamed scoring of `omni-regressor predict` (same code, same scores) -> `predictions.csv`, `metrics.json` and
three PNGs in `--output_dir`. `evaluate_model` is the Python API.
"""

import csv
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from omni_regressor.arguments import DatasetArguments, OmniArgumentParser, ProcessingArguments, at_least, default_num_workers
from omni_regressor.data import SPLITS, ClipProblem, DataProblemsError, read_dataset, scan_problems, write_skipped
from omni_regressor.data.records import write_csv_atomically
from omni_regressor.outputs import unwritable_reason

from .metrics import DATASETS, _canonical_dataset, metrics_for_score_range, msa_regression_metrics
from .plots import plot_attribution, plot_confusion_matrix, plot_error_histogram, plot_scatter

EVALUATION_SPLITS = (*SPLITS, "all")
PREDICTIONS_FILE = "predictions.csv"
PREDICTION_COLUMNS = ["video_id", "clip_id", "label", "prediction"]
METRICS_FILE = "metrics.json"
SKIPPED_FILE = "skipped_clips.csv"
PLOT_FILES = {"scatter": "scatter.png", "confusion": "confusion_acc7.png", "error_histogram": "error_histogram.png"}
ATTRIBUTION_PLOT, ATTRIBUTION_TABLE = "attribution.png", "attribution.md"


@dataclass
class EvaluateArguments(DatasetArguments):
    _argument_group_name = "evaluate"
    model: str = field(metadata={"help": "A saved regressor folder (the export `<run>/model` of `omni-regressor train`)."})
    output_dir: str = field(metadata={"help": "Where predictions.csv, metrics.json and the PNG plots are written."})
    split: str = field(default="test", metadata={"help": "Split to evaluate (all = every split).", "choices": list(EVALUATION_SPLITS)})
    batch_size: int = field(default=8, metadata={"help": "Clips per forward pass."})
    num_workers: int | None = field(default=None, metadata={"help": "Worker processes that decode and encode clips."})
    skip_bad_clips: bool = field(default=False, metadata={
        "help": "Evaluate the usable clips and list the others in <output_dir>/skipped_clips.csv."})
    metrics_dataset: str | None = field(default=None, metadata={
        "help": "Metric set (default: from the model's score_range: sims for -1,1, else mosi).", "choices": list(DATASETS)})
    overwrite: bool = field(default=False, metadata={"help": "Replace the outputs of an earlier evaluation in --output_dir."})
    explain: bool = field(default=False, metadata={
        "help": "Also score every clip without each of its modalities: how much each moves predictions, and the MAE "
        "without it (attribution.md, attribution.png, metrics.json)."})
    trust_remote_code: bool = field(default=False, metadata={
        "help": "Run the Python files of the --model folder (or Hub repo) instead of this package's classes; only for "
                "a folder whose code you trust."})

    def validate(self):
        super().validate()
        at_least(self, batch_size=1)
        if Path(self.output_dir).is_file():
            raise ValueError(f"--output_dir {self.output_dir} is a file.")
        if (reason := unwritable_reason(self.output_dir)) is not None:
            raise ValueError(f"--output_dir {self.output_dir}: {reason}")
        if (Path(self.output_dir) / METRICS_FILE).exists() and not self.overwrite:
            raise ValueError(f"--output_dir {self.output_dir} already holds an evaluation; pass --overwrite to replace it.")


def evaluate_model(
    model_dir,
    dataset_dir,
    split: str = "test",
    output_dir="eval",
    dataset_format: str = "mmsa",
    labels_csv=None,
    batch_size: int = 8,
    processing: ProcessingArguments | None = None,
    skip_bad_clips: bool = False,
    metrics_dataset: str | None = None,
    num_workers: int = 0,
    progress: bool = True,
    explain: bool = False,
    engine=None,
    trust_remote_code: bool = False,
) -> dict | None:
    """Scores every clip of `split` and writes the outputs; returns the `metrics.json` content (None on ranks > 0).

    Raises `DataProblemsError` when a clip of the split has a data problem (or cannot be scored) unless
    `skip_bad_clips`, in which case those clips are listed in `<output_dir>/skipped_clips.csv` and under "skipped".
    `engine` (`omni_regressor.ray_engine.EngineArguments`, engine "ray") scores on a Ray cluster instead of here.
    `explain` scores every clip again without each of its modalities: predictions.csv gets the leave-one-out scores,
    metrics.json an `attribution` table (mean and mean absolute effect, MAE without each modality), plus
    attribution.md and attribution.png.
    """
    from omni_regressor.model_loading import check_model_folder
    from omni_regressor.streaming import distributed

    if split not in EVALUATION_SPLITS:
        raise ValueError(f"`split` must be one of {list(EVALUATION_SPLITS)}, got {split!r}.")
    check_model_folder(model_dir)
    with distributed() as dist:
        return _evaluate(model_dir, dataset_dir, split, output_dir, dataset_format, labels_csv, batch_size,
                         processing or ProcessingArguments(), skip_bad_clips, metrics_dataset, num_workers, progress, dist, explain,
                         trust_remote_code, engine)


def _evaluate(model_dir, dataset_dir, split, output_dir, dataset_format, labels_csv, batch_size, processing,
              skip_bad_clips, metrics_dataset, num_workers, progress, dist, explain=False,
              trust_remote_code=False, engine=None) -> dict | None:
    from configuration_omni_regressor import OmniRegressorConfig
    from omni_regressor.inference import SentimentScorer
    from omni_regressor.outputs import model_fingerprint, provenance, write_json
    from omni_regressor.arguments import RunError
    from omni_regressor.settings import resolve_settings
    from omni_regressor.streaming import InputItem, default_device, gather_rows, shard, stream_scores, world

    output_dir = Path(output_dir).resolve()
    config = OmniRegressorConfig.from_pretrained(model_dir)
    settings, processor = resolve_settings(processing, model_dir, trust_remote_code)  # the scorer reuses both
    score_range = tuple(config.score_range)
    metrics_dataset = _canonical_dataset(metrics_dataset or metrics_for_score_range(score_range))
    rank, world_size = world()
    on_ray = engine is not None and engine.uses_ray
    if on_ray:
        from omni_regressor.ray_engine import RayScorer, check_ray_run

        check_ray_run(False, world_size)

    # 1. Data: the clips of `split` only, checked (decoded through the cache) with the settings the model decodes
    # with, before it loads.
    records, problems = read_dataset(dataset_dir, dataset_format, labels_csv=labels_csv, score_range=score_range)
    records, skipped = _split_records(records, problems, split)
    if not records and not skipped:
        raise RunError(f"{dataset_dir}: no clip has mode {split!r} (modes present must be among {list(SPLITS)}).")
    media_problems = scan_problems(records, settings.media_settings(), settings.modalities,
                                   media_cache=processing.media_cache(), num_workers=num_workers,
                                   progress=progress and rank == 0)
    unusable = {problem.clip_id for problem in media_problems}
    records, skipped = [record for record in records if record.clip_id not in unusable], skipped + media_problems
    if skipped and not skip_bad_clips:
        raise DataProblemsError(skipped, root=dataset_dir)

    # 2. Inference: the streamed path of `omni-regressor predict`, this rank's share of the clips; rank 0 gathers the
    # scores of every rank (through the process group: no shared file system needed) and writes the outputs.
    media_cache = processing.media_cache()  # the cache the data check just filled
    items = [InputItem(index, record.media_path, record.text) for index, record in enumerate(records)]
    if on_ray:  # decoded by Ray tasks, scored by Ray actors; the results come back here in input order
        scorer = RayScorer.from_pretrained(model_dir, engine, media_cache_dir=media_cache.cache_dir,
                                           processing=settings.to_dict())
        scores = scorer.stream(items, batch_size, allow_missing_modalities=False, explain=explain)
    else:  # the settings the data were checked with
        scorer = SentimentScorer.from_pretrained(model_dir, device=default_device(), media_cache_dir=media_cache.cache_dir,
                                                 processing=settings.to_dict(), trust_remote_code=trust_remote_code,
                                                 processor=processor)
        items = shard(items, rank, world_size)
        scores = stream_scores(scorer.model, scorer.encoder, items, batch_size, num_workers,
                               allow_missing_modalities=False, device=scorer.device, explain=explain)
    started = time.perf_counter()
    rows = []
    for item, result in tqdm(scores, total=len(items), desc=f"scoring {split}", unit="clip",
                             disable=not progress or rank != 0):
        extras = {key: value for key, value in result.extras.items() if key != "truncated"}  # leave-one-out scores
        rows.append({"index": item.index, "score": result.score, "error": result.error, "extras": extras})
    inference_seconds = time.perf_counter() - started
    rows = gather_rows(dist, rows)
    if rank != 0:
        return None
    results = {row["index"]: row for row in rows}
    unscored = [
        ClipProblem(record.clip_id, _unscored_reason(results[index]["error"]), f"{record.media_path}: {results[index]['error']}")
        for index, record in enumerate(records) if results[index]["error"] is not None
    ]
    if unscored and not skip_bad_clips:
        raise DataProblemsError(unscored, root=dataset_dir)
    skipped += unscored
    scored_indices = [index for index in range(len(records)) if results[index]["error"] is None]
    scored = [(records[index], results[index]["score"]) for index in scored_indices]
    if not scored:
        raise DataProblemsError(skipped, root=dataset_dir)

    # 3. Outputs.
    labels = [record.label for record, _ in scored]
    predictions = [score for _, score in scored]
    metrics = msa_regression_metrics(predictions, labels, metrics_dataset)
    title = f"{Path(model_dir).resolve().name if Path(model_dir).exists() else model_dir}, {split} split"
    title += f": MAE {_number(metrics['MAE'])}, Corr {_number(metrics['Corr'])}"
    extras = [results[index]["extras"] for index in scored_indices] if explain else None
    files = {"predictions": str(write_predictions(output_dir / PREDICTIONS_FILE, [record for record, _ in scored],
                                                  predictions, extras))}
    files["scatter"] = str(plot_scatter(labels, predictions, output_dir / PLOT_FILES["scatter"], score_range, title=title))
    files["confusion"] = str(
        plot_confusion_matrix(labels, predictions, output_dir / PLOT_FILES["confusion"], metrics_dataset, title=title)
    )
    files["error_histogram"] = str(plot_error_histogram(labels, predictions, output_dir / PLOT_FILES["error_histogram"], title=title))
    if skipped:
        files["skipped"] = str(write_skipped(skipped, output_dir / SKIPPED_FILE))
    attribution = None
    if explain:
        attribution = modality_attribution(settings.modalities, extras, labels, metrics_dataset)
        files["attribution"] = str(plot_attribution(
            {name: [extra[f"{name}_effect"] for extra in extras if f"{name}_effect" in extra] for name in attribution},
            output_dir / ATTRIBUTION_PLOT, title=title))
        files["attribution_table"] = str(write_attribution_table(attribution, output_dir / ATTRIBUTION_TABLE))
    files["metrics"] = str(output_dir / METRICS_FILE)
    report = {
        **metrics,
        "metrics_dataset": metrics_dataset,
        "num_clips": len(scored),
        "split": split,
        "model": str(Path(model_dir).resolve()) if Path(model_dir).exists() else str(model_dir),
        "provenance": provenance(model_dir, model_fingerprint(model_dir, getattr(config, "_commit_hash", None)),
                                 {**scorer.encoder.settings.to_dict(), "explain": explain}, PREDICTION_COLUMNS),
        "dataset_dir": str(Path(dataset_dir).resolve()),
        "modalities": list(settings.modalities),
        "processes": world_size,
        "ms_per_clip": round(1000 * inference_seconds * world_size / max(len(records), 1), 3),
        "skipped": [asdict(problem) for problem in skipped],
        **({"attribution": attribution} if attribution is not None else {}),
        "files": files,
    }
    write_json(output_dir / METRICS_FILE, report)
    return report


def _unscored_reason(error: str) -> str:
    """The problem kind of a clip that could not be scored (a non-finite score or audio is named as such)."""
    if "non-finite score" in error:
        return "non_finite_score"
    return "non_finite_audio" if "NaN or infinite" in error else "unreadable_file"


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


def write_predictions(path, records, predictions, extras=None) -> Path:
    """CSV with columns video_id, clip_id, label, prediction (MMSA's ids), plus the leave-one-out scores when `extras`
    (`--explain`); floats written with `repr` so they read back bit for bit. Written atomically."""
    extra_columns = sorted({key for extra in extras for key in extra}) if extras else []
    rows = [PREDICTION_COLUMNS + extra_columns]
    for position, (record, prediction) in enumerate(zip(records, predictions)):
        extra = extras[position] if extras else {}
        rows.append([record.video_id, record.segment_id, repr(float(record.label)), repr(float(prediction)),
                     *[repr(float(extra[key])) if key in extra else "" for key in extra_columns]])
    return write_csv_atomically(path, rows)


def modality_attribution(modalities, extras: list[dict], labels, metrics_dataset) -> dict:
    """Per modality, over the clips that have it with another: how far it moved predictions (mean and mean absolute
    effect, the score minus the score without it) and the MAE of the predictions made without it."""
    attribution = {}
    for name in modalities:
        kept = [(extra, label) for extra, label in zip(extras, labels) if f"{name}_effect" in extra]
        if not kept:
            continue
        effects = np.asarray([extra[f"{name}_effect"] for extra, _ in kept])
        without = np.asarray([extra[f"score_without_{name}"] for extra, _ in kept])
        attribution[name] = {
            "clips": len(kept),
            "mean_effect": float(effects.mean()),
            "mean_abs_effect": float(np.abs(effects).mean()),
            "MAE_without": msa_regression_metrics(without, [label for _, label in kept], metrics_dataset)["MAE"],
        }
    return attribution


def write_attribution_table(attribution: dict, path) -> Path:
    lines = ["| modality left out | clips | mean effect | mean abs effect | MAE without it |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {row['clips']} | {row['mean_effect']:+.4f} | {row['mean_abs_effect']:.4f} | {_number(row['MAE_without'])} |"
              for name, row in attribution.items()]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


def read_predictions(path) -> tuple[list[str], list[float], list[float]]:
    """`predictions.csv` -> ("video_id/clip_id" ids as strings, labels, predictions)."""
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    clip_ids = [f"{row['video_id']}/{row['clip_id']}" for row in rows]
    return clip_ids, [float(row["label"]) for row in rows], [float(row["prediction"]) for row in rows]


def format_summary(report: dict) -> str:
    accuracy_key = "Mult_acc_3" if report["metrics_dataset"] == "sims" else "Mult_acc_7"
    accuracy_name = "Acc-3" if accuracy_key == "Mult_acc_3" else "Acc-7"
    lines = [
        f"{report['split']} split: {report['num_clips']} clips ({'+'.join(report['modalities'])}), "
        f"{report['ms_per_clip']:.1f} ms/clip",
        f"MAE {_number(report['MAE'])}  Corr {_number(report['Corr'])}  {accuracy_name} {_number(report[accuracy_key])}",
    ]
    if report["skipped"]:
        lines.append(f"skipped {len(report['skipped'])} clip(s): {report['files']['skipped']}")
    output_dir = Path(report["files"]["metrics"]).parent
    lines.append(f"wrote {', '.join(Path(path).name for path in report['files'].values())} to {output_dir}")
    return "\n".join(lines)


def _number(value) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def main(argv=None) -> int:
    from omni_regressor.ray_engine import EngineArguments

    parser = OmniArgumentParser((EvaluateArguments, ProcessingArguments, EngineArguments), prog="omni-regressor evaluate")
    args, processing, engine = parser.parse(argv)
    report = evaluate_model(
        args.model, args.dataset_dir, split=args.split, output_dir=args.output_dir, dataset_format=args.dataset_format,
        labels_csv=args.labels_csv, batch_size=args.batch_size, processing=processing,
        skip_bad_clips=args.skip_bad_clips, metrics_dataset=args.metrics_dataset,
        num_workers=default_num_workers() if args.num_workers is None else args.num_workers, explain=args.explain,
        engine=engine,
        trust_remote_code=args.trust_remote_code,
    )
    if report is not None:
        print(format_summary(report))
    return 0
