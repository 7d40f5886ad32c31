"""Writing results: the resumable output file of scored rows (`OutputFile`), and whole JSON files.

An output (`predict --output`, or any scoring engine built on this module) is a CSV or JSONL file of rows in input
order, plus a provenance file beside it, `<output>.provenance.json`, written before the first row:

    {"format": 1, "model": {"name_or_path": ..., "fingerprint": "sha256:..."}, "settings": {...}, "columns": [...]}

`fingerprint` hashes the model's config.json and weight files (Hub ids: the id and commit); `settings` are the
resolved processing settings and the flags that change a row. A resumed run must match all three, so one file never
mixes two models or two sets of settings. While a run writes an output it holds `<output>.lock` (`filelock`): a
second writer is refused at once, naming the file.

    output = OutputFile(path, columns, provenance)
    with output.locked():                        # OutputError if another run writes it
        plan = output.plan(keys, resume=True, overwrite=False, sharded=False)  # what is done, where new rows go
        output.prepare(plan)                     # --overwrite: the old files go (one process, after every plan)
        writer = output.writer(plan, tag=0)      # one row, one line, flushed: a kill keeps every finished row
        writer.write(row)                        # (with `input_key` when `plan.staged`)
        writer.close()
        rows = output.finish(plan, keys)         # partial files merged in input order when the plan is staged

Several processes (torchrun ranks, or workers of another engine) write `partial_writer(tag)` files that
`merge(keys, rows)` turns into one output in input order; so does a resume whose rows are not a prefix of the inputs.
Rows carry `input_key` (`path#n`, the n-th occurrence of a path in the inputs) in partial files only.

Whole files (`write_json`, strict JSON: NaN and infinity become null) are written to a temporary file and renamed,
so a killed run never leaves a half-written file.
"""

import csv
import hashlib
import io
import json
import math
import os
import sys
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PROVENANCE_FORMAT = 1
PROVENANCE_SUFFIX = ".provenance.json"
LOCK_SUFFIX = ".lock"
# Error rows whose cause is the machine, not the clip: a later --resume scores them again.
ENVIRONMENT_ERRORS = ("OSError", "MemoryError", "OutOfMemoryError", "No space left", "out of memory", "Errno 28",
                      "Too many open files", "Disk quota exceeded", "Read-only file system")
WEIGHT_FILE_SUFFIXES = (".safetensors", ".bin", ".json")

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a long transcript is one field; the default limit is 131072


class OutputError(ValueError):
    """An output that cannot be written or resumed as asked, in one line naming the file and what to do."""


# --- strict JSON ---------------------------------------------------------------------------------------------------


def finite_or_none(value):
    """`value` with every NaN or infinite float (also inside dicts, lists and numpy scalars) replaced by None."""
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def strict_dumps(payload, **kwargs) -> str:
    """JSON that every parser reads: NaN and infinity written as null (never the bare `NaN` token)."""
    return json.dumps(finite_or_none(payload), allow_nan=False, default=float, **kwargs)


def unwritable_reason(path) -> str | None:
    """Why files cannot be created at `path` (a folder to create or fill), or None: the nearest existing folder on the
    way must be a writable folder (checked before anything runs, so a long job never fails at its last write)."""
    path = Path(path).expanduser().absolute()
    existing = next(folder for folder in [path, *path.parents] if folder.exists() or folder.is_symlink())
    if not existing.is_dir():
        return f"{existing} is a file, not a folder." if existing != path else f"{path} is a file."
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable."
    return None


