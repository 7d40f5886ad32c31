"""Command-line arguments of every command: one dataclass per concern, one parser that refuses bad values.

`ProcessingArguments` (what the model sees) is shared by train, evaluate, predict, zero-shot, compare, sweep,
benchmark, check-data and inspect-inputs; its flags, defaults and bounds are `ProcessingSettings`' fields. A bad value
is one line on stderr naming the flag and exit status 2, before any model loads.
"""

import argparse
import json
import math
import re
import sys
import typing
from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path

from transformers import HfArgumentParser

from processing_omni_regressor import ProcessingSettings, parse_modalities

from .backbones import LORA_PRESETS
from .data import DATASET_FORMATS

READOUT_NAMES = ("discriminative", "generative")
QUANTIZATIONS = ("4bit", "none")
LOSS_TYPES = ("l1", "mse", "huber")
FLAG_FILE_SUFFIXES = (".json", ".yaml", ".yml")
LONG_USAGE_FLAGS = 40


class UsageError(ValueError):
    """A problem with the command line itself: one line on stderr, exit status 2, nothing is run."""


class RunError(ValueError):
    """A run that cannot start as asked (said before any model loads)."""



def _help(text: str, **metadata) -> dict:
    return {"help": text, **metadata}


class ProcessingFlags:
    """What the model sees. Unset flags take the model's saved settings (evaluate, predict, ...) or, for a new run,
    the official Qwen-Omni values.

    `ProcessingArguments` (below) is this class with one optional flag per `ProcessingSettings` field that has a
    `help` (its help, type and choices from that field; unset = None), plus `--media_cache_dir`: a new setting is one
    field of `ProcessingSettings`, and its flag, its validation (`ProcessingSettings.check_values`) and its way into
    the settings (`overrides`, read by `omni_regressor.settings.resolve_settings`) follow from it.
    """

    _argument_group_name = "processing (what the model sees; unset: the model's saved settings)"

    def validate(self):
        """The given flags, checked as settings (`ProcessingSettings.check_values`), each error naming its flag."""
        try:
            ProcessingSettings.check_values({name: getattr(self, name) for name in SETTINGS_FLAGS})
        except ValueError as error:
            raise ValueError(re.sub(r"`(\w+)`", r"--\1", str(error))) from None

    def overrides(self) -> dict:
        """The settings given on the command line (unset flags left out)."""
        values = {name: getattr(self, name) for name in SETTINGS_FLAGS if getattr(self, name) is not None}
        if self.modalities is not None:
            values["modalities"] = parse_modalities(self.modalities)
        return values

    def media_cache(self):
        from .media import MediaCache, default_cache_dir

        return MediaCache(self.media_cache_dir or default_cache_dir())


def _processing_flag(item, flag_type):
    """The optional flag of a `ProcessingSettings` field: its help and choices, unset (None) by default."""
    metadata = {"help": item.metadata["help"]}
    if "choices" in item.metadata:
        metadata["choices"] = list(item.metadata["choices"])
    return item.name, (str if item.name == "modalities" else flag_type) | None, field(default=None, metadata=metadata)


# The processing flags that are settings: the `ProcessingSettings` fields with a help text.
_SETTING_TYPES = typing.get_type_hints(ProcessingSettings)
SETTINGS_FLAGS = tuple(item.name for item in fields(ProcessingSettings) if "help" in item.metadata)
ProcessingArguments = make_dataclass(
    "ProcessingArguments",
    [
        *(_processing_flag(item, _SETTING_TYPES[item.name]) for item in fields(ProcessingSettings)
          if item.name in SETTINGS_FLAGS),
        ("media_cache_dir", str | None, field(default=None, metadata=_help(
            "Decoded-media cache (default: $OMNI_REGRESSOR_CACHE or ~/.cache/omni_regressor/media)."))),
    ],
    bases=(ProcessingFlags,),
)
ProcessingArguments.__module__ = __name__
ProcessingArguments.__doc__ = ProcessingFlags.__doc__


