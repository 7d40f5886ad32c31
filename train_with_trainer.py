"""Fine-tune `Qwen2_5OmniForSentimentRegression` with QLoRA and the HF Trainer, then export a Hub-ready folder.

    python train_with_trainer.py --model_name_or_path Qwen/Qwen2.5-Omni-7B --dataset_dir MOSI --output_dir runs/mosi
    python train_with_trainer.py config.yaml          # the same flags from a JSON or YAML file
    torchrun --nproc_per_node 2 train_with_trainer.py ...   # DDP, one quantised copy per rank

Path: arguments -> dataset check -> model (4-bit + LoRA) -> Trainer (valid MAE picks the best epoch) -> test metrics
-> adapter + merged export + model card in `<output_dir>/model`.
"""

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import EarlyStoppingCallback, HfArgumentParser, Qwen2_5OmniProcessor, TrainingArguments, set_seed
from transformers.trainer_utils import IntervalStrategy, SaveStrategy, get_last_checkpoint

from eval.metrics import make_compute_metrics, metrics_for_score_range, msa_regression_metrics
from eval.generative_readout import evaluate_generative
from omni_regressor.architectures import LORA_PRESETS, count_parameters
from omni_regressor.data import (
    DataProblemsError,
    check_dataset,
    infer_score_range,
    records_to_dataset_dict,
    usable_records,
    write_skipped,
)
from omni_regressor.media import MediaCache, default_cache_dir
from omni_regressor.generative import GenerativeCollator, load_thinker_for_training, merged_thinker_export
from omni_regressor.model_card import write_model_card
from omni_regressor.pipeline import register_pipeline
from omni_regressor.processing import ClipEncoder, ProcessingSettings, parse_modalities
from omni_regressor.training import (
    BatchTimer,
    OmniRegressorTrainer,
    PeakMemoryCallback,
    Stopwatch,
    label_statistics,
    load_regressor_for_training,
    merged_export,
    peak_memory_bytes,
    push_export,
    save_adapter_export,
    write_json,
)

logger = logging.getLogger("omni_regressor.train")
READOUTS = ("discriminative", "generative")


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        metadata={"help": "An original Qwen2.5-Omni checkpoint (Hub id or folder) or a saved regressor folder."}
    )
    readout: str = field(default="discriminative", metadata={"help": "discriminative (regression head) or generative (score written as text)."})
    quantization: str = field(default="4bit", metadata={"help": "4bit (NF4, double quant, bf16 compute; towers and head unquantised) or none."})
    lora_preset: str = field(default="paper", metadata={"help": f"One of {LORA_PRESETS}; none = full fine-tuning."})
    lora_r: int | None = field(default=None, metadata={"help": "LoRA rank (preset: 32)."})
    lora_alpha: int | None = field(default=None, metadata={"help": "LoRA alpha (preset: 32)."})
    lora_dropout: float | None = field(default=None, metadata={"help": "LoRA dropout (preset: 0.1)."})
    lora_target_modules: str | None = field(default=None, metadata={"help": "Comma-separated module names, or one regex, replacing the preset's."})
    head_hidden_size: int = field(default=256, metadata={"help": "Hidden width of the regression head."})
    head_dropout: float = field(default=0.2, metadata={"help": "Dropout inside the regression head."})
    loss_type: str = field(default="l1", metadata={"help": "l1, mse or huber, on normalised labels."})
    head_learning_rate: float = field(default=1e-3, metadata={"help": "Learning rate of the head (LoRA uses --learning_rate)."})
    save_adapter_only: bool = field(default=False, metadata={"help": "Write only the adapter + head (and a config naming the base), no merged model."})
    early_stopping_patience: int | None = field(default=None, metadata={"help": "Stop after this many evaluations without a better valid MAE."})