def write_json(path, payload):
    """Strict JSON (NaN -> null) written atomically (temporary file + rename): never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(strict_dumps(payload, indent=2) + "\n")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


# --- model fingerprints --------------------------------------------------------------------------------------------


def model_fingerprint(model_dir, commit: str | None = None) -> str:
    """sha256 of a model folder's config.json and weight files (name + content, in name order); `hub:<id>@<commit>`
    for a Hub id. Every weight byte is hashed (once per file version, see `file_digest`), so two folders with the same
    name and other weights never pass for one another."""
    folder = Path(model_dir)
    if not folder.is_dir():
        return f"hub:{model_dir}@{commit or 'unknown'}"
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and (path.name == "config.json" or (path.name.startswith(("model", "pytorch_model"))
                                                              and path.name.endswith(WEIGHT_FILE_SUFFIXES))):
            digest.update(path.name.encode() + b"\0" + bytes.fromhex(file_digest(path)))
    return f"sha256:{digest.hexdigest()}"


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, remembered in the media cache folder (`fingerprints/`) under its path, size, mtime
    and a content sample, so that a 15 GB checkpoint is read once, not on every run."""
    from .media import content_fingerprint, default_cache_dir

    stat = path.stat()
    identity = json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns, content_fingerprint(path, stat.st_size)])
    remembered = default_cache_dir() / "fingerprints" / f"{hashlib.sha256(identity.encode()).hexdigest()[:32]}.txt"
    try:
        return bytes.fromhex(remembered.read_text().strip()).hex()
    except (OSError, ValueError):
        pass
    with open(path, "rb") as file:
        value = hashlib.file_digest(file, "sha256").hexdigest()
    try:  # the cache is an optimisation: a folder that cannot be written only means hashing again next time
        remembered.parent.mkdir(parents=True, exist_ok=True)
        remembered.write_text(value + "\n")
    except OSError:
        pass
    return value


def provenance(model_dir, fingerprint: str, settings: dict, columns: list[str]) -> dict:
    return {"format": PROVENANCE_FORMAT, "model": {"name_or_path": str(model_dir), "fingerprint": fingerprint},
            "settings": finite_or_none(settings), "columns": list(columns)}


def is_environment_error(message: str | None) -> bool:
    """An error row caused by the machine (full disk, out of memory, ...): not done, a resumed run tries it again."""
    return bool(message) and any(marker in message for marker in ENVIRONMENT_ERRORS)


# --- rows on disk --------------------------------------------------------------------------------------------------


def complete_lines(path: Path) -> list[str]:
    """The file's complete lines; a last line without its newline (a kill during a write) is left out."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    # split on "\n" only: `str.splitlines` would also split inside a row at U+2028 and other separators
    return [line.rstrip("\r") for line in data[: data.rfind(b"\n") + 1].decode("utf-8").split("\n")[:-1]]


def cut_incomplete_line(path: Path) -> None:
    """Removes a last line without its newline, so that appended rows start on a line of their own."""
    path = Path(path)
    if not path.is_file():
        return
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as file:
            file.truncate(end)


def write_parquet(rows_path: Path, parquet_path: Path) -> Path:
    """The rows of a JSONL output (`--output X.parquet` writes them to `X.parquet.rows.jsonl` as it goes, so a killed
    run keeps them and `--resume` reads them) as one Parquet file, replaced atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = read_rows(rows_path)
    temporary = parquet_path.with_name(f".{parquet_path.name}.tmp")
    pq.write_table(pa.Table.from_pylist(rows), temporary)
    os.replace(temporary, parquet_path)
    return parquet_path


def is_jsonl(path) -> bool:
    return Path(path).suffix.lower() == ".jsonl"


def read_rows(output: Path) -> list[dict]:
    """Rows of an existing CSV/JSONL output (a half-written last line, from a kill, is left out)."""
    lines = complete_lines(output)
    if is_jsonl(output):
        return [json.loads(line) for line in lines if line.strip()]
    return list(csv.DictReader(lines))


def header_of(output: Path) -> list[str] | None:
    """The columns of an existing CSV output (its header), None for JSONL or an empty file."""
    lines = complete_lines(output)
    if is_jsonl(output) or not lines:
        return None
    return next(csv.reader(lines[:1]))