@dataclass(kw_only=True)
class DatasetArguments:
    """Where a dataset is and its layout: the flags every command that reads a dataset takes (train, evaluate,
    check-data, zero-shot, analyze, probe, ...), declared once. A layout's own option is one more field here, passed
    to its reader by `dataset_options` (`omni_regressor.data.read_dataset(root, format, **options)`)."""

    dataset_dir: str = field(metadata=_help(
        "Dataset root: MMSA layout (label.csv + Raw/) or CMU-SDK raw layout (check-data also takes it as its first "
        "bare argument)."))
    dataset_format: str = field(default="mmsa", metadata=_help("Dataset layout.", choices=list(DATASET_FORMATS)))
    labels_csv: str | None = field(default=None, metadata=_help(
        "Labels CSV for --dataset_format cmu-sdk (video_id, clip_id, label, mode)."))

    def dataset_options(self) -> dict:
        """The layout's own options, for `read_dataset` / `check_dataset`."""
        return {"labels_csv": self.labels_csv}

    def validate(self):
        if not Path(self.dataset_dir).is_dir():
            raise ValueError(f"--dataset_dir {self.dataset_dir}: no such folder.")
        if self.dataset_format == "cmu-sdk" and not self.labels_csv:
            raise ValueError("--dataset_format cmu-sdk needs --labels_csv (a CSV with video_id, clip_id, label, mode).")


@dataclass
class ModelArguments:
    _argument_group_name = "model"
    model_name_or_path: str = field(metadata=_help(
        "An original Qwen2.5-Omni or Qwen3-Omni checkpoint (Hub id or folder), or a saved regressor folder."))
    readout: str = field(default="discriminative", metadata=_help(
        "discriminative (regression head on the last hidden state) or generative (the score written as text).",
        choices=list(READOUT_NAMES)))
    quantization: str = field(default="4bit", metadata=_help(
        "4bit (NF4, double quantisation, bf16 compute; towers and head unquantised) or none.", choices=list(QUANTIZATIONS)))
    lora_preset: str = field(default="paper", metadata=_help(
        "LoRA targets: paper (q/k/v/o/gate/up/down wherever they occur), language-only, attention-only (Qwen3-Omni), "
        "or none (full fine-tuning, needs --quantization none).", choices=list(LORA_PRESETS)))
    lora_r: int | None = field(default=None, metadata=_help("LoRA rank (preset: 32)."))
    lora_alpha: int | None = field(default=None, metadata=_help("LoRA alpha (preset: 32)."))
    lora_dropout: float | None = field(default=None, metadata=_help("LoRA dropout (preset: 0.1)."))
    lora_target_modules: str | None = field(default=None, metadata=_help(
        "Comma-separated module names, or one regex, replacing the preset's targets."))
    upcast_frozen_weights: bool = field(default=False, metadata=_help(
        "With 4bit: cast the unquantised frozen weights (towers, embeddings, norms) to fp32 as peft's "
        "prepare_model_for_kbit_training does (+3.7 GB at 7B). Default: they stay in bf16."))
    head_hidden_size: int = field(default=256, metadata=_help("Hidden width of the regression head."))
    head_dropout: float = field(default=0.2, metadata=_help("Dropout inside the regression head, in [0, 1)."))
    pooling: str = field(default="last", metadata=_help(
        "How the hidden states become one vector per clip: last (the last non-pad token, the paper's), mean (masked "
        "mean over the prompt's tokens), attention (a learned query, trained with the head), or any other entry of the "
        "pooler table (`POOLERS` in modeling_omni_regressor.py)."))
    readout_layer: int = field(default=-1, metadata=_help(
        "Hidden state read out: -1 the final layer, or N = after the first N decoder layers (0: the embeddings); the "
        "later layers are not run. `omni-regressor probe` shows which layer carries the signal."))
    loss_type: str = field(default="l1", metadata=_help("Loss on normalised labels.", choices=list(LOSS_TYPES)))
    head_learning_rate: float = field(default=1e-3, metadata=_help(
        "Learning rate of the head (LoRA uses --learning_rate)."))
    save_adapter_only: bool = field(default=False, metadata=_help(
        "Write only adapter/ (LoRA + head + processor + regressor config naming the base), no merged model."))
    early_stopping_patience: int | None = field(default=None, metadata=_help(
        "Stop after this many evaluations without a better valid metric."))
    max_new_tokens: int = field(default=32, metadata=_help(
        "Generative readout: longest answer generated (it stops at the end-of-turn token before that)."))
    license: str | None = field(default=None, metadata=_help(
        "Licence of the exported model for its card (default: the base model's, read from its card if any)."))
    base_model_id: str | None = field(default=None, metadata=_help(
        "The Hub id that a local --model_name_or_path stands for, written into the exported files and card instead of "
        "the local path (default: the name given when it is a Hub id, else the placeholder `local:<folder name>`)."))

    def validate(self):
        if self.lora_preset == "none" and self.quantization != "none":
            raise ValueError("--lora_preset none (full fine-tuning) needs --quantization none: 4-bit weights do not train.")
        at_least(self, lora_r=1, lora_alpha=1, head_hidden_size=1, readout_layer=-1, early_stopping_patience=1,
                 max_new_tokens=1)
        _in_unit_interval("lora_dropout", self.lora_dropout)
        _in_unit_interval("head_dropout", self.head_dropout)
        from modeling_omni_regressor import POOLERS

        if self.pooling not in POOLERS:
            raise ValueError(f"--pooling must be one of {', '.join(POOLERS)}, got {self.pooling!r}.")
        _non_negative("head_learning_rate", self.head_learning_rate)

    def lora_overrides(self) -> dict:
        targets = self.lora_target_modules
        if targets is not None and "," in targets:
            targets = [name.strip() for name in targets.split(",") if name.strip()]
        return {"r": self.lora_r, "alpha": self.lora_alpha, "dropout": self.lora_dropout, "target_modules": targets}


