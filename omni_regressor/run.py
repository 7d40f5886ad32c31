"""The training run: data check -> model -> Trainer -> test pass -> export, for any readout and backbone.

    run_training(model_args, data_args, processing_args, training_args)
        1. data: every clip decoded and checked through the media cache before any model loads
        2. model: the readout's recipe loads the backbone (4-bit + LoRA, or full fine-tuning)
        3. Trainer: the valid split picks the best epoch (the recipe's metric)
        4. test pass, and the mean predictor as the floor any model must beat
        5. export (the recipe's), model card, optional upload; `training_summary.json`

`train_with_trainer.py` and `omni-regressor train` parse the arguments and call this; the experiment drivers
(compare, sweep) call it per arm.
"""

import logging
from pathlib import Path

import numpy as np
import torch
from transformers import EarlyStoppingCallback, set_seed

from omni_regressor.eval.metrics import metrics_for_score_range, msa_regression_metrics
from processing_omni_regressor import ClipEncoder

from .arguments import RunError, parse_score_range  # noqa: F401 - RunError: its public home was here
from .backbones import backbone_of, num_decoder_layers
from .data import DataProblemsError, check_dataset, infer_score_range, records_to_dataset_dict, usable_records, write_skipped
from .export import push_run
from .outputs import write_json
from .metering import PeakMemoryCallback, Stopwatch, peak_memory_mb
from .parameters import count_parameters
from .recipes import RunContext, get_recipe
from .settings import resolve_settings, saved_settings  # noqa: F401 - saved_settings: its public home was here
from .results import append_results
from .trainer import OmniRegressorTrainer, label_statistics

logger = logging.getLogger("omni_regressor.run")
RUN_OUTPUTS = ("model", "adapter", "training_summary.json")


def check_output_dir(training_args) -> None:
    """Nothing is overwritten without --overwrite; an interrupted run is continued with --resume_from_checkpoint."""
    from .outputs import unwritable_reason

    output_dir = Path(training_args.output_dir)
    if output_dir.is_file():
        raise RunError(f"--output_dir {output_dir} is a file.")
    reason = unwritable_reason(output_dir)
    if reason is not None:
        raise RunError(f"--output_dir {output_dir}: {reason}")
    if training_args.overwrite or training_args.resume_from_checkpoint or not output_dir.exists():
        return
    existing = [name for name in RUN_OUTPUTS if (output_dir / name).exists()]
    if existing:
        raise RunError(f"--output_dir {output_dir} already holds a run ({', '.join(existing)}); pass --overwrite to replace it.")
    if any(output_dir.glob("checkpoint-*")):
        raise RunError(
            f"--output_dir {output_dir} holds checkpoints of an interrupted run: pass --resume_from_checkpoint last "
            "to continue it, or --overwrite to start again."
        )


def resolve_checkpoint(training_args) -> str | None:
    """`--resume_from_checkpoint last` (or `true`) -> the newest complete checkpoint in `--output_dir`.

    A checkpoint folder without `trainer_state.json` (a kill during save) is skipped, and named in the log.
    """
    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() not in ("last", "true"):
        return value
    output_dir = Path(training_args.output_dir)
    candidates = sorted(
        (path for path in output_dir.glob("checkpoint-*") if path.is_dir() and path.name.split("-")[-1].isdigit()),
        key=lambda path: int(path.name.split("-")[-1]),
        reverse=True,
    )
    for checkpoint in candidates:
        if (checkpoint / "trainer_state.json").is_file():
            return str(checkpoint)
        logger.warning("Skipping %s: incomplete (no trainer_state.json; interrupted while saving).", checkpoint)
    raise RunError(f"--resume_from_checkpoint {value}: no complete checkpoint-* folder in {output_dir}.")


def prepare_data(data_args, settings, media_cache, training_args, output_dir):
    """Reads and checks the dataset -> (dataset splits, problems, score range)."""
    score_range = parse_score_range(data_args.score_range)
    records, problems = check_dataset(
        data_args.dataset_dir,
        dataset_format=data_args.dataset_format,
        **data_args.dataset_options(),
        media_settings=settings.media_settings(),
        modalities=settings.modalities,
        score_range=score_range,
        media_cache=media_cache,
        num_workers=training_args.dataloader_num_workers,
        progress=not training_args.disable_tqdm,
    )
    if problems and not data_args.skip_bad_clips:
        raise DataProblemsError(problems, root=data_args.dataset_dir)
    if problems:
        write_skipped(problems, output_dir / "skipped_clips.csv")
        logger.warning("Skipping %d clips with problems, listed in %s", len(problems), output_dir / "skipped_clips.csv")
        records = usable_records(records, problems)
    splits = records_to_dataset_dict(records)
    if "train" not in splits:
        raise RunError(f"{data_args.dataset_dir}: no usable clip has mode 'train'.")
    if "valid" not in splits and training_args.eval_strategy != "no":
        raise RunError(
            f"{data_args.dataset_dir}: no usable clip has mode 'valid', which picks the best epoch. Add valid rows, or "
            "pass --eval_strategy no --load_best_model_at_end false."
        )
    return splits, problems, score_range or infer_score_range(records)


