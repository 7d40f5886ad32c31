"""The main job: the whole package end to end on an embedded tiny backbone and generated clips, on CPU.

tiny original-layout Qwen2.5-Omni checkpoint -> demo dataset (real H.264 + AAC clips) -> `check-data` ->
4-bit QLoRA training (paper preset) -> test metrics vs the mean predictor -> merged export + model card -> a fresh
`SentimentScorer` scoring one test clip from the exported folder.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path



@dataclass
class DemoArguments:
    _argument_group_name = "demo"
    output_dir: str = field(default="runs/demo", metadata={"help": "Where the backbone, data, run and export go."})
    num_clips: int = field(default=60, metadata={"help": "Generated clips (60/20/20 train/valid/test)."})
    num_train_epochs: float = field(default=8.0, metadata={"help": "Training epochs."})
    modalities: str = field(default="text,audio,video", metadata={"help": "Modalities to train on."})
    quantization: str = field(default="4bit", metadata={"help": "4bit or none.", "choices": ["4bit", "none"]})
    seed: int = field(default=0, metadata={"help": "Seed of the backbone, the data and the training."})
    overwrite: bool = field(default=False, metadata={"help": "Run again into a non-empty --output_dir (its files are replaced)."})


def training_flags(args: DemoArguments, backbone: Path, data: Path, run: Path) -> list[str]:
    return [
        "--model_name_or_path", str(backbone),
        "--dataset_dir", str(data),
        "--output_dir", str(run),
        "--modalities", args.modalities,
        "--quantization", args.quantization,
        "--lora_preset", "paper",
        "--head_hidden_size", "32",
        "--head_dropout", "0.0",
        "--num_train_epochs", str(args.num_train_epochs),
        "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "8",
        "--learning_rate", "2e-3",
        "--head_learning_rate", "3e-3",
        "--warmup_steps", "5",
        "--logging_steps", "10",
        "--media_cache_dir", str(Path(args.output_dir) / "media-cache"),
        # A low pixel budget (16 tokens per frame instead of the official 128..768): the demo clips are 64x48 and
        # the CPU should finish in seconds. A memory/accuracy trade-off, one flag away (see the README).
        "--min_pixels", str(28 * 28 * 4),
        "--max_pixels", str(28 * 28 * 16),
        "--seed", str(args.seed),
        "--save_total_limit", "1",
        "--disable_tqdm", "true",
        "--results_dir", str(Path(args.output_dir) / "results"),
        *(["--overwrite", "true"] if args.overwrite else []),
    ]


def main(argv=None) -> int:
    from .arguments import OmniArgumentParser
    from .training_arguments import parse_training_arguments
    from .commands import refuse_to_overwrite
    from .data import check_dataset, write_demo_dataset
    from .inference import SentimentScorer
    from .run import run_training
    from .tiny_backbone import write_tiny_backbone

    (args,) = OmniArgumentParser(DemoArguments, prog="omni-regressor demo").parse(argv)
    refuse_to_overwrite(args.output_dir, args.overwrite, "demo")
    started = time.perf_counter()
    output_dir = Path(args.output_dir)
    backbone = write_tiny_backbone(output_dir / "backbone", seed=args.seed)
    data = write_demo_dataset(output_dir / "data", num_clips=args.num_clips, seed=args.seed)
    records, problems = check_dataset(data, full_decode=False, progress=False)
    print(f"[demo] data: {len(records)} clips, {len(problems)} problems ({data})")

    summary = run_training(*parse_training_arguments(training_flags(args, backbone, data, output_dir / "run")))
    export_dir = Path(summary["export_dir"])

    test_clip = next(record for record in records if record.split == "test")
    scorer = SentimentScorer.from_pretrained(export_dir)
    [exported_score] = scorer.score([test_clip.media_path], [test_clip.text])

    report = {
        "wall_seconds": round(time.perf_counter() - started, 1),
        "test_MAE": summary["test_metrics"]["MAE"],
        "test_Corr": summary["test_metrics"]["Corr"],
        "mean_predictor_test_MAE": summary["mean_predictor_test_MAE"],
        "beats_mean_predictor": summary["test_metrics"]["MAE"] < summary["mean_predictor_test_MAE"],
        "trainable_params": summary["parameters"]["trainable_params"],
        "total_params": summary["parameters"]["total_params"],
        "peak_memory_mb": summary["peak_memory_mb"],
        "example": {"clip": test_clip.clip_id, "label": test_clip.label, "exported_model_score": round(exported_score, 4)},
        "backbone": str(backbone),
        "dataset": str(data),
        "run": str(output_dir / "run"),
        "export": str(export_dir),
        "model_card": str(export_dir / "README.md"),
    }
    (output_dir / "demo_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0
