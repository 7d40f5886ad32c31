"""The recipe interface: how one readout is trained, tested and exported, from loading the backbone to the export.

The training run (`omni_regressor.run.run_training`) calls these methods in order and never asks which recipe it has;
a new recipe is one subclass of `Recipe` and one entry in `omni_regressor.recipes.RECIPES`.
"""

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunContext:
    """Everything a recipe needs to know about the run it is part of."""

    model_args: object
    data_args: object
    training_args: object
    backbone: object  # BackboneSpec
    settings: object  # ProcessingSettings, resolved
    score_range: tuple[float, float]
    label_mean: float
    label_std: float
    metrics_dataset: str  # "mosi" or "sims": which MMSA metric set
    output_dir: Path
    summary: dict = field(default_factory=dict)


@dataclass
class TestResult:
    """The test pass: MMSA metrics (+ the readout's own statistics), one prediction per clip, extra per-clip output."""

    metrics: dict
    predictions: list[float]
    extras: dict = field(default_factory=dict)  # e.g. {"answers": [...]} for the generative readout


class Recipe:
    """How one readout (one way to read a sentiment score out of the backbone) is trained, tested and exported.

    Attributes:
        name: the readout's name, the `--readout` value.
        metric_for_best_model: the valid-split metric that picks the checkpoint (Trainer's `metric_for_best_model`).
    """

    name: str = ""
    metric_for_best_model: str = "loss"

    def load_model(self, context: RunContext):
        """The model to train: backbone (4-bit or not) with LoRA or full fine-tuning prepared."""
        raise NotImplementedError

    def collator(self, encoder):
        """The Trainer's data collator over dataset rows (`text`, `media_path`, `label`)."""
        raise NotImplementedError

    def compute_metrics(self, context: RunContext):
        """`compute_metrics` for the Trainer's evaluation, or None when the loss is the metric."""
        return None

    def head_learning_rate(self, context: RunContext) -> float | None:
        """A learning rate for fully trained modules (the regression head), or None for one rate."""
        return None

    def test_pass(self, trainer, encoder, test_rows, context: RunContext) -> TestResult:
        raise NotImplementedError

    def export(self, trainer, encoder, context: RunContext) -> Path:
        """Writes the trained model for users; returns the folder they load."""
        raise NotImplementedError