@dataclass
class DataArguments:
    dataset_dir: str = field(metadata={"help": "Dataset root: MMSA layout (label.csv + Raw/) or CMU-SDK raw layout."})
    dataset_format: str = field(default="mmsa", metadata={"help": "mmsa or cmu-sdk."})
    labels_csv: str | None = field(default=None, metadata={"help": "Labels CSV for --dataset_format cmu-sdk."})
    modalities: str = field(default="text,audio,video", metadata={"help": "Any non-empty subset of text,audio,video (also T+A+V)."})
    score_range: str | None = field(default=None, metadata={"help": "Label scale as 'low,high' (default: -1,1 for CH-SIMS-like labels, else -3,3)."})
    fps: float = field(default=2.0, metadata={"help": "Frames sampled per second of clip."})
    max_frames: int = field(default=16, metadata={"help": "At most this many frames per clip."})
    min_pixels: int = field(default=28 * 28 * 4, metadata={"help": "Lower bound of frame area after resizing."})
    max_pixels: int = field(default=28 * 28 * 64, metadata={"help": "Upper bound of frame area after resizing."})
    max_audio_seconds: float = field(default=30.0, metadata={"help": "Longer clips are cut to this window (audio and frames)."})
    media_cache_dir: str | None = field(default=None, metadata={"help": "Decoded-media cache (default: $OMNI_REGRESSOR_CACHE or ~/.cache/omni_regressor/media)."})
    skip_bad_clips: bool = field(default=False, metadata={"help": "Train on the usable clips and write the skipped ones to <output_dir>/skipped_clips.csv."})


