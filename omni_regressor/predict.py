"""`omni-regressor predict`: score videos with a saved regressor, through `SentimentScorer.score_clips`.

    omni-regressor predict --model runs/demo/model clips/ more.mp4 --output scores.csv
    omni-regressor predict --model runs/demo/model clip.mp4 --transcript "I loved it"
    omni-regressor predict --model runs/demo/model table.csv --transcribe

The script parses flags, expands the inputs into (path, transcript) pairs, optionally transcribes clips that come
without a transcript (the generative head of the original Qwen2.5-Omni checkpoint), then hands everything to
`SentimentScorer.score_clips` (the Python API's path) and writes one row per input.
"""

import argparse
import csv
import gc
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm")
COLUMNS = ["path", "score", "label_bucket", "acc2", "modalities", "error"]
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Scores video clips with a saved sentiment regressor.

INPUT is any mix of video files, folders (searched recursively for *.mp4, *.mkv, *.avi, *.mov, *.webm, in sorted
order) and CSV files with columns `path,text` (relative paths are resolved against the CSV's folder; `text` is the
clip's transcript). Clips without a transcript run on the modalities they have (the `modalities` column says which),
or, with --transcribe, on a transcript written by the original Qwen2.5-Omni checkpoint.

Output columns: path, score, label_bucket (Acc-7 class: the score clipped to the model's score range, rounded half
to even), acc2 (positive if score >= 0, else negative), modalities, error, and transcript when --transcribe ran."""

EPILOG = """\
exit status: 0 if every input was scored, 1 if any could not be (each is named on stderr, the others are still
scored), 2 for usage errors (no inputs, a missing path, an unknown flag)."""


@dataclass
class PredictArguments:
    model: str = field(metadata={"help": "Saved regressor: an exported folder or a Hub id."})
    transcript: str | None = field(
        default=None, metadata={"help": "Transcript of the clip, for a single video INPUT."}
    )
    modalities: str | None = field(
        default=None,
        metadata={"help": "Subset of text,audio,video (or T+A+V) to score with (default: what the model was trained with)."},
    )
    batch_size: int = field(default=8, metadata={"help": "Clips per forward pass, default 8 (batches are grouped by modalities and sorted by length)."})
    output: str | None = field(
        default=None, metadata={"help": "Output file, .csv or .jsonl by suffix (default: CSV on stdout)."}
    )
    transcribe: bool = field(
        default=False,
        metadata={"help": "Transcribe the audio of clips that have no transcript with the original Qwen2.5-Omni Thinker first (default: off)."},
    )
    transcribe_model: str | None = field(
        default=None,
        metadata={"help": "Qwen2.5-Omni checkpoint for --transcribe (default: the model config's base_model_name_or_path)."},
    )
    transcribe_quantization: str | None = field(
        default=None, metadata={"help": "4bit or none for the transcribing Thinker (default: 4bit on CUDA, none on CPU)."}
    )
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)."})
    media_cache_dir: str | None = field(
        default=None, metadata={"help": "Keep decoded clips here (default: no cache; with --transcribe clips are then decoded twice)."}
    )
    progress: bool = field(default=True, metadata={"help": "Progress bars on stderr (default: on)."})


class UsageError(Exception):
    """A problem with the command line itself: reported with exit status 2, nothing is scored."""


def build_parser() -> HfArgumentParser:
    parser = HfArgumentParser(
        PredictArguments,
        prog="omni-regressor predict",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="Video files, folders of videos or `path,text` CSV files.")
    return parser


def bool_flags(parser) -> set[str]:
    return {
        option
        for action in parser._actions
        if action.const is True and action.nargs == "?"
        for option in action.option_strings
    }


def explicit_booleans(argv: list[str], flags: set[str]) -> list[str]:
    """`--transcribe clip.mp4` -> `--transcribe true clip.mp4`: a bare boolean flag must not swallow an INPUT."""
    values = {"true", "false", "yes", "no", "t", "f", "y", "n", "1", "0"}
    result = []
    for position, token in enumerate(argv):
        result.append(token)
        following = argv[position + 1] if position + 1 < len(argv) else None
        if token in flags and (following is None or following.lower() not in values):
            result.append("true")
    return result


def parse_arguments(argv) -> tuple[PredictArguments, list[str]]:
    parser = build_parser()
    args, namespace, remaining = parser.parse_args_into_dataclasses(
        explicit_booleans(list(argv), bool_flags(parser)), return_remaining_strings=True, look_for_args_file=False
    )
    unknown = [token for token in remaining if token.startswith("-")]
    if unknown:
        raise UsageError(f"unknown flag(s) {', '.join(unknown)} (see `omni-regressor predict --help`).")
    return args, [*namespace.inputs, *remaining]


def read_inputs_csv(csv_path: Path) -> list[tuple[str, str | None]]:
    with open(csv_path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        if "path" not in (reader.fieldnames or []):
            raise UsageError(f"{csv_path}: a CSV input needs a `path` column (and optionally `text`), got {reader.fieldnames}.")
        rows = []
        for row in reader:
            path = Path(row["path"]).expanduser()
            path = path if path.is_absolute() else csv_path.parent / path
            rows.append((str(path), (row.get("text") or "").strip() or None))
    return rows


def expand_inputs(inputs: list[str], transcript: str | None) -> list[tuple[str, str | None]]:
    """INPUT arguments -> (path, transcript) pairs in order. A path that does not exist is a usage error."""
    if not inputs:
        raise UsageError("no INPUT given: pass video files, folders or a `path,text` CSV.")
    items = []
    for value in inputs:
        path = Path(value).expanduser()
        if path.is_dir():
            videos = sorted(
                candidate for candidate in path.rglob("*") if candidate.is_file() and candidate.suffix.lower() in VIDEO_SUFFIXES
            )
            items.extend((str(video), None) for video in videos)
        elif path.suffix.lower() == ".csv" and path.is_file():
            items.extend(read_inputs_csv(path))
        elif path.exists():
            items.append((str(path), None))
        else:
            raise UsageError(f"{value}: no such file or folder.")
    if not items:
        raise UsageError(f"no video found in {', '.join(inputs)} (looked for {', '.join(VIDEO_SUFFIXES)}).")
    if transcript is not None:
        if len(inputs) != 1 or len(items) != 1 or Path(inputs[0]).is_dir() or inputs[0].lower().endswith(".csv"):
            raise UsageError("--transcript is for a single video INPUT; give several clips their text in a `path,text` CSV.")
        items = [(items[0][0], transcript)]
    return items


def transcribe_missing(args: PredictArguments, encoder, items, base_model_name_or_path):
    """Fills in the transcripts that are missing with the original checkpoint's generative Thinker."""
    import torch
    from tqdm.auto import tqdm

    from .generative import load_thinker, transcribe_clips
    from .media import MediaError

    missing = [index for index, (_, text) in enumerate(items) if not (text or "").strip()]
    if not missing:
        return items
    source = args.transcribe_model or base_model_name_or_path
    if not source:
        raise UsageError("--transcribe needs --transcribe_model PATH: the model config names no base checkpoint.")
    quantization = args.transcribe_quantization or ("4bit" if torch.cuda.is_available() else "none")
    print(f"transcribing {len(missing)} clip(s) with {source} ({quantization})", file=sys.stderr)
    thinker = load_thinker(source, quantization=quantization)
    items = list(items)
    for index in tqdm(missing, desc="transcribing", disable=not args.progress):
        path = items[index][0]
        try:
            clip = encoder.decode(path)
        except (MediaError, OSError, ValueError):
            continue  # scoring reports the unreadable file
        (text,) = transcribe_clips(thinker, encoder.processor, [clip], sampling_rate=encoder.settings.audio_sampling_rate)
        items[index] = (path, text)
    del thinker
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return items


def write_records(records: list[dict], output: str | None):
    columns = [*COLUMNS, *(["transcript"] if records and "transcript" in records[0] else [])]
    if output is not None and output.lower().endswith(".jsonl"):
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        with open(output, "w", encoding="utf-8") as file:
            for record in records:
                file.write(json.dumps({column: record[column] for column in columns}, ensure_ascii=False) + "\n")
        return
    file = open(output, "w", newline="", encoding="utf-8") if output is not None else sys.stdout
    try:
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)  # None -> empty cell; floats written with repr (they round-trip exactly)
    finally:
        if output is not None:
            file.close()