@dataclass
class DataArguments(DatasetArguments):
    _argument_group_name = "data"
    score_range: str | None = field(default=None, metadata=_help(
        "Label scale 'low,high' (default: -1,1 when every label is within it (CH-SIMS), else -3,3)."))
    dataset_name: str | None = field(default=None, metadata=_help(
        "Hub id of the dataset for the model card and results table (e.g. MOSI, MOSEI, CH-SIMS ids); default: none."))
    skip_bad_clips: bool = field(default=False, metadata=_help(
        "Train on the usable clips and list the others in <output_dir>/skipped_clips.csv."))

    def validate(self):
        super().validate()
        parse_score_range(self.score_range)


def default_num_workers() -> int:
    """Worker processes that decode and encode clips while the model computes: up to 4 with an accelerator (one core
    left to the main process); on a CPU-only machine the model's own computation needs the cores, so workers start
    only from 8 cores (measured: `python -m omni_regressor.benchmarks.training_stages`)."""
    import os

    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if torch.cuda.is_available():
        return max(0, min(4, cores - 1))
    return min(4, cores // 4) if cores >= 8 else 0


def parse_score_range(value: str | None):
    if value is None:
        return None
    try:
        low, high = (float(part) for part in str(value).split(","))
    except ValueError:
        raise ValueError(f"--score_range must be 'low,high' (e.g. -3,3), got {value!r}.") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"--score_range must be 'low,high' with low < high, got {value!r}.")
    return (low, high)


def _non_negative(name, value):
    if value is not None and not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"--{name} must be zero or more, got {value!r}.")


def _at_least(name, value, minimum):
    if value is not None and value < minimum:
        raise ValueError(f"--{name} must be at least {minimum}, got {value!r}.")


def at_least(arguments, **minimums):
    """Refuses, in one line naming the flag, each named field of `arguments` below its minimum (unset fields pass):
    `at_least(self, batch_size=1, num_workers=0)` in a `validate`."""
    for name, minimum in minimums.items():
        _at_least(name, getattr(arguments, name), minimum)


def _in_unit_interval(name, value):
    if value is not None and not 0.0 <= value < 1.0:
        raise ValueError(f"--{name} must be in [0, 1), got {value!r}.")