@dataclass
class OmniTrainingArguments(TrainingArguments):
    learning_rate: float = field(default=2e-4, metadata={"help": "Learning rate of the LoRA weights."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Training epochs."})
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Batch size per device for training."})
    per_device_eval_batch_size: int = field(default=8, metadata={"help": "Batch size per device for evaluation."})
    eval_strategy: IntervalStrategy | str = field(default="epoch", metadata={"help": "When to evaluate on the valid split."})
    save_strategy: SaveStrategy | str = field(default="epoch", metadata={"help": "When to save checkpoints."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept (the best is always kept)."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Restore the epoch with the best valid MAE."})
    metric_for_best_model: str | None = field(default="MAE", metadata={"help": "Metric that picks the best checkpoint."})
    greater_is_better: bool | None = field(default=False, metadata={"help": "Lower MAE is better."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Kept False: the collator reads text and media paths."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})


    def __post_init__(self):
        # Activation checkpointing inside the Thinker is on unless switched off with either the new flag or its
        # deprecated alias `--gradient_checkpointing`.
        if self.activation_checkpointing is None and self.gradient_checkpointing is None:
            self.activation_checkpointing = True
        super().__post_init__()


def parse_arguments(argv=None):
    parser = HfArgumentParser((ModelArguments, DataArguments, OmniTrainingArguments))
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        return parser.parse_yaml_file(argv[0])
    return parser.parse_args_into_dataclasses(argv)


def parse_score_range(value: str | None):
    if value is None:
        return None
    low, high = (float(part) for part in value.split(","))
    return (low, high)


def main(argv=None, callbacks=()) -> dict:
    """Runs the whole path; `callbacks` are extra `TrainerCallback`s (tests use one to interrupt a run)."""
    model_args, data_args, training_args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    training_args.label_names = training_args.label_names or ["labels"]
    if model_args.readout not in READOUTS:
        raise ValueError(f"--readout must be one of {READOUTS}, got {model_args.readout!r}.")
    if model_args.lora_preset == "none" and model_args.quantization != "none":
        raise ValueError("--lora_preset none (full fine-tuning) needs --quantization none: 4-bit weights do not train.")
    if training_args.push_to_hub and not training_args.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id (the Hub repository to create or update).")
    if not torch.cuda.is_available():
        training_args.dataloader_pin_memory = False
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)
    settings = ProcessingSettings(
        modalities=parse_modalities(data_args.modalities),
        fps=data_args.fps,
        max_frames=data_args.max_frames,
        min_pixels=data_args.min_pixels,
        max_pixels=data_args.max_pixels,
        max_audio_seconds=data_args.max_audio_seconds,
    )

    # 1. Data: every clip checked before any compute; nothing dropped silently.
    records, problems = check_dataset(
        data_args.dataset_dir,
        dataset_format=data_args.dataset_format,
        labels_csv=data_args.labels_csv,
        settings=settings.media_settings(),
        modalities=settings.modalities,
        score_range=parse_score_range(data_args.score_range),
    )
    if problems and not data_args.skip_bad_clips:
        raise DataProblemsError(problems)
    if problems:
        write_skipped(problems, output_dir / "skipped_clips.csv")
        logger.warning("Skipping %d clips with problems, listed in %s", len(problems), output_dir / "skipped_clips.csv")
        records = usable_records(records, problems)
    splits = records_to_dataset_dict(records)
    if "train" not in splits:
        raise ValueError(f"{data_args.dataset_dir}: no usable clip has mode 'train'.")
    score_range = parse_score_range(data_args.score_range) or infer_score_range(records)
    label_mean, label_std = label_statistics(splits["train"]["label"])

    # 2. Model: 4-bit base + LoRA + fully trained head, normalisation and processing settings in its config.
    lora_overrides = {
        "r": model_args.lora_r,
        "alpha": model_args.lora_alpha,
        "dropout": model_args.lora_dropout,
        "target_modules": parse_target_modules(model_args.lora_target_modules),
    }
    generative = model_args.readout == "generative"
    if generative:
        # The baseline: same backbone, quantisation, LoRA preset, data and seed; the LM head writes the score.
        model = load_thinker_for_training(
            model_args.model_name_or_path,
            quantization=model_args.quantization,
            lora_preset=model_args.lora_preset,
            lora_overrides=lora_overrides,
            gradient_checkpointing=training_args.activation_checkpointing,
        )
    else:
        model = load_regressor_for_training(
            model_args.model_name_or_path,
            quantization=model_args.quantization,
            lora_preset=model_args.lora_preset,
            lora_overrides=lora_overrides,
            gradient_checkpointing=training_args.activation_checkpointing,
            head_hidden_size=model_args.head_hidden_size,
            head_dropout=model_args.head_dropout,
            loss_type=model_args.loss_type,
            label_mean=label_mean,
            label_std=label_std,
            score_range=score_range,
            processing=settings.to_dict(),
        )
    parameters = count_parameters(model)
    logger.info("Parameters: %s", parameters)
    encoder = ClipEncoder(
        Qwen2_5OmniProcessor.from_pretrained(model_args.model_name_or_path),
        settings,
        score_range=score_range,
        media_cache=MediaCache(data_args.media_cache_dir or default_cache_dir()),
    )
    metrics_dataset = metrics_for_score_range(score_range)
    callbacks = [PeakMemoryCallback(), *callbacks]
    if model_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=model_args.early_stopping_patience))

    # The Hub gets the exported folder at the end, not the Trainer's checkpoints (see step 5).
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False
    if generative and training_args.metric_for_best_model == "MAE":
        # During training the generative readout is evaluated by its answer-token loss; its scores are parsed
        # from generated text on the test split.
        training_args.metric_for_best_model = "loss"

    # 3. Train; the valid split picks the best epoch.
    trainer = OmniRegressorTrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=splits.get("valid"),
        data_collator=GenerativeCollator(encoder) if generative else encoder,
        compute_metrics=None if generative else make_compute_metrics(metrics_dataset),
        callbacks=callbacks,
        head_learning_rate=None if generative else model_args.head_learning_rate,
    )
    with Stopwatch() as train_clock:
        train_result = trainer.train(resume_from_checkpoint=resolve_checkpoint(training_args))
    summary = {
        "parameters": parameters,
        "train_seconds": round(train_clock.seconds, 2),
        "train_samples_per_second": train_result.metrics.get("train_samples_per_second"),
        "label_mean": label_mean,
        "label_std": label_std,
        "score_range": list(score_range),
        "modalities": list(settings.modalities),
        "readout": model_args.readout,
        "skipped_clips": len(problems),
        "log_history": trainer.state.log_history,
    }

    # 4. Test metrics, and the mean predictor as the floor any model must beat.
    if "test" in splits:
        test_labels = np.asarray(splits["test"]["label"], dtype=np.float64)
        if generative:
            result = evaluate_generative(
                trainer.model, encoder, splits["test"], metrics_dataset, batch_size=training_args.per_device_eval_batch_size
            )
            summary["test_predictions"], summary["test_answers"] = result.pop("predictions"), result.pop("answers")
            summary["test_metrics"] = result
        else:
            timer = BatchTimer()
            trainer.add_callback(timer)
            prediction = trainer.predict(splits["test"], metric_key_prefix="test")
            summary["test_metrics"] = {key.removeprefix("test_"): value for key, value in prediction.metrics.items()}
            summary["test_metrics"]["ms_per_clip"] = timer.ms_per_clip(len(splits["test"]))
            summary["test_predictions"] = np.asarray(prediction.predictions).reshape(-1).tolist()
        mean_predictor = msa_regression_metrics(np.full_like(test_labels, label_mean), test_labels, metrics_dataset)
        summary["mean_predictor_test_MAE"] = mean_predictor["MAE"]
    summary["peak_memory_mb"] = round(peak_memory_bytes() / 2**20, 1)
    summary["media_cache"] = {
        "decode_calls": encoder.media_cache.decode_calls,
        "hits": encoder.media_cache.hits,
        "location": encoder.media_cache.describe(),
    }
    logger.info("Decoded %d clips this run; %s", encoder.media_cache.decode_calls, encoder.media_cache.describe())

    # 5. Export: adapter (+ head) and the merged, Hub-ready model with its processor (and, for the regressor, card).
    if trainer.is_world_process_zero():
        export_dir = output_dir / "model"
        adapter_dir = output_dir / "adapter"
        if model_args.lora_preset == "none":
            trainer.save_model(export_dir)
        elif generative:
            trainer.save_model(adapter_dir)
            encoder.save_pretrained(adapter_dir)
            if not model_args.save_adapter_only:
                merged_thinker_export(model_args.model_name_or_path, adapter_dir, export_dir, encoder)
        else:
            save_adapter_export(trainer, encoder, adapter_dir)
            if not model_args.save_adapter_only:
                merged_export(adapter_dir, export_dir)
        exported_model = model_args.lora_preset == "none" or not model_args.save_adapter_only
        if exported_model:
            encoder.save_pretrained(export_dir)
        if exported_model and not generative:
            register_pipeline(export_dir)
            write_model_card(
                export_dir,
                base_model=model_args.model_name_or_path,
                dataset_name=Path(data_args.dataset_dir).name,
                summary=summary,
                training_args=training_args,
                model_args=model_args,
            )
        summary["export_dir"] = str(export_dir if exported_model else adapter_dir)
        write_json(output_dir / "training_summary.json", summary)
        if push_to_hub:
            summary["hub_commit"] = push_export(
                summary["export_dir"], training_args.hub_model_id, training_args.hub_token, training_args.hub_private_repo
            )
    trainer.accelerator.wait_for_everyone()
    return summary


def resolve_checkpoint(training_args) -> str | None:
    """`--resume_from_checkpoint last` (or `true`) -> the newest checkpoint in `--output_dir`; a path stays a path."""
    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() not in ("last", "true"):
        return value
    checkpoint = get_last_checkpoint(training_args.output_dir) if Path(training_args.output_dir).is_dir() else None
    if checkpoint is None:
        raise ValueError(f"--resume_from_checkpoint {value}: no checkpoint-* folder in {training_args.output_dir}.")
    return checkpoint


def parse_target_modules(value: str | None):
    if value is None:
        return None
    if "," in value:
        return [name.strip() for name in value.split(",") if name.strip()]
    return value


if __name__ == "__main__":
    main()
