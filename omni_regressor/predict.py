"""`omni-regressor predict`: score videos with a saved regressor, streamed, resumable, shardable over processes.

    omni-regressor predict --model runs/demo/run/model clips/ more.mp4 --output scores.csv
    omni-regressor predict --model runs/demo/run/model clip.mp4 --transcript "I loved it"
    omni-regressor predict --model runs/demo/run/model table.csv --transcribe
    torchrun --nproc_per_node 4 --no-python omni-regressor predict --model M clips/ --output scores.jsonl

Inputs are expanded into (path, transcript) items, optionally transcribed, then streamed through
`omni_regressor.streaming` (decode + encode in worker processes, batches by modality set and length); each row is
written as soon as it and every input before it are done, so a killed run keeps its rows and `--resume` scores only
what is missing.
"""

import argparse
import csv
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .arguments import OmniArgumentParser, ProcessingArguments, default_num_workers

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".wav", ".mp3", ".m4a", ".flac")
COLUMNS = ["path", "video_id", "clip_id", "score", "label_bucket", "acc2", "modalities", "error"]
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Scores video clips with a saved sentiment regressor.

INPUT is any mix of media files, folders (searched recursively, in sorted order, for *.mp4 *.mkv *.avi *.mov *.webm
*.m4v and audio files) and CSV files with columns `path,text` (UTF-8 with or without BOM, or Latin-1; relative paths
are resolved against the CSV's folder; `text` is the transcript). Clips without a transcript run on the modalities
they have (the `modalities` column says which), or, with --transcribe, on a transcript written by the original
Thinker. Broken symbolic links in a folder are error rows, not silently skipped.

Output columns: path, video_id (the file's folder), clip_id (its name without suffix), score, label_bucket (Acc-7
class: the score clipped to the model's range, rounded half to even), acc2, modalities, error, and transcript when
--transcribe ran. Rows are written as they are scored, in input order."""

EPILOG = """\
exit status: 0 if every input was scored, 1 if any could not be (each is named on stderr and has an error row),
2 for usage errors (no inputs, a missing path, a bad flag value, an output that exists without --resume/--overwrite).

many processes / GPUs / machines: torchrun --nproc_per_node N [--nnodes M --node_rank R --rdzv_endpoint HOST:PORT]
--no-python omni-regressor predict ... (or accelerate launch): inputs are sharded by rank, rank 0 merges one output."""


class UsageError(ValueError):
    """A problem with the command line itself: exit status 2, nothing is scored."""


@dataclass
class PredictArguments:
    model: str = field(metadata={"help": "Saved regressor: an exported folder or a Hub id."})
    transcript: str | None = field(default=None, metadata={"help": "Transcript of the clip, for a single INPUT file."})
    batch_size: int = field(default=8, metadata={"help": "Clips per forward pass (grouped by modalities, sorted by length)."})
    output: str | None = field(default=None, metadata={"help": "Output file, .csv or .jsonl by suffix (default: CSV on stdout)."})
    resume: bool = field(default=False, metadata={"help": "Keep the rows already in --output and score only the missing inputs."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing --output."})
    transcribe: bool = field(default=False, metadata={"help": "Transcribe clips that have no transcript with the original Thinker first."})
    transcribe_model: str | None = field(default=None, metadata={
        "help": "Checkpoint for --transcribe (default: the model config's base_model_name_or_path)."})
    transcribe_quantization: str | None = field(default=None, metadata={
        "help": "4bit or none for the transcribing Thinker (default: 4bit on CUDA, none on CPU).", "choices": ["4bit", "none"]})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1, ... (default: this rank's GPU if any, else cpu)."})
    num_workers: int | None = field(default=None, metadata={
        "help": "Worker processes that decode and encode clips (default: up to 4, one core left for the main process)."})
    progress: bool = field(default=True, metadata={"help": "Progress bar on stderr."})

    def validate(self):
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be at least 1, got {self.batch_size}.")
        if self.num_workers is not None and self.num_workers < 0:
            raise ValueError(f"--num_workers must be 0 or more, got {self.num_workers}.")
        if self.output is not None and not self.output.lower().endswith((".csv", ".jsonl")):
            raise ValueError(f"--output {self.output}: the suffix must be .csv or .jsonl.")
        if self.resume and self.overwrite:
            raise ValueError("--resume and --overwrite exclude each other.")
        if self.resume and self.output is None:
            raise ValueError("--resume needs --output (the file whose rows are kept).")
        if self.device is not None and self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"--device {self.device}: no CUDA device is available here.")


def build_parser() -> OmniArgumentParser:
    parser = OmniArgumentParser((PredictArguments, ProcessingArguments), prog="omni-regressor predict",
                                description=DESCRIPTION, epilog=EPILOG)
    return parser


def explicit_booleans(argv: list[str], parser) -> list[str]:
    """`--transcribe clip.mp4` -> `--transcribe true clip.mp4`: a bare boolean flag must not swallow an INPUT."""
    flags = {option for action in parser._actions if action.const is True and action.nargs == "?"
             for option in action.option_strings}
    values = {"true", "false", "yes", "no", "t", "f", "y", "n", "1", "0"}
    result = []
    for position, token in enumerate(argv):
        result.append(token)
        following = argv[position + 1] if position + 1 < len(argv) else None
        if token in flags and (following is None or following.lower() not in values):
            result.append("true")
    return result


def parse_arguments(argv):
    parser = build_parser()
    args, processing_args, remaining = parser.parse(explicit_booleans(list(argv), parser), allow_remaining=True)
    unknown = [token for token in remaining if token.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args, processing_args, remaining


# --- inputs --------------------------------------------------------------------------------------------------------


def read_inputs_csv(csv_path: Path) -> list[tuple[str, str | None]]:
    from .data.labels import read_text

    reader = csv.DictReader(io.StringIO(read_text(csv_path)))
    fields = [name.strip() for name in reader.fieldnames or []]
    if "path" not in fields:
        raise UsageError(f"{csv_path}: a CSV input needs a `path` column (and optionally `text`), got {reader.fieldnames}.")
    rows = []
    for row in reader:
        row = {key.strip(): value for key, value in row.items() if key is not None}
        path = Path((row.get("path") or "").strip()).expanduser()
        path = path if path.is_absolute() else csv_path.parent / path
        rows.append((str(path), (row.get("text") or "").strip() or None))
    return rows


def folder_files(folder: Path) -> list[Path]:
    """Media files under `folder`, sorted; symbolic links to files are followed, links to folders are not (no loops),
    and broken or looping links are returned too (they become error rows)."""
    found = []
    for directory, subdirectories, files in os.walk(folder, followlinks=False):
        subdirectories.sort()
        for name in subdirectories:
            path = Path(directory) / name
            if path.is_symlink():
                print(f"note: {path} is a symbolic link to a folder; not followed.", file=sys.stderr)
        for name in sorted(files):
            path = Path(directory) / name
            if path.suffix.lower() in VIDEO_SUFFIXES:
                found.append(path)
    return sorted(found)


def expand_inputs(inputs: list[str], transcript: str | None) -> list[tuple[str, str | None]]:
    """INPUT arguments -> (path, transcript) pairs in order. A path that does not exist is a usage error."""
    if not inputs:
        raise UsageError("no INPUT given: pass media files, folders or a `path,text` CSV.")
    items = []
    for value in inputs:
        path = Path(value).expanduser()
        if path.is_dir():
            items.extend((str(found), None) for found in folder_files(path))
        elif path.suffix.lower() == ".csv" and path.is_file():
            items.extend(read_inputs_csv(path))
        elif path.exists() or path.is_symlink():
            items.append((str(path), None))
        else:
            raise UsageError(f"{value}: no such file or folder.")
    if not items:
        raise UsageError(f"no media file found in {', '.join(inputs)} (looked for {', '.join(VIDEO_SUFFIXES)}).")
    if transcript is not None:
        if len(inputs) != 1 or len(items) != 1 or Path(inputs[0]).is_dir() or inputs[0].lower().endswith(".csv"):
            raise UsageError("--transcript is for a single INPUT file; give several clips their text in a `path,text` CSV.")
        items = [(items[0][0], transcript)]
    return items


# --- output --------------------------------------------------------------------------------------------------------


def check_output(args: PredictArguments) -> None:
    """Refuses, before anything loads, an output that would be overwritten or cannot be written."""
    if args.output is None:
        return
    output = Path(args.output)
    if output.is_dir():
        raise UsageError(f"--output {output} is a folder; give a .csv or .jsonl file path.")
    if output.exists() and not (args.resume or args.overwrite):
        raise UsageError(f"--output {output} exists; pass --resume to complete it or --overwrite to replace it.")
    parent = output.parent
    existing = next((folder for folder in [parent, *parent.parents] if folder.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"--output {output}: {existing} is a file, not a folder.")
    if existing is not None and not os.access(existing, os.W_OK):
        raise UsageError(f"--output {output}: {existing} is not writable.")


class RowWriter:
    """Appends rows to CSV/JSONL (or CSV on stdout), one complete line per write, flushed at once."""

    def __init__(self, output: Path | None, columns: list[str], append: bool):
        self.columns, self.output = columns, output
        self.jsonl = output is not None and output.suffix.lower() == ".jsonl"
        if output is None:
            self.file = sys.stdout
            write_header = True
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            write_header = not (append and output.is_file() and output.stat().st_size > 0)
            self.file = open(output, "a" if append else "w", newline="", encoding="utf-8")
        if write_header and not self.jsonl:
            self._write_line(self._csv_line(self.columns))

    def _csv_line(self, values) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        return buffer.getvalue()

    def _write_line(self, line: str):
        self.file.write(line)
        self.file.flush()

    def write(self, record: dict):
        if self.jsonl:
            self._write_line(json.dumps({column: record.get(column) for column in self.columns}, ensure_ascii=False) + "\n")
        else:
            values = ["" if record.get(column) is None else repr(record[column]) if isinstance(record.get(column), float)
                      else record[column] for column in self.columns]
            self._write_line(self._csv_line(values))

    def close(self):
        if self.file is not sys.stdout:
            self.file.close()


def read_rows(output: Path) -> list[dict]:
    """Rows of an existing CSV/JSONL output (a half-written last line, from a kill, is cut off first)."""
    from .streaming import read_complete_lines

    lines = read_complete_lines(output)
    if output.suffix.lower() == ".jsonl":
        return [json.loads(line) for line in lines if line.strip()]
    return list(csv.DictReader(lines))


def keyed_rows(output: Path) -> dict[str, dict]:
    """The rows of an existing output by input key (`path#n`: the n-th row of that path)."""
    rows, occurrence = {}, {}
    for row in read_rows(output) if output.is_file() else []:
        count = occurrence.get(row["path"], 0)
        rows[f"{row['path']}#{count}"] = row
        occurrence[row["path"]] = count + 1
    return rows


def record_for(item, result, score_range, transcribed: bool) -> dict:
    from pipeline_omni_regressor import prediction_record

    record = prediction_record(result, score_range)
    path = Path(result.path)
    record["video_id"], record["clip_id"] = path.parent.name, path.stem
    if transcribed:
        record["transcript"] = item.transcript or ""
    return record


# --- the command ---------------------------------------------------------------------------------------------------


def run(args: PredictArguments, processing_args: ProcessingArguments, inputs: list[str]) -> int:
    import torch
    from tqdm.auto import tqdm

    from .inference import SentimentScorer, check_model_folder
    from .streaming import (InputItem, barrier, init_distributed, input_keys, partial_path, read_partial_rows, shard,
                            stream_scores, world)

    check_output(args)
    check_model_folder(args.model)
    pairs = expand_inputs(inputs, args.transcript)
    items = [InputItem(index, path, text) for index, (path, text) in enumerate(pairs)]
    keys = input_keys(items)
    output = Path(args.output) if args.output else None
    dist = init_distributed()
    rank, world_size = world()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = args.device or (f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")

    # Resume: the rows already written (the output, and partial files of an interrupted sharded run).
    done = set()
    if args.resume and output is not None:
        done = set(keyed_rows(output)) | {row["input_key"] for row in read_partial_rows(output)}
    todo = [item for item, key in zip(items, keys) if key not in done]
    if args.resume and rank == 0:
        print(f"resuming: {len(items) - len(todo)} of {len(items)} inputs already scored.", file=sys.stderr)

    scorer = SentimentScorer.from_pretrained(
        args.model, media_cache_dir=processing_args.media_cache_dir, device=device,
        modalities=processing_args.modalities, processing={k: v for k, v in processing_args.overrides().items() if k != "modalities"},
    )
    if args.transcribe and "text" in scorer.encoder.settings.modalities:
        from .transcribe import transcribe_paths

        source = args.transcribe_model or scorer.model.config.base_model_name_or_path
        if not source:
            raise UsageError("--transcribe needs --transcribe_model PATH: the model config names no base checkpoint.")
        missing = [item for item in todo if not (item.transcript or "").strip()]
        texts = transcribe_paths(source, scorer.encoder, [item.path for item in missing], args.transcribe_quantization,
                                 progress=args.progress)
        replaced = {item.index: InputItem(item.index, item.path, text) for item, text in zip(missing, texts)}
        todo = [replaced.get(item.index, item) for item in todo]
    elif args.transcribe:
        print("--transcribe ignored: the model does not read text.", file=sys.stderr)
    transcribed = args.transcribe and "text" in scorer.encoder.settings.modalities
    columns = [*COLUMNS, *(["transcript"] if transcribed else [])]

    mine = shard(todo, rank, world_size)
    sharded = world_size > 1
    destination = partial_path(output, rank) if sharded and output is not None else output
    writer = RowWriter(destination, columns + (["input_key"] if sharded else []), append=args.resume or sharded)
    key_of = dict(zip((item.index for item in items), keys))
    failed = 0
    num_workers = default_num_workers() if args.num_workers is None else args.num_workers
    bar = tqdm(total=len(mine), desc=f"scoring{f' (rank {rank})' if sharded else ''}", unit="clip",
               disable=not args.progress)
    try:
        for item, result in stream_scores(scorer.model, scorer.encoder, mine, args.batch_size, num_workers,
                                          device=scorer.device):
            record = record_for(item, result, scorer.encoder.score_range, transcribed)
            if sharded:
                record["input_key"] = key_of[item.index]
            writer.write(record)
            if result.error is not None:
                failed += 1
                message = result.error if result.path in result.error else f"{result.path}: {result.error}"
                print(f"error: {message}", file=sys.stderr)
            bar.update(1)
    finally:
        bar.close()
        writer.close()

    if sharded:
        barrier(dist)
        if rank == 0 and output is not None:
            failed = merge_outputs(output, items, keys, columns, args.resume)
        barrier(dist)
        if rank != 0:
            return EXIT_SOME_FAILED if failed else EXIT_OK
    if rank == 0:
        scored = len(items) if output is None else len(read_rows(output))
        print(f"{len(mine) - failed} of {len(mine)} clips scored now, {failed} failed; {scored} rows in the output.",
              file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def merge_outputs(output: Path, items, keys, columns, resume: bool) -> int:
    """Rank 0: the output rows and every rank's partial rows -> one output in input order; partials removed."""
    from .streaming import partial_files, read_partial_rows

    by_key = keyed_rows(output) if resume else {}
    for row in read_partial_rows(output):
        by_key[row.pop("input_key")] = row
    missing = [key for key in keys if key not in by_key]
    if missing:
        raise RuntimeError(f"{len(missing)} inputs have no row after the merge (first: {missing[0]}); rerun with --resume.")
    temporary = output.with_name(f".{output.name}.merging")
    writer = RowWriter(temporary, columns, append=False)
    failed = 0
    for key in keys:
        row = by_key[key]
        failed += bool(row.get("error"))
        writer.write({column: row.get(column) for column in columns})
    writer.close()
    os.replace(temporary, output)
    for path in partial_files(output):
        path.unlink()
    return failed


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args, processing_args, inputs = parse_arguments(argv)
        return run(args, processing_args, inputs)
    except UsageError as error:
        print(f"omni-regressor predict: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exit_request:  # argparse: --help (0) or a malformed flag (2)
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