class OmniArgumentParser(HfArgumentParser):
    """HfArgumentParser with a heading per argument dataclass in `--help`, no abbreviations, JSON/YAML files of flags
    anywhere on the command line (later flags override them), and one-line errors (exit status 2) for bad values.

    Every flag is accepted as `--flag_name` and `--flag-name`, as HfArgumentParser does; `--help` lists the first.
    """

    def __init__(self, dataclass_types, prog: str, description: str | None = None, epilog: str | None = None):
        super().__init__(dataclass_types, prog=prog, description=description, epilog=epilog, allow_abbrev=False,
                         formatter_class=HelpFormatter)
        if len(self._actions) > LONG_USAGE_FLAGS:  # the usage line would list every flag: the groups below do
            required = " ".join(f"{action.option_strings[0]} {action.dest.upper()}" for action in self._actions
                                if action.required and action.option_strings)
            self.usage = f"{prog} [--help] {required} [FLAG VALUE ...] [FLAGS.yaml|FLAGS.json ...]".replace("  ", " ")
        for dataclass_type in self.dataclass_types:
            own_fields = getattr(dataclass_type, "_common_fields", None)
            if own_fields is not None:
                self._move_uncommon_flags(dataclass_type, own_fields)

    def _move_uncommon_flags(self, dataclass_type, common_fields) -> None:
        """Flags of `dataclass_type` not in `common_fields` go to a last group, so that its common flags come first."""
        group = next(g for g in self._action_groups if g.title == dataclass_type._argument_group_name)
        rest = self.add_argument_group(dataclass_type._other_argument_group_name)
        for action in list(group._group_actions):
            if action.dest not in common_fields:
                group._group_actions.remove(action)
                rest._group_actions.append(action)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse(self, argv=None, positional: str | None = None, allow_remaining: bool = False):
        """-> the dataclasses (validated), plus the remaining strings when `allow_remaining`.

        `positional`: the name of a field that may also be given as the first bare argument (e.g. check-data ROOT).
        """
        argv = self.expand_flag_files(list(sys.argv[1:] if argv is None else argv))
        if positional and argv and not argv[0].startswith("-"):
            argv = [f"--{positional}", argv[0], *argv[1:]]
        try:
            parsed = self.parse_args_into_dataclasses(argv, return_remaining_strings=True, look_for_args_file=False)
        except ValueError as error:  # a dataclass's own __post_init__ (e.g. TrainingArguments)
            self.error(str(error).splitlines()[0])
        *dataclasses, remaining = parsed
        if remaining and not allow_remaining:
            self.error(f"unrecognized arguments: {' '.join(remaining)}")
        for instance in dataclasses:
            try:
                if hasattr(instance, "validate"):
                    instance.validate()
            except ValueError as error:
                self.error(str(error))
        return (*dataclasses, remaining) if allow_remaining else tuple(dataclasses)

    def expand_flag_files(self, argv: list[str]) -> list[str]:
        """Replaces each JSON/YAML file of flags, wherever it stands, by its flags (a later flag overrides them).

        A `.json`/`.yaml` argument that is the value of the flag before it (e.g. `--deepspeed ds.json`) stays a value.
        """
        expanded = []
        for index, argument in enumerate(argv):
            previous = argv[index - 1] if index else ""
            previous_action = self._option_string_actions.get(previous) if previous.startswith("-") else None
            is_value = previous_action is not None and previous_action.nargs != 0 and "=" not in previous
            if argument.endswith(FLAG_FILE_SUFFIXES) and not argument.startswith("-") and not is_value:
                expanded += self.flags_from_file(argument)
            else:
                expanded.append(argument)
        return expanded

    def flags_from_file(self, path) -> list[str]:
        path = Path(path)
        if not path.is_file():
            self.error(f"{path}: no such file (a JSON or YAML file of flags)")
        try:
            if path.suffix == ".json":
                values = json.loads(path.read_text(encoding="utf-8"))
            else:
                import yaml

                values = yaml.safe_load(path.read_text(encoding="utf-8"))
        except Exception as error:  # noqa: BLE001 - any parse error is the user's file
            self.error(f"{path}: cannot read it ({type(error).__name__}: {error})")
        if not isinstance(values, dict):
            self.error(f"{path}: expected a mapping of flag names to values")
        known = {option for action in self._actions for option in action.option_strings}
        flags = []
        for key, value in values.items():
            flag = f"--{key}"
            if flag not in known:
                self.error(f"{path}: unknown key {key!r}")
            if isinstance(value, bool):
                flags.append(f"{flag}={str(value).lower()}")
            elif isinstance(value, list):
                flags += [flag, *map(str, value)]
            elif value is not None:
                flags.append(f"{flag}={value}")  # `--score_range=-1,1`: a value may start with "-"
        return flags


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Lists each flag once, by its underscore spelling (the dashed alias works too, as the class docstring says)."""

    def _format_action_invocation(self, action):
        if action.option_strings:
            underscored = [option for option in action.option_strings if not (option.startswith("--") and "-" in option[2:])]
            if underscored and len(underscored) < len(action.option_strings):
                action = argparse.Action(underscored, action.dest, nargs=action.nargs, metavar=action.metavar)
        return super()._format_action_invocation(action)


def dataclass_flag_names(*dataclass_types) -> set[str]:
    return {f"--{item.name}" for dataclass_type in dataclass_types for item in fields(dataclass_type)}


def __getattr__(name):
    # Names this module had before the training flags moved to `training_arguments` (importing `TrainingArguments`
    # imports peft and bitsandbytes): still importable from here, loaded when asked for. The package itself imports
    # them from `omni_regressor.training_arguments`.
    if name in ("OmniTrainingArguments", "parse_training_arguments", "training_parser"):
        from . import training_arguments

        return getattr(training_arguments, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DataArguments", "DatasetArguments", "ModelArguments", "OmniArgumentParser", "OmniTrainingArguments", "ProcessingArguments",
    "parse_score_range", "parse_training_arguments", "training_parser",
]