def keyed_rows(output: Path) -> dict[str, dict]:
    """The rows of an existing output by input key (`path#n`: the n-th row of that path), in file order."""
    rows, occurrence = {}, {}
    for row in read_rows(output) if Path(output).is_file() else []:
        if row.get("kind") == "video":  # a whole-video summary, written after the windows: not an input
            continue
        count = occurrence.get(row["path"], 0)
        rows[f"{row['path']}#{count}"] = row
        occurrence[row["path"]] = count + 1
    return rows


class RowWriter:
    """Appends rows to CSV/JSONL (or CSV on stdout). Each row is one line written by one `write` call and flushed at
    once, so a kill leaves no half-written row (at most a last line without its newline, which readers leave out).
    CSV values have their line breaks replaced by spaces (one row, one line; inputs whose file name holds a line break
    are refused up front); JSONL is strict JSON (NaN -> null)."""

    def __init__(self, output: Path | None, columns: list[str], append: bool):
        self.columns, self.output = columns, output
        self.jsonl = output is not None and is_jsonl(output)
        if output is None:
            self.file = None
            write_header = True
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            write_header = not (append and output.is_file() and output.stat().st_size > 0)
            self.file = open(output, "ab" if append else "wb", buffering=0)  # O_APPEND, no buffer: one write per row
        if write_header and not self.jsonl:
            self._write_line(self._csv_line(self.columns))

    @staticmethod
    def _csv_line(values) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(
            [" ".join(value.replace("\r\n", "\n").replace("\r", "\n").split("\n")) if isinstance(value, str) else value
             for value in values])
        return buffer.getvalue()

    def _write_line(self, line: str):
        if self.file is None:
            sys.stdout.write(line)
            sys.stdout.flush()
            return
        data = memoryview(line.encode("utf-8"))
        while data:
            data = data[self.file.write(data):]

    def write(self, record: dict):
        record = finite_or_none(record)
        if self.jsonl:
            self._write_line(strict_dumps({column: record.get(column) for column in self.columns}, ensure_ascii=False) + "\n")
        else:
            values = ["" if record.get(column) is None else repr(record[column]) if isinstance(record.get(column), float)
                      else record[column] for column in self.columns]
            self._write_line(self._csv_line(values))

    def close(self):
        if self.file is not None:
            self.file.close()


# --- the output file -----------------------------------------------------------------------------------------------


@dataclass
class ResumePlan:
    """How a run writes its output, decided before any of its processes writes a row (`OutputFile.plan`).

    Args:
        done: the rows already in the output or its partial files, by input key: their inputs are not scored again
            (empty unless resuming; error rows that the machine caused are not done).
        staged: new rows go into partial files that `OutputFile.merge` puts in input order at the end (several
            writers, or a resume whose rows are not a prefix of the inputs or that retries some), not straight into
            the output.
        stale: the partial files of an interrupted run, listed before any process of this run wrote one.
        resume: new rows are added to those of the output (`--resume`).
        overwrite: the output, its provenance and `stale` are removed before the first row (`--overwrite`).
    """

    done: dict[str, dict] = field(default_factory=dict)
    staged: bool = False
    stale: list[Path] = field(default_factory=list)
    resume: bool = False
    overwrite: bool = False


