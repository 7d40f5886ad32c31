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

import csv
import errno
import io
from collections import Counter
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from .arguments import OmniArgumentParser, ProcessingArguments, UsageError, at_least, default_num_workers
from .long_videos import window_items, write_video_rows
from .ray_engine import EngineArguments

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".wav", ".mp3", ".m4a", ".flac")
COLUMNS = ["path", "video_id", "clip_id", "score", "label_bucket", "acc2", "modalities", "error"]
OUTPUT_SUFFIXES = (".csv", ".jsonl", ".parquet")
PARQUET_ROWS_SUFFIX = ".rows.jsonl"
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)

DESCRIPTION = """\
Scores video clips with a saved sentiment regressor.

INPUT is any mix of media files, folders (searched recursively, in sorted order, for *.mp4 *.mkv *.avi *.mov *.webm
*.m4v and audio files) and CSV files with columns `path,text` (UTF-8 with or without BOM, or Latin-1; relative paths
are resolved against the CSV's folder; `text` is the transcript). Clips without a transcript run on the modalities
they have (the `modalities` column says which), or, with --transcribe, on a transcript written by the original
Thinker. Broken symbolic links in a folder are error rows, not silently skipped.

Output columns: path, video_id (the file's folder), clip_id (its name without suffix), score, label_bucket (Acc-7
class: the score clipped to the model's range, rounded half to even), acc2, modalities, error, transcript when
--transcribe ran, and truncated (True when the clip was longer than max_audio_seconds and only its beginning was
scored). Rows are written as they are scored, in input order; OUTPUT.provenance.json beside them records the model
(a fingerprint of its weights and config) and the resolved settings, and --resume refuses another model or settings.

--explain adds, per clip, the score with each of its modalities left out (score_without_text/audio/video) and the
difference to the full score (text_effect, ...): one more forward per modality, batched like the rest.

--window SECONDS [--hop SECONDS] scores each long video in windows (frames and audio cut per window): one row per
window (start, end, kind=window), then a whole-video row per video (kind=video, the duration-weighted mean) and a
timeline plot per video in --timeline_dir. A window takes its transcript from a subtitle file beside the video
(clip.srt or clip.vtt, cues by time) or, with --transcribe, from its own audio."""

EPILOG = """\
exit status: 0 if every input was scored, 1 if any could not be (each is named on stderr and has an error row),
2 for usage errors (no inputs, a missing path, a bad flag value, an output that exists without --resume/--overwrite).

rows are written as they are scored: a killed run (or Ctrl-C, exit 130) keeps its rows, and the same command with
--resume scores only the inputs missing from --output (error rows count as done, except those the machine caused:
memory, disk; --overwrite scores everything again). --resume refuses an output written by another model or with
other settings (OUTPUT.provenance.json records both). One run writes an output at a time (OUTPUT.lock).

many processes / GPUs / machines: torchrun --nproc_per_node N [--nnodes M --node_rank R --rdzv_endpoint HOST:PORT]
--no-python omni-regressor predict ... --output FILE (or accelerate launch): inputs are sharded by rank, each rank
writes FILE.partial-*.jsonl and rank 0 merges one output in input order (FILE must be on a file system every machine
sees). A failed rank fails the launch; rerun the same command with --resume to score only what is missing.

a corpus across machines: --engine ray [--ray_address auto --num_scorers N --scorer_gpus G --decode_cpus C] (pip
install "omni-regressor[ray]"): decoding in Ray tasks, scoring in Ray actors, rows written here; INPUT may also be a
Parquet/CSV manifest (path[,text]) on any pyarrow file system (s3://, gs://). See docs/scale.md."""