def run_training(model_args, data_args, processing_args, training_args, callbacks=()) -> dict:
    """Runs the whole path and returns the summary also written to `<output_dir>/training_summary.json`."""
    recipe = get_recipe(model_args.readout)
    backbone = backbone_of(model_args.model_name_or_path)
    if model_args.readout_layer > (layers := num_decoder_layers(model_args.model_name_or_path)):
        raise RunError(f"--readout_layer {model_args.readout_layer}: {model_args.model_name_or_path} has {layers} "
                       f"decoder layers; use -1 (the final layer) or 0..{layers}.")
    check_output_dir(training_args)
    checkpoint = resolve_checkpoint(training_args)
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)
    training_args.label_names = training_args.label_names or ["labels"]
    training_args.metric_for_best_model = training_args.metric_for_best_model or recipe.metric_for_best_model
    if not torch.cuda.is_available():
        training_args.dataloader_pin_memory = False
    # The Hub gets the exported folder at the end, not the Trainer's checkpoints.
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False

    # 1. Data: every clip decoded and checked before any compute; nothing dropped silently.
    settings, processor = resolve_settings(processing_args, model_args.model_name_or_path)
    media_cache = processing_args.media_cache()
    splits, problems, score_range = prepare_data(data_args, settings, media_cache, training_args, output_dir)
    label_mean, label_std = label_statistics(splits["train"]["label"])
    context = RunContext(
        model_args=model_args, data_args=data_args, training_args=training_args, backbone=backbone, settings=settings,
        score_range=score_range, label_mean=label_mean, label_std=label_std,
        metrics_dataset=metrics_for_score_range(score_range), output_dir=output_dir,
    )

    # 2. Model, and the one processing path as collator.
    model = recipe.load_model(context)
    parameters = count_parameters(model)
    logger.info("Parameters: %s", parameters)
    encoder = ClipEncoder(processor, settings, score_range=score_range, media_cache=media_cache)

    # 3. Train; the valid split picks the best epoch.
    callbacks = [PeakMemoryCallback(), *callbacks]
    if model_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=model_args.early_stopping_patience))
    trainer = OmniRegressorTrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=splits.get("valid"),
        data_collator=recipe.collator(encoder),
        compute_metrics=recipe.compute_metrics(context),
        callbacks=callbacks,
        head_learning_rate=recipe.head_learning_rate(context),
    )
    with Stopwatch() as train_clock:
        train_result = trainer.train(resume_from_checkpoint=checkpoint)
    summary = context.summary
    summary.update(
        backbone=backbone.name,
        readout=recipe.name,
        parameters=parameters,
        train_seconds=round(train_clock.seconds, 2),
        train_samples_per_second=train_result.metrics.get("train_samples_per_second"),
        stages=trainer.stage_clock.report(),
        label_mean=label_mean,
        label_std=label_std,
        score_range=list(score_range),
        modalities=list(settings.modalities),
        processing=settings.to_dict(),
        skipped_clips=len(problems),
        best_checkpoint=trainer.state.best_model_checkpoint,
        best_epoch=_best_epoch(trainer),
        log_history=trainer.state.log_history,
    )

    # 4. Test metrics, and the mean predictor as the floor any model must beat.
    if "test" in splits:
        test_rows = splits["test"]
        result = recipe.test_pass(trainer, encoder, test_rows, context)
        summary["test_metrics"] = result.metrics
        summary["test_predictions"] = result.predictions
        summary["test_clip_ids"] = list(test_rows["clip_id"])
        summary.update({f"test_{name}": values for name, values in result.extras.items()})
        test_labels = np.asarray(test_rows["label"], dtype=np.float64)
        mean_predictor = msa_regression_metrics(np.full_like(test_labels, label_mean), test_labels, context.metrics_dataset)
        summary["mean_predictor_test_MAE"] = mean_predictor["MAE"]
    summary["peak_memory_mb"] = peak_memory_mb()
    summary["media_cache"] = {
        "decode_calls": media_cache.decode_calls,
        "hits": media_cache.hits,
        "location": media_cache.describe(),
    }
    logger.info("Decoded %d clips this run; %s", media_cache.decode_calls, media_cache.describe())

    # 5. Export (rank 0), then the upload of the exported folder.
    if trainer.is_world_process_zero():
        export_dir = recipe.export(trainer, encoder, context)
        summary["export_dir"] = str(export_dir)
        if "test_metrics" in summary and str(training_args.results_dir or "").lower() != "none":
            results_dir = training_args.results_dir or output_dir.resolve().parent / "results"
            summary["results_csv"] = str(append_results(
                results_dir, data_args.dataset_name or Path(data_args.dataset_dir).resolve().name,
                model_args.model_name_or_path, backbone.name, recipe.name, settings.modalities,
                [training_args.seed], [summary["test_metrics"]], output_dir,
            ))
        write_json(output_dir / "training_summary.json", summary)
        if push_to_hub:  # model/ to --hub_model_id, adapter/ to <hub_model_id>-adapter
            commits = push_run(output_dir, export_dir, training_args.hub_model_id, training_args.hub_token,
                               training_args.hub_private_repo)
            summary["hub_commit"] = commits.get("model") or commits.get("adapter")
            summary["hub_commits"] = commits
    trainer.accelerator.wait_for_everyone()
    return summary


def _best_epoch(trainer) -> float | None:
    best = trainer.state.best_model_checkpoint
    if best is None:
        return None
    step = int(Path(best).name.split("-")[-1])
    epochs = [entry["epoch"] for entry in trainer.state.log_history if entry.get("step") == step and "epoch" in entry]
    return epochs[-1] if epochs else None


def main(argv=None) -> int:
    """`omni-regressor train`: the flags of `train_with_trainer.py`; prints the summary (without per-clip lists)."""
    import json

    from .training_arguments import parse_training_arguments

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    summary = run_training(*parse_training_arguments(argv))
    print(json.dumps({key: value for key, value in summary.items() if not key.startswith("test_") or key == "test_metrics"},
                     default=float))
    return 0