class OutputFile:
    """One resumable output: its rows (CSV or JSONL by suffix), its provenance file and its lock.

    Args:
        path: the output file (`.csv` or `.jsonl`).
        columns: the columns of every row, in order.
        provenance: what the rows were made with (`provenance(...)`); written beside the rows, compared on resume.
    """

    def __init__(self, path, columns: list[str], provenance: dict | None = None):
        self.path = Path(path)
        self.columns = list(columns)
        self.provenance = provenance
        self._lock = None

    @property
    def provenance_path(self) -> Path:
        return self.path.with_name(self.path.name + PROVENANCE_SUFFIX)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + LOCK_SUFFIX)

    # -- one writer --
    def acquire(self):
        """Takes the output's lock, or raises OutputError at once if another run holds it."""
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.lock_path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise OutputError(f"--output {self.path} is being written by another run (it holds {self.lock_path}); "
                              "wait for it to finish or write to another --output.") from None
        self._lock = lock

    def release(self):
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @contextmanager
    def locked(self):
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    # -- what is there --
    def exists(self) -> bool:
        return self.path.is_file()

    def stored_provenance(self) -> dict | None:
        if not self.provenance_path.is_file():
            return None
        try:
            return json.loads(self.provenance_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise OutputError(f"{self.provenance_path} cannot be read ({error}); pass --overwrite to start again.") from None

    def check_resumable(self):
        """Refuses (OutputError) to add rows to an output made with another model, other settings or other columns."""
        if not self.exists() or self.path.stat().st_size == 0:
            return
        stored = self.stored_provenance()
        if stored is None:
            raise OutputError(f"--output {self.path} has no {self.provenance_path.name}: nothing says which model and "
                              "settings made its rows; pass --overwrite to score everything again.")
        if self.provenance is None:
            return
        if stored.get("model", {}).get("fingerprint") != self.provenance["model"]["fingerprint"]:
            raise OutputError(
                f"--output {self.path} was written by another model ({stored.get('model', {}).get('name_or_path')}, "
                f"{str(stored.get('model', {}).get('fingerprint'))[:19]}); resuming with "
                f"{self.provenance['model']['name_or_path']} would mix two models: pass --overwrite or another --output.")
        old, new = stored.get("settings", {}), self.provenance["settings"]
        changed = [key for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
        if changed:
            key = changed[0]
            raise OutputError(f"--output {self.path} was written with other settings ({key}: {old.get(key)!r} then, "
                              f"{new.get(key)!r} now); use the same flags, or --overwrite / another --output.")
        header = header_of(self.path)
        for columns, where in ((stored.get("columns"), self.provenance_path.name), (header, "its header")):
            if columns is not None and list(columns) != self.columns:
                raise OutputError(f"--output {self.path} has other columns ({where}: {', '.join(columns)}) than this run "
                                  f"writes ({', '.join(self.columns)}); use the same flags, or --overwrite.")

    def resume(self) -> dict[str, dict]:
        """The rows already done, by input key (the output's, then its partial files'), after `check_resumable`.
        Error rows caused by the environment (a full disk, memory) are left out: they are scored again."""
        self.check_resumable()
        rows = keyed_rows(self.path)
        for row in self.read_partial_rows():
            rows[row.pop("input_key")] = row
        return {key: row for key, row in rows.items() if not is_environment_error(row.get("error"))}

    def output_keys(self) -> list[str]:
        return list(keyed_rows(self.path))

    # -- writing --
    def write_provenance(self):
        if self.provenance is not None:
            write_json(self.provenance_path, self.provenance)

    def open_writer(self, append: bool) -> RowWriter:
        """A writer of rows into the output itself (appending after its complete lines when `append`)."""
        if append:
            cut_incomplete_line(self.path)
        if not append or not self.provenance_path.is_file():
            self.write_provenance()
        return RowWriter(self.path, self.columns, append=append)

    def remove(self):
        """The output, its provenance and its partial files (for --overwrite)."""
        for path in [*self.partial_files(), self.path, self.provenance_path]:
            path.unlink(missing_ok=True)

    # -- a run's plan: resume, overwrite, one writer or several --
    def interrupted_run(self, resume: bool, overwrite: bool) -> list[Path]:
        """The partial files an interrupted run left; OutputError if there are any and the run neither completes
        them (`resume`) nor starts again (`overwrite`). Cheap: a run checks it before its model loads."""
        stale = self.partial_files()
        if stale and not (resume or overwrite):
            raise OutputError(f"--output {self.path}: {stale[0].name} holds rows of an interrupted run; pass --resume "
                              "to complete it or --overwrite to start again.")
        return stale

    def plan(self, keys: list[str], resume: bool, overwrite: bool, sharded: bool) -> ResumePlan:
        """What is done and where this run's rows go, for the inputs `keys` (in input order). Every process of a
        run calls it before any of them writes (torchrun: before the barrier that precedes the first row).

        OutputError for partial files of an interrupted run without `resume` or `overwrite`, and, on `resume`, for an
        output written by another model, with other settings or columns, or holding rows of inputs not given now.
        """
        stale = self.interrupted_run(resume, overwrite)
        done, output_keys = {}, []
        if resume:
            done = self.resume()
            output_keys = self.output_keys()
            given = set(keys)
            foreign = [key for key in done if key not in given]
            if foreign:
                raise OutputError(f"--output {self.path} has {len(foreign)} rows for inputs not given now (first: "
                                  f"{foreign[0].rsplit('#', 1)[0]}); --resume needs the same INPUTs, or pass "
                                  "--overwrite.")
        # Rows go straight into the output while it stays a prefix of the inputs; otherwise (several writers, or a
        # resume whose rows are not a prefix, or that retries error rows of the environment) into partial files.
        staged = sharded or (resume and (bool(stale) or output_keys != keys[: len(output_keys)]
                                         or len(done) != len(output_keys)))
        return ResumePlan(done, staged, stale, resume, overwrite)

    def prepare(self, plan: ResumePlan):
        """Before the first row, on one process after every process has its plan: `--overwrite` removes the output,
        its provenance and the partial files the plan listed (never one that this run's writers have begun)."""
        if plan.overwrite:
            for path in [*plan.stale, self.path, self.provenance_path]:
                path.unlink(missing_ok=True)

    def finish(self, plan: ResumePlan, keys: list[str]) -> dict[str, dict]:
        """After every writer closed: the partial files merged into the output when the plan is staged. -> the
        output's rows by input key."""
        return self.merge(keys, plan.done) if plan.staged else keyed_rows(self.path)

    def writer(self, plan: ResumePlan, tag) -> RowWriter:
        """Where the rows of one writer (`tag`: its rank) go: its partial file when the plan is staged (each row
        with its `input_key`), else the output itself (appended to on resume)."""
        return self.partial_writer(tag) if plan.staged else self.open_writer(append=plan.resume)

    # -- several writers: partial files merged in input order --
    def partial_path(self, tag) -> Path:
        """A new file for one writer's rows: `<output>.partial-<tag>-<run id>.jsonl` (never an old one appended to)."""
        return self.path.with_name(f"{self.path.name}.partial-{tag}-{uuid.uuid4().hex[:12]}.jsonl")

    def partial_files(self) -> list[Path]:
        return sorted(self.path.parent.glob(f"{self.path.name}.partial-*.jsonl"))

    def partial_writer(self, tag) -> RowWriter:
        return RowWriter(self.partial_path(tag), [*self.columns, "input_key"], append=False)

    def read_partial_rows(self) -> list[dict]:
        return [json.loads(line) for path in self.partial_files() for line in complete_lines(path) if line.strip()]

    def merge(self, keys: list[str], kept_rows: dict[str, dict]) -> dict[str, dict]:
        """The kept rows and every partial file -> one output in input order (replaced atomically, provenance
        beside it); the partial files are removed. Returns the rows by input key."""
        by_key = dict(kept_rows)
        for row in self.read_partial_rows():
            by_key[row.pop("input_key")] = row
        missing = [key for key in keys if key not in by_key]
        if missing:
            raise RuntimeError(
                f"{len(missing)} inputs have no row after the merge (first: {missing[0].rsplit('#', 1)[0]}): a partial "
                f"file is missing; with several machines --output must be on a file system they all see. Rerun with "
                f"--resume.")
        temporary = self.path.with_name(f".{self.path.stem}.merging{self.path.suffix}")  # the suffix picks CSV or JSONL
        writer = RowWriter(temporary, self.columns, append=False)
        for key in keys:
            writer.write(by_key[key])
        writer.close()
        self.write_provenance()
        os.replace(temporary, self.path)
        for path in self.partial_files():
            path.unlink()
        return {key: by_key[key] for key in keys}
