"""The training flags: transformers' `TrainingArguments` with this package's defaults, and the parser of `train`.

Kept apart from `omni_regressor.arguments` because importing `TrainingArguments` imports peft and bitsandbytes:
commands that neither train nor quantise (predict, evaluate, check-data, inspect-inputs, every `--help` but train's)
never load them.
"""

import math
from dataclasses import dataclass, field

from transformers import TrainingArguments
from transformers.trainer_utils import IntervalStrategy, SaveStrategy

from .arguments import (
    DataArguments, ModelArguments, OmniArgumentParser, ProcessingArguments, _help, _non_negative, at_least,
    default_num_workers,
)


@dataclass
class OmniTrainingArguments(TrainingArguments):
    _argument_group_name = "training (the common flags)"
    _other_argument_group_name = "training (every other transformers TrainingArguments flag)"
    learning_rate: float = field(default=2e-4, metadata=_help("Learning rate of the LoRA weights."))
    num_train_epochs: float = field(default=3.0, metadata=_help("Training epochs."))
    per_device_train_batch_size: int = field(default=4, metadata=_help("Batch size per device for training."))
    per_device_eval_batch_size: int = field(default=8, metadata=_help("Batch size per device for evaluation."))
    eval_strategy: IntervalStrategy | str = field(default="epoch", metadata=_help("When to evaluate on the valid split."))
    save_strategy: SaveStrategy | str = field(default="epoch", metadata=_help("When to save checkpoints."))
    save_total_limit: int | None = field(default=2, metadata=_help("Checkpoints kept (the best is always kept)."))
    load_best_model_at_end: bool = field(default=True, metadata=_help("Restore the epoch with the best valid metric."))
    metric_for_best_model: str | None = field(default=None, metadata=_help(
        "Metric that picks the best checkpoint (default: the readout's: MAE, or the answer loss for generative)."))
    greater_is_better: bool | None = field(default=False, metadata=_help("Lower is better for MAE and loss."))
    remove_unused_columns: bool = field(default=False, metadata=_help("Kept False: the collator reads text and media paths."))
    logging_steps: float = field(default=10, metadata=_help("Log every N steps."))
    dataloader_num_workers: int | None = field(default=None, metadata=_help(
        "Worker processes that decode and encode clips (default: up to 4 with a GPU, one core left for the main "
        "process; on CPU only from 8 cores). They stay alive across epochs."))
    results_dir: str | None = field(default=None, metadata=_help(
        "Append this run's test metrics to <results_dir>/<dataset>.csv (default: results/ beside --output_dir; "
        "'none' to skip)."))
    overwrite: bool = field(default=False, metadata=_help(
        "Replace a finished run in --output_dir (default: refuse; an interrupted run continues with "
        "--resume_from_checkpoint last)."))

    def __post_init__(self):
        # Activation checkpointing inside the Thinker is on unless switched off with either the new flag or its
        # deprecated alias `--gradient_checkpointing`.
        if self.activation_checkpointing is None and self.gradient_checkpointing is None:
            self.activation_checkpointing = True
        if self.dataloader_num_workers is None:
            self.dataloader_num_workers = default_num_workers()
        if self.dataloader_num_workers > 0:  # no worker start-up (and processor reload) every epoch
            self.dataloader_persistent_workers = True
        super().__post_init__()

    def validate(self):
        at_least(self, per_device_train_batch_size=1, per_device_eval_batch_size=1, dataloader_num_workers=0)
        _non_negative("learning_rate", self.learning_rate)
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("--push_to_hub needs --hub_model_id (the Hub repository to create or update).")
        if self.max_steps is not None and self.max_steps > 0:
            return
        if not (self.num_train_epochs > 0 and math.isfinite(self.num_train_epochs)):
            raise ValueError(f"--num_train_epochs must be positive, got {self.num_train_epochs:g} (or set --max_steps).")




# `train --help` lists these first; transformers' other ~130 Trainer flags follow under their own heading.
OmniTrainingArguments._common_fields = frozenset(OmniTrainingArguments.__annotations__) | {
    "output_dir", "seed", "max_steps", "warmup_steps", "weight_decay", "gradient_accumulation_steps", "bf16",
    "resume_from_checkpoint", "push_to_hub", "hub_model_id", "hub_token", "hub_private_repo", "report_to",
    "disable_tqdm", "activation_checkpointing", "gradient_checkpointing",
}


def training_parser(prog: str = "omni-regressor train") -> OmniArgumentParser:
    return OmniArgumentParser(
        (ModelArguments, DataArguments, ProcessingArguments, OmniTrainingArguments),
        prog=prog,
        description="Fine-tunes a sentiment readout on a Qwen-Omni Thinker with QLoRA and the HF Trainer, then exports "
        "a Hub-ready folder. Flags may also come from JSON or YAML files anywhere on the line (later flags override them).",
    )


def parse_training_arguments(argv=None):
    """-> (ModelArguments, DataArguments, ProcessingArguments, OmniTrainingArguments)."""
    return training_parser().parse(argv)


__all__ = ["OmniTrainingArguments", "parse_training_arguments", "training_parser"]
