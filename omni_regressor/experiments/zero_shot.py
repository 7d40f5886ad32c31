"""`omni-regressor zero-shot`: the base Thinker answers the scoring prompt; the answers are parsed and scored.

    omni-regressor zero-shot --model_name_or_path Qwen/Qwen2.5-Omni-7B --dataset_dir MOSI --output_dir runs/zs

The prompt, media settings and score range are those a fine-tuned run with the same flags would use.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from omni_regressor.eval.metrics import metrics_for_score_range
from processing_omni_regressor import ClipEncoder

from ..arguments import DatasetArguments, OmniArgumentParser, ProcessingArguments, at_least, default_num_workers, parse_score_range
from ..backbones import backbone_of
from ..data import SPLITS, DataProblemsError, check_dataset, infer_score_range, records_to_dataset_dict
from ..outputs import write_json
from ..metering import peak_memory_mb
from ..recipes.generative import DEFAULT_MAX_NEW_TOKENS, evaluate_generative, load_thinker
from ..arguments import RunError
from ..settings import resolve_settings


@dataclass
class ZeroShotArguments(DatasetArguments):
    _argument_group_name = "zero-shot"
    model_name_or_path: str = field(metadata={"help": "An original Qwen2.5-Omni or Qwen3-Omni checkpoint (Hub id or folder)."})
    output_dir: str = field(metadata={"help": "Where zero_shot.json goes."})
    split: str = field(default="test", metadata={"help": "Split to score.", "choices": list(SPLITS)})
    score_range: str | None = field(default=None, metadata={"help": "Label scale 'low,high' (default: inferred)."})
    quantization: str = field(default="4bit", metadata={"help": "4bit or none.", "choices": ["4bit", "none"]})
    batch_size: int = field(default=8, metadata={"help": "Clips per generate call."})
    max_new_tokens: int = field(default=DEFAULT_MAX_NEW_TOKENS, metadata={
        "help": "Longest answer generated (generation stops at the end-of-turn token before that)."})
    num_workers: int | None = field(default=None, metadata={
        "help": "Worker processes that decode and encode clips (default: up to 4 with a GPU; on CPU only from 8 cores)."})

    def validate(self):
        super().validate()
        parse_score_range(self.score_range)
        at_least(self, batch_size=1, max_new_tokens=1)


def run_zero_shot(args: ZeroShotArguments, processing: ProcessingArguments) -> dict:
    backbone = backbone_of(args.model_name_or_path)
    settings, processor = resolve_settings(processing, args.model_name_or_path)
    media_cache = processing.media_cache()
    records, problems = check_dataset(
        args.dataset_dir, args.dataset_format, media_settings=settings.media_settings(), modalities=settings.modalities,
        score_range=parse_score_range(args.score_range), media_cache=media_cache, **args.dataset_options(),
    )
    if problems:
        raise DataProblemsError(problems, root=args.dataset_dir)
    splits = records_to_dataset_dict(records)
    if args.split not in splits:
        raise RunError(f"{args.dataset_dir}: no clip has mode {args.split!r}.")
    score_range = parse_score_range(args.score_range) or infer_score_range(records)
    encoder = ClipEncoder(processor, settings, score_range=score_range, media_cache=media_cache)
    model = load_thinker(args.model_name_or_path, backbone, args.quantization)
    rows = splits[args.split]
    num_workers = default_num_workers() if args.num_workers is None else args.num_workers
    result = evaluate_generative(model, encoder, rows, metrics_for_score_range(score_range), args.batch_size,
                                 args.max_new_tokens, num_workers=num_workers)
    report = {
        **result.metrics,
        "readout": "generative (zero-shot)",
        "split": args.split,
        "num_clips": len(rows),
        "modalities": list(settings.modalities),
        "processing": settings.to_dict(),
        "score_range": list(score_range),
        "quantization": args.quantization,
        "peak_memory_mb": peak_memory_mb(),
        "predictions": result.predictions,
        "answers": result.extras["answers"],
        "truncated": result.extras["truncated"],
        "clip_ids": list(rows["clip_id"]),
    }
    write_json(Path(args.output_dir) / "zero_shot.json", report)
    return report


def main(argv=None) -> int:
    parser = OmniArgumentParser((ZeroShotArguments, ProcessingArguments), prog="omni-regressor zero-shot")
    args, processing = parser.parse(argv)
    report = run_zero_shot(args, processing)
    print(json.dumps({key: value for key, value in report.items()
                      if key not in ("answers", "predictions", "truncated", "clip_ids")}, default=float))
    return 0