@dataclass
class PredictArguments:
    _argument_group_name = "predict"
    model: str = field(metadata={"help": "Saved regressor: an exported folder or a Hub id."})
    transcript: str | None = field(default=None, metadata={"help": "Transcript of the clip, for a single INPUT file."})
    batch_size: int = field(default=8, metadata={"help": "Clips per forward pass (grouped by modalities, sorted by length)."})
    output: str | None = field(default=None, metadata={"help": "Output file, .csv, .jsonl or .parquet by suffix (default: CSV "
                                                               "on stdout). Parquet: rows go to X.parquet.rows.jsonl as they "
                                                               "are scored (resumable), X.parquet is written at the end."})
    resume: bool = field(default=False, metadata={"help": "Keep the rows already in --output and score only the missing inputs."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing --output."})
    transcribe: bool = field(default=False, metadata={"help": "Transcribe clips that have no transcript with the original Thinker first."})
    transcribe_model: str | None = field(default=None, metadata={
        "help": "Checkpoint for --transcribe (default: the model config's base_model_name_or_path)."})
    transcribe_quantization: str | None = field(default=None, metadata={
        "help": "4bit or none for the transcribing Thinker (default: 4bit on CUDA, none on CPU).", "choices": ["4bit", "none"]})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1, ... (default: this rank's GPU if any, else cpu)."})
    num_workers: int | None = field(default=None, metadata={
        "help": "Worker processes that decode and encode clips (default: up to 4 with a GPU, one core left for the main "
        "process; on CPU only from 8 cores)."})
    chunk_batches: int = field(default=4, metadata={
        "help": "Batches' worth of clips scored together as one chunk, sorted by length (less padding); memory holds "
                "one chunk of encoded clips, whatever the number of inputs (--window_batches: its former name).",
        "aliases": ["--window_batches", "--window-batches"]})
    progress: bool = field(default=True, metadata={"help": "Progress bar on stderr."})
    explain: bool = field(default=False, metadata={
        "help": "Add each clip's score without each of its modalities, and the difference to the full score."})
    window: float | None = field(default=None, metadata={"help": "Score long videos in windows of this many seconds."})
    hop: float | None = field(default=None, metadata={"help": "Seconds between window starts (default: --window)."})
    trust_remote_code: bool = field(default=False, metadata={
        "help": "Run the Python files of the --model folder (or Hub repo) instead of this package's classes; only for "
                "a folder whose code you trust."})
    timeline_dir: str | None = field(default=None, metadata={
        "help": "Where --window writes one timeline PNG per video (default: <output>_timelines beside --output, "
        "else ./timelines)."})

    def validate(self):
        at_least(self, batch_size=1, chunk_batches=1, num_workers=0)
        if self.output is not None and not self.output.lower().endswith(OUTPUT_SUFFIXES):
            raise ValueError(f"--output {self.output}: the suffix must be .csv, .jsonl or .parquet.")
        if self.resume and self.overwrite:
            raise ValueError("--resume and --overwrite exclude each other.")
        for name in ("window", "hop"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"--{name} must be a positive number of seconds, got {value}.")
        if self.hop is not None and self.window is None:
            raise ValueError("--hop needs --window.")
        if self.resume and self.output is None:
            raise ValueError("--resume needs --output (the file whose rows are kept).")
        if self.device is not None and self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"--device {self.device}: no CUDA device is available here.")


def build_parser() -> OmniArgumentParser:
    parser = OmniArgumentParser((PredictArguments, ProcessingArguments, EngineArguments), prog="omni-regressor predict",
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
    args, processing_args, engine, remaining = parser.parse(explicit_booleans(list(argv), parser), allow_remaining=True)
    unknown = [token for token in remaining if token.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args, processing_args, engine, remaining


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
            elif path.suffix.lower() in VIDEO_SUFFIXES:
                print(f"note: {path} is a folder, not a media file; searched as a folder.", file=sys.stderr)
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
            found = folder_files(path)
            if path.suffix.lower() in VIDEO_SUFFIXES:  # named like a clip: say what it is rather than skip it quietly
                print(f"note: {value} is a folder, not a media file; {len(found)} media files found in it.",
                      file=sys.stderr)
            items.extend((str(file), None) for file in found)
        elif path.suffix.lower() == ".csv" and path.is_file():
            items.extend(read_inputs_csv(path))
        elif path.exists() or path.is_symlink():
            items.append((str(path), None))
        else:
            raise UsageError(f"{value}: no such file or folder.")
    if not items:
        raise UsageError(f"no media file found in {', '.join(inputs)} (looked for {', '.join(VIDEO_SUFFIXES)}).")
    for path, _ in items:
        if "\n" in path or "\r" in path:  # an output row is one line: such a name could not be matched on --resume
            raise UsageError(f"{path!r}: a file name with a line break cannot be scored; rename the file.")
    if transcript is not None:
        if len(inputs) != 1 or len(items) != 1 or Path(inputs[0]).is_dir() or inputs[0].lower().endswith(".csv"):
            raise UsageError("--transcript is for a single INPUT file; give several clips their text in a `path,text` CSV.")
        items = [(items[0][0], transcript)]
    return items


# --- output --------------------------------------------------------------------------------------------------------

# The output file itself (rows, order, resume, provenance, lock) is `omni_regressor.outputs`; these names stay here.
from .outputs import OutputError, OutputFile, ResumePlan, RowWriter, keyed_rows, read_rows  # noqa: E402,F401


def check_output(args: PredictArguments, inputs: list[str] = ()) -> None:
    """Refuses, before anything loads, an output that would be overwritten, cannot be written, or is an input."""
    if args.output is None:
        return
    output = Path(args.output)
    if output.is_dir():
        raise UsageError(f"--output {output} is a folder; give a .csv or .jsonl file path.")
    if output.exists() and not (args.resume or args.overwrite):
        raise UsageError(f"--output {output} exists; pass --resume to complete it or --overwrite to replace it.")
    if output.exists() and not os.access(output, os.W_OK):
        raise UsageError(f"--output {output} is read-only.")
    for value in inputs:
        if Path(value).exists() and output.exists() and os.path.samefile(value, output):
            raise UsageError(f"--output {output} is also an INPUT: it would be overwritten; write to another file.")
    from .outputs import unwritable_reason

    reason = unwritable_reason(output.parent)  # the folders are created with the file
    if reason is not None:
        raise UsageError(f"--output {output}: {reason}")


def record_for(item, result, score_range, transcribed: bool, windowed: bool = False) -> dict:
    from pipeline_omni_regressor import prediction_record

    record = prediction_record(result, score_range)
    path = Path(result.path)
    record["video_id"], record["clip_id"] = path.parent.name, path.stem
    record["truncated"] = bool(result.extras.get("truncated")) if result.score is not None else None
    if transcribed:
        record["transcript"] = item.transcript or ""
    if windowed:
        known = item.error is None  # a video that could not be windowed has no window
        record.update(start=item.start if known else None, end=item.end if known else None, kind="window")
    return record


def output_columns(modalities, transcribed: bool, explain: bool, windowed: bool) -> list[str]:
    columns = [*COLUMNS]
    if windowed:
        columns[1:1] = ["start", "end", "kind"]
    if explain:
        columns += [f"{prefix}{name}{suffix}" for name in modalities for prefix, suffix in (("score_without_", ""), ("", "_effect"))]
    return columns + (["transcript"] if transcribed else []) + (["timeline"] if windowed else []) + ["truncated"]


# --- the command ---------------------------------------------------------------------------------------------------


class FewerModalities:
    """Counts the clips scored on fewer modalities than the model reads, by reason (no transcript, no audio, ...)."""

    def __init__(self):
        self.clips, self.reasons = 0, Counter()

    def add(self, result) -> None:
        if result.error is None and result.missing:
            self.clips += 1
            self.reasons.update(result.missing.values())

    def summary(self, modalities) -> str:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(self.reasons.items()))
        return (f"{self.clips} clips scored on fewer modalities than the model reads ({'+'.join(modalities)}): "
                f"{reasons} (the modalities column says which each used).")


def lock_output(output: OutputFile | None, dist, rank: int) -> None:
    """Rank 0 takes the output's lock; every rank learns whether it could (a second writer stops, exit 2)."""
    error = None
    if output is not None and rank == 0:
        try:
            output.acquire()
        except OutputError as refusal:
            error = str(refusal)
    if dist is not None:
        box = [error]
        dist.broadcast_object_list(box, src=0)
        error = box[0]
    if error is not None:
        raise UsageError(error)


def parquet_output(args: PredictArguments) -> tuple[PredictArguments, Path | None]:
    """`--output X.parquet`: the rows are written (and resumed) as `X.parquet.rows.jsonl`, X.parquet at the end."""
    if not (args.output and args.output.lower().endswith(".parquet")):
        return args, None
    parquet = Path(args.output)
    if parquet.is_dir():
        raise UsageError(f"--output {parquet} is a folder; give a .csv, .jsonl or .parquet file path.")
    if parquet.exists() and not (args.resume or args.overwrite):
        raise UsageError(f"--output {parquet} exists; pass --resume to complete it or --overwrite to replace it.")
    return replace(args, output=f"{parquet}{PARQUET_ROWS_SUFFIX}"), parquet


def run(args: PredictArguments, processing_args: ProcessingArguments, inputs: list[str], engine=None) -> int:
    from .outputs import write_parquet
    from .streaming import distributed, world

    args, parquet = parquet_output(args)
    check_output(args, inputs)
    rank, world_size = world()
    if engine is not None and engine.uses_ray:
        from .ray_engine import check_ray_run

        check_ray_run(args.transcribe, world_size)
    if world_size > 1 and args.output is None:
        raise UsageError(f"--output is needed with {world_size} processes: rank 0 merges every rank's rows into it.")
    with distributed() as dist:
        output = OutputFile(args.output, COLUMNS) if args.output else None
        lock_output(output, dist, rank)
        try:
            if rank == 0:
                check_output(args, inputs)  # again, under the lock: another run may have written it meanwhile
            status = run_on_this_rank(args, processing_args, inputs, dist, output, engine)
            if parquet is not None and rank == 0:
                write_parquet(Path(args.output), parquet)
            return status
        finally:
            if output is not None:
                output.release()


def run_on_this_rank(args: PredictArguments, processing_args: ProcessingArguments, inputs: list[str], dist,
                     output: OutputFile | None = None, engine=None) -> int:
    """This process's share of the inputs scored into the output (all of them for one process); rank 0 then merges
    every rank's rows and sums up. -> the exit status."""
    from .model_loading import check_model_folder
    from .streaming import barrier, input_keys, shard, world

    check_model_folder(args.model)
    rank, world_size = world()
    on_ray = engine is not None and engine.uses_ray
    # 1. Inputs -> items: one per clip (or per window of a long video), each with a key that survives a rerun.
    items = input_items(args, inputs, on_ray)
    keys = input_keys(items)
    if output is not None:
        output.interrupted_run(args.resume, args.overwrite)  # refused before the model loads
    # 2. The scorer (the model here, or on the scorer actors of a Ray cluster) and the columns of its rows.
    scorer = load_scorer(args, processing_args, engine)
    transcribed = args.transcribe and "text" in scorer.encoder.settings.modalities
    columns = output_columns(scorer.encoder.settings.modalities, transcribed, args.explain, args.window is not None)
    # 3. The output plan: what is done (read by every rank before any of them writes) and where the rows go.
    if output is not None:
        output.columns = columns
        output.provenance = run_provenance(args, scorer, columns, transcribed, on_ray)
    plan = plan_output(args, output, keys, dist)
    todo = [item for item, key in zip(items, keys) if key not in plan.done]
    if args.resume and rank == 0:
        print(f"resuming: {len(items) - len(todo)} of {len(items)} inputs already scored.", file=sys.stderr)
    # 4. Transcripts for this rank's clips that have none (--transcribe).
    mine = transcribe_missing(args, scorer, shard(todo, rank, world_size), transcribed)
    # 5. This rank's rows, scored and written in input order (with their input keys into a partial file).
    writer = output.writer(plan, rank) if output is not None else RowWriter(None, columns, append=False)
    input_key = dict(zip((item.index for item in items), keys)) if plan.staged else None
    failed_now, fewer_modalities = score_and_write(args, scorer, mine, writer, input_key, transcribed, on_ray)
    barrier(dist)  # every rank's rows are on disk
    if rank != 0:
        return EXIT_SOME_FAILED if failed_now else EXIT_OK
    # 6. Rank 0: one output in input order, the counts, and with --window the whole-video rows.
    rows = output.finish(plan, keys) if output is not None else None
    todo_keys = [key for key in keys if key not in plan.done]
    failed = report_counts(todo_keys, rows, failed_now, fewer_modalities, scorer.encoder.settings.modalities)
    if args.window is not None and output is not None:
        timeline_dir = Path(args.timeline_dir) if args.timeline_dir else None
        write_video_rows(output.path, scorer.encoder.score_range, columns, timeline_dir)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def input_items(args: PredictArguments, inputs: list[str], on_ray: bool) -> list:
    """INPUT arguments -> one `InputItem` per clip, or with --window one per window of each video."""
    from .streaming import InputItem

    if on_ray:  # Ray Data on a cluster (omni_regressor.ray_engine): the same items, rows and files
        from .ray_engine import expand_ray_inputs

        pairs = expand_ray_inputs(inputs, args.transcript, expand_inputs)
    else:
        pairs = expand_inputs(inputs, args.transcript)
    if args.window is not None:
        return window_items(pairs, args.window, args.hop)
    return [InputItem(index, path, text) for index, (path, text) in enumerate(pairs)]


def load_scorer(args: PredictArguments, processing_args: ProcessingArguments, engine):
    """The model that scores: loaded in this process (`SentimentScorer`), or by the scorer actors of a Ray cluster
    (`RayScorer`: the driver holds the encoder only)."""
    if engine is not None and engine.uses_ray:
        from .ray_engine import RayScorer

        return RayScorer.from_pretrained(args.model, engine, media_cache_dir=processing_args.media_cache_dir,
                                         processing=processing_args)
    from .inference import SentimentScorer
    from .streaming import default_device

    return SentimentScorer.from_pretrained(
        args.model, media_cache_dir=processing_args.media_cache_dir, device=args.device or default_device(),
        processing=processing_args, trust_remote_code=getattr(args, "trust_remote_code", False),
    )


def run_provenance(args: PredictArguments, scorer, columns: list[str], transcribed: bool, on_ray: bool) -> dict:
    """What makes the rows: the model (a fingerprint of its weights and config), the resolved processing settings
    with the flags that shape rows, and the columns."""
    from .outputs import model_fingerprint, provenance

    commit = getattr(scorer.config if on_ray else scorer.model.config, "_commit_hash", None)
    settings = {**scorer.encoder.settings.to_dict(), "explain": args.explain, "transcribe": transcribed,
                "window": args.window, "hop": args.hop}
    return provenance(args.model, model_fingerprint(args.model, commit), settings, columns)


def plan_output(args: PredictArguments, output: OutputFile | None, keys: list[str], dist) -> ResumePlan:
    """Every rank reads what is done before any of them writes a row (another model, other settings or rows of other
    inputs are refused, exit 2); after the barrier, rank 0 removes what --overwrite replaces."""
    from .streaming import barrier, world

    rank, world_size = world()
    plan = output.plan(keys, args.resume, args.overwrite, sharded=world_size > 1) if output is not None else ResumePlan()
    barrier(dist)
    if rank == 0 and output is not None:
        output.prepare(plan)
    return plan


def transcribe_missing(args: PredictArguments, scorer, items: list, transcribed: bool) -> list:
    """--transcribe: each item without a transcript gets the one the original Thinker writes of its audio."""
    if not transcribed:
        if args.transcribe:
            print("--transcribe ignored: the model does not read text.", file=sys.stderr)
        return items
    from .transcribe import transcribe_items

    source = args.transcribe_model or scorer.model.config.base_model_name_or_path
    if not source or source.startswith("local:"):  # an export names a local base by a placeholder, not its path
        raise UsageError("--transcribe needs --transcribe_model PATH: the model config names no base checkpoint "
                         f"on the Hub ({source or 'none'}).")
    missing = [item for item in items if not (item.transcript or "").strip() and item.error is None]
    texts = transcribe_items(source, scorer.encoder, missing, args.transcribe_quantization, progress=args.progress)
    replaced = {item.index: replace(item, transcript=text) for item, text in zip(missing, texts)}
    return [replaced.get(item.index, item) for item in items]


def score_and_write(args: PredictArguments, scorer, items: list, writer: RowWriter, input_key: dict | None,
                    transcribed: bool, on_ray: bool) -> tuple[int, FewerModalities]:
    """Scores `items` and writes each row as soon as it and every item before it are done (with `input_key`, rows of
    a partial file, each row also carries its input's key); each failure is named on stderr.
    -> (rows with an error, the clips scored on fewer modalities)."""
    from tqdm.auto import tqdm

    from .streaming import stream_scores, world

    rank, world_size = world()
    failed, fewer_modalities = 0, FewerModalities()
    num_workers = default_num_workers() if args.num_workers is None else args.num_workers
    bar = tqdm(total=len(items), desc=f"scoring{f' (rank {rank})' if world_size > 1 else ''}", unit="clip",
               disable=not args.progress)
    try:
        scores = (scorer.stream(items, args.batch_size, args.chunk_batches, explain=args.explain) if on_ray else
                  stream_scores(scorer.model, scorer.encoder, items, args.batch_size, num_workers, args.chunk_batches,
                                device=scorer.device, explain=args.explain))
        for item, result in scores:
            record = record_for(item, result, scorer.encoder.score_range, transcribed, args.window is not None)
            if input_key is not None:
                record["input_key"] = input_key[item.index]
            writer.write(record)
            fewer_modalities.add(result)
            if record["error"]:
                failed += 1
                message = record["error"] if result.path in record["error"] else f"{result.path}: {record['error']}"
                print(f"error: {message}", file=sys.stderr)
            bar.update(1)
    finally:
        bar.close()
        writer.close()
    return failed, fewer_modalities


def report_counts(todo_keys, rows: dict[str, dict] | None, failed_now: int, fewer_modalities: FewerModalities,
                  modalities) -> int:
    """The run's counts on stderr (`rows`: the output's rows by input key; None for CSV on stdout).
    -> the number of rows with an error (in the whole output when there is one)."""
    if rows:
        failed_now = sum(bool(rows[key].get("error")) for key in set(todo_keys))
    print(f"{len(todo_keys) - failed_now} of {len(todo_keys)} clips scored now, {failed_now} failed; "
          f"{len(todo_keys) if rows is None else len(rows)} rows in the output.", file=sys.stderr)
    if fewer_modalities.clips:
        print(fewer_modalities.summary(modalities), file=sys.stderr)
    return sum(bool(row.get("error")) for row in rows.values()) if rows else failed_now


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args, processing_args, engine, inputs = parse_arguments(argv)
        return run(args, processing_args, inputs, engine)
    except (UsageError, OutputError) as error:
        print(f"omni-regressor predict: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("omni-regressor predict: interrupted; the rows written so far are kept (rerun with --resume).",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:
        if error.errno not in WRITE_ERRNOS:
            raise
        where = args.output if "args" in locals() and args.output else "the output"
        print(f"omni-regressor predict: error: cannot write {where}: {error.strerror}; the rows written so far are "
              "kept: make room and rerun with --resume.", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exit_request:  # argparse: --help (0) or a malformed flag (2)
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
