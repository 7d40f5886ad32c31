"""`omni-regressor zero-shot`: the base Thinker answers the scoring prompt; the answers are parsed and scored."""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser, Qwen2_5OmniProcessor

from eval.generative_readout import evaluate_generative
from eval.metrics import metrics_for_score_range
from omni_regressor.data import DataProblemsError, check_dataset, infer_score_range, records_to_dataset_dict
from omni_regressor.generative import load_thinker
from omni_regressor.media import MediaCache, default_cache_dir
from omni_regressor.processing import ClipEncoder, ProcessingSettings, parse_modalities
from omni_regressor.training import peak_memory_bytes, write_json


@dataclass
class ZeroShotArguments:
    model_name_or_path: str = field(metadata={"help": "An original Qwen2.5-Omni checkpoint (Hub id or folder)."})
    dataset_dir: str = field(metadata={"help": "Dataset root (MMSA layout or CMU-SDK raw layout)."})
    output_dir: str = field(metadata={"help": "Where zero_shot.json goes."})
    dataset_format: str = field(default="mmsa", metadata={"help": "mmsa or cmu-sdk."})
    labels_csv: str | None = field(default=None, metadata={"help": "Labels CSV for the cmu-sdk layout."})
    split: str = field(default="test", metadata={"help": "train, valid or test."})
    modalities: str = field(default="text,audio,video", metadata={"help": "Modalities shown to the model."})
    quantization: str = field(default="4bit", metadata={"help": "4bit or none."})
    batch_size: int = field(default=8, metadata={"help": "Clips per generate call."})
    max_new_tokens: int = field(default=8, metadata={"help": "Longest answer generated."})
    max_pixels: int = field(default=28 * 28 * 64, metadata={"help": "Upper bound of frame area after resizing."})
    media_cache_dir: str | None = field(default=None, metadata={"help": "Decoded-media cache directory."})


def run_zero_shot(args: ZeroShotArguments) -> dict:
    settings = ProcessingSettings(modalities=parse_modalities(args.modalities), max_pixels=args.max_pixels)
    records, problems = check_dataset(
        args.dataset_dir, args.dataset_format, args.labels_csv, settings.media_settings(), settings.modalities
    )
    if problems:
        raise DataProblemsError(problems)
    score_range = infer_score_range(records)
    rows = records_to_dataset_dict(records)[args.split]
    encoder = ClipEncoder(
        Qwen2_5OmniProcessor.from_pretrained(args.model_name_or_path),
        settings,
        score_range=score_range,
        media_cache=MediaCache(args.media_cache_dir or default_cache_dir()),
    )
    model = load_thinker(args.model_name_or_path, args.quantization)
    result = evaluate_generative(
        model, encoder, rows, metrics_for_score_range(score_range), args.batch_size, args.max_new_tokens
    )
    result.update(
        readout="generative (zero-shot)",
        split=args.split,
        num_clips=len(rows),
        modalities=list(settings.modalities),
        peak_memory_mb=round(peak_memory_bytes() / 2**20, 1),
    )
    write_json(Path(args.output_dir) / "zero_shot.json", result)
    return result


def main(argv=None) -> int:
    (args,) = HfArgumentParser(ZeroShotArguments).parse_args_into_dataclasses(sys.argv[1:] if argv is None else argv)
    result = run_zero_shot(args)
    print(json.dumps({key: value for key, value in result.items() if key not in ("answers", "predictions")}, default=float))
    return 0
