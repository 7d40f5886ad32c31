"""The HF Trainer with two hooks: the head's own learning rate, and the time each training stage takes."""

import logging

import numpy as np
from transformers import Trainer

from .metering import StageClock


def is_head_parameter(name: str) -> bool:
    return ".head." in f".{name}"


def label_statistics(labels) -> tuple[float, float]:
    """Mean and standard deviation of the training labels (std floored so a constant split still trains)."""
    labels = np.asarray(labels, dtype=np.float64)
    return float(labels.mean()), float(max(labels.std(), 1e-3))


def _same_second_checkpoints(record: logging.LogRecord) -> bool:
    return "mtime may not be reliable" not in record.getMessage()


class OmniRegressorTrainer(Trainer):
    """`head_learning_rate`: the head's parameter group gets its own learning rate (LoRA uses `learning_rate`).

    `stage_clock` holds the seconds spent waiting for batches (`get_batch_samples`), in forward/backward
    (`training_step`) and in evaluation, and the training DataLoader's number of workers.
    """

    def __init__(self, *args, head_learning_rate: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.head_learning_rate = head_learning_rate
        self.stage_clock = StageClock()

    def _save_checkpoint(self, model, trial):
        """As the Trainer's. Checkpoints of a fast run (tiny models, few steps) are written less than a second apart;
        transformers then orders them by step, which is right, but warns that the filesystem's mtime is unreliable."""
        checkpoint_logger = logging.getLogger("transformers.trainer_utils")
        checkpoint_logger.addFilter(_same_second_checkpoints)
        try:
            return super()._save_checkpoint(model, trial)
        finally:
            checkpoint_logger.removeFilter(_same_second_checkpoints)

    def create_optimizer(self, model=None):
        if self.optimizer is not None or self.head_learning_rate is None:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        decay_parameters = set(self.get_decay_parameter_names(opt_model))
        groups = {}
        for name, parameter in opt_model.named_parameters():
            if not parameter.requires_grad:
                continue
            learning_rate = self.head_learning_rate if is_head_parameter(name) else self.args.learning_rate
            weight_decay = self.args.weight_decay if name in decay_parameters else 0.0
            groups.setdefault((learning_rate, weight_decay), []).append(parameter)
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        self.optimizer = optimizer_cls(
            [{"params": params, "lr": lr, "weight_decay": wd} for (lr, wd), params in groups.items()],
            **optimizer_kwargs,
        )
        return self.optimizer

    def get_train_dataloader(self):
        loader = super().get_train_dataloader()
        self.stage_clock.dataloader_num_workers = loader.num_workers
        return loader

    def get_batch_samples(self, *args, **kwargs):
        with self.stage_clock.timed("data_wait"):
            return super().get_batch_samples(*args, **kwargs)

    def training_step(self, *args, **kwargs):
        with self.stage_clock.timed("forward_backward"):
            return super().training_step(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        with self.stage_clock.timed("evaluation"):
            return super().evaluate(*args, **kwargs)