def run(args: PredictArguments, inputs: list[str]) -> int:
    import torch

    from .inference import SentimentScorer, prediction_record
    from .processing import ClipEncoder, parse_modalities

    if args.output is not None and not args.output.lower().endswith((".csv", ".jsonl")):
        raise UsageError(f"--output {args.output}: the suffix must be .csv or .jsonl.")
    if args.transcribe_quantization not in (None, "4bit", "none"):
        raise UsageError(f"--transcribe_quantization must be 4bit or none, got {args.transcribe_quantization!r}.")
    if args.batch_size < 1:
        raise UsageError(f"--batch_size must be at least 1, got {args.batch_size}.")
    if args.modalities is not None:
        try:
            parse_modalities(args.modalities)
        except ValueError as error:
            raise UsageError(f"--modalities: {error}") from error
    items = expand_inputs(inputs, args.transcript)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")

    transcribed = False
    if args.transcribe:
        try:
            encoder = ClipEncoder.from_pretrained(args.model, modalities=args.modalities)
        except OSError as error:
            raise UsageError(f"--model {args.model}: cannot load a saved regressor ({error}).") from error
        if "text" in encoder.settings.modalities:
            from configuration_omni_regressor import OmniRegressorConfig

            base = OmniRegressorConfig.from_pretrained(args.model).base_model_name_or_path
            items = transcribe_missing(args, encoder, items, base)
            transcribed = True
        else:
            print("--transcribe ignored: the model does not read text.", file=sys.stderr)

    try:
        scorer = SentimentScorer.from_pretrained(
            args.model, modalities=args.modalities, media_cache_dir=args.media_cache_dir, device=device
        )
    except OSError as error:
        raise UsageError(f"--model {args.model}: cannot load a saved regressor ({error}).") from error
    results = scorer.score_clips(
        [path for path, _ in items], [text for _, text in items], batch_size=args.batch_size, progress=args.progress
    )
    records = []
    for (_, text), result in zip(items, results):
        record = prediction_record(result, scorer.encoder.score_range)
        if transcribed:
            record["transcript"] = text or ""
        records.append(record)
        if result.error is not None:
            # Decoding errors already name the file; the others get it here.
            message = result.error if result.path in result.error else f"{result.path}: {result.error}"
            print(f"error: {message}", file=sys.stderr)
    write_records(records, args.output)
    failed = sum(result.error is not None for result in results)
    print(f"{len(results) - failed} of {len(results)} clips scored, {failed} failed.", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args, inputs = parse_arguments(argv)
        return run(args, inputs)
    except UsageError as error:
        print(f"omni-regressor predict: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exit_request:  # argparse: --help (0) or a malformed flag (2)
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
