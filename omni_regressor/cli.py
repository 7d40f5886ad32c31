"""`omni-regressor <command> ...`: dispatches to the library; every flag is documented by `--help`."""

import json
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser


@dataclass
class ParamsArguments:
    arch: str = field(default="7b", metadata={"help": "Thinker shape: tiny, 3b or 7b (built on the meta device)."})
    lora_preset: str = field(default="paper", metadata={"help": "paper, language-only or none."})
    head_hidden_size: int = field(default=256, metadata={"help": "Hidden width of the regression head."})


def params_command(argv):
    """Prints one JSON line: total, trainable and LoRA/head parameters of the regressor with a LoRA preset."""
    from .architectures import params_report

    (args,) = HfArgumentParser(ParamsArguments).parse_args_into_dataclasses(argv)
    print(json.dumps(params_report(args.arch, args.lora_preset, args.head_hidden_size)))
    return 0


@dataclass
class TinyBackboneArguments:
    output_dir: str = field(metadata={"help": "Folder for the tiny original-layout Qwen2.5-Omni checkpoint + processor."})
    seed: int = field(default=0, metadata={"help": "Weight seed."})


def tiny_backbone_command(argv):
    """Writes a tiny random Qwen2.5-Omni checkpoint (original layout) with a matching processor."""
    from .tiny_backbone import write_tiny_backbone

    (args,) = HfArgumentParser(TinyBackboneArguments).parse_args_into_dataclasses(argv)
    print(write_tiny_backbone(args.output_dir, seed=args.seed))
    return 0


@dataclass
class DemoDataArguments:
    output_dir: str = field(metadata={"help": "Folder for the generated MMSA-layout dataset."})
    num_clips: int = field(default=48, metadata={"help": "Number of clips."})
    seed: int = field(default=0, metadata={"help": "Seed of labels, wording, tones and frames."})


def demo_data_command(argv):
    """Writes a small MMSA-layout dataset of generated H.264 + AAC clips (labels learnable from each modality)."""
    from .data import write_demo_dataset

    (args,) = HfArgumentParser(DemoDataArguments).parse_args_into_dataclasses(argv)
    print(write_demo_dataset(args.output_dir, num_clips=args.num_clips, seed=args.seed))
    return 0


@dataclass
class CheckDataArguments:
    dataset_dir: str = field(metadata={"help": "Dataset root (positional)."})
    dataset_format: str = field(default="mmsa", metadata={"help": "mmsa or cmu-sdk."})
    labels_csv: str | None = field(default=None, metadata={"help": "Labels CSV for the cmu-sdk layout."})
    modalities: str = field(default="text,audio,video", metadata={"help": "Modalities the clips must provide."})
    score_range: str | None = field(default=None, metadata={"help": "Label scale 'low,high' (default: inferred)."})
    full_decode: bool = field(default=False, metadata={"help": "Decode every clip completely (slower, catches more corruption)."})


def check_data_command(argv):
    """Scans label.csv and every media file; prints each problem by clip id and a summary. Exit 1 on any problem."""
    from .data import check_dataset, format_problems
    from .processing import ProcessingSettings, parse_modalities

    if argv and not argv[0].startswith("-"):
        argv = ["--dataset_dir", argv[0], *argv[1:]]
    (args,) = HfArgumentParser(CheckDataArguments).parse_args_into_dataclasses(argv)
    score_range = tuple(float(part) for part in args.score_range.split(",")) if args.score_range else None
    modalities = parse_modalities(args.modalities)
    records, problems = check_dataset(
        args.dataset_dir,
        dataset_format=args.dataset_format,
        labels_csv=args.labels_csv,
        settings=ProcessingSettings(modalities=modalities).media_settings(),
        modalities=modalities,
        score_range=score_range,
        full_decode=args.full_decode,
    )
    if problems:
        print(format_problems(problems))
    print(f"{len(records)} clips read, {len(problems)} problems.")
    return 1 if problems else 0


def train_command(argv):
    """Fine-tunes with QLoRA and the HF Trainer (`train_with_trainer.py`, same flags)."""
    import train_with_trainer

    summary = train_with_trainer.main(argv)
    print(json.dumps({key: value for key, value in summary.items() if key != "test_predictions"}, default=float))
    return 0


def demo_command(argv):
    """End to end on an embedded tiny backbone: data -> 4-bit QLoRA training -> test metrics -> export + card."""
    from .demo import main as demo_main

    return demo_main(argv)


COMMANDS = {
    "demo": demo_command,
    "train": train_command,
    "check-data": check_data_command,
    "params": params_command,
    "tiny-backbone": tiny_backbone_command,
    "demo-data": demo_data_command,
}


def lazy_command(module_name, summary):
    """A command whose module is imported only when it runs (keeps `omni-regressor --help` fast)."""

    def run(argv):
        import importlib

        return importlib.import_module(module_name).main(argv)

    run.__doc__ = summary
    return run


# Commands whose code lives in `eval/` (evaluation, comparison, sweeps, benchmark) and in the predictor.
COMMANDS.update(
    {
        "evaluate": lazy_command("eval.evaluation", "Scores a dataset split: predictions.csv, metrics.json and plots."),
        "predict": lazy_command("omni_regressor.predict", "Scores video files, folders or a path,text CSV."),
        "compare": lazy_command("eval.compare", "Discriminative vs generative readout (zero-shot, fine-tuned): one table."),
        "zero-shot": lazy_command("eval.zero_shot", "The base Thinker writes the score as text; parsed and scored."),
        "sweep": lazy_command("eval.sweep", "Modality ablations x seeds, mean ± std per configuration."),
        "benchmark": lazy_command("eval.benchmark", "Readout latency, batch throughput and peak memory, in one run."),
    }
)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = ["usage: omni-regressor <command> [--help]", "", "commands:"]
        for name, command in COMMANDS.items():
            doc = (command.__doc__ or "").strip().splitlines()[0] if command.__doc__ else ""
            lines.append(f"  {name:<14}{doc}")
        print("\n".join(lines))
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    from .data import DataProblemsError

    try:
        return int(COMMANDS[argv[0]](argv[1:]) or 0)
    except DataProblemsError as error:
        print(str(error), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
