"""What every dataset reader returns: one `ClipRecord` per usable row, one `ClipProblem` per row or file that is not.

Nothing is ever dropped without a name and a reason: `format_problems` prints them one per line
(`video_id/clip_id<TAB>kind<TAB>detail`), `write_skipped` writes the clips a run left out.
"""

import csv
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "valid", "test")
PROBLEM_REASONS = (
    "missing_file",
    "unreadable_file",
    "corrupt_file",
    "unsupported_geometry",
    "no_audio_track",
    "no_video_stream",
    "too_short_video",
    "too_short_audio",
    "non_finite_audio",
    "non_finite_score",
    "empty_transcript",
    "missing_label",
    "nan_label",
    "label_out_of_range",
    "unknown_mode",
    "duplicate_id",
    "missing_column",
    "no_rows",
)


@dataclass
class ClipRecord:
    """One labelled clip.

    Args:
        clip_id: "<video_id>/<clip_id>", unique within a dataset.
        video_id: the source video (speaker-level grouping).
        text: the transcript, stripped ("" when the dataset has none for this clip).
        label: the sentiment score.
        split: "train", "valid" or "test".
        media_path: absolute path of the clip's media file.
        label_T, label_A, label_V: unimodal labels where the dataset has them (CH-SIMS), else None.
    """

    clip_id: str
    video_id: str
    text: str
    label: float
    split: str
    media_path: str
    label_T: float | None = None
    label_A: float | None = None
    label_V: float | None = None

    @property
    def segment_id(self) -> str:
        """The clip's own id within its video (the part after "<video_id>/")."""
        return self.clip_id.split("/", 1)[1] if "/" in self.clip_id else self.clip_id


@dataclass
class ClipProblem:
    """Why a clip (or a whole label file) is not usable: `reason` is one of `PROBLEM_REASONS`."""

    clip_id: str
    reason: str
    detail: str


class DataProblemsError(Exception):
    """Raised by callers that refuse to train/evaluate on a dataset with problems; carries `problems`."""

    def __init__(self, problems: list[ClipProblem], root=None):
        self.problems = list(problems)
        hint = f"run `omni-regressor check-data {root if root is not None else '<root>'}` or pass --skip_bad_clips"
        super().__init__(f"{format_problems(self.problems)}\n{hint}")


def infer_score_range(records: list[ClipRecord]) -> tuple[float, float]:
    """(-1, 1) when every |label| <= 1 (CH-SIMS), else (-3, 3) (MOSI/MOSEI). Pass `score_range` to override."""
    return score_range_of([record.label for record in records])


def score_range_of(labels) -> tuple[float, float]:
    return (-1.0, 1.0) if all(abs(label) <= 1.0 for label in labels) else (-3.0, 3.0)


def usable_records(records: list[ClipRecord], problems: list[ClipProblem]) -> list[ClipRecord]:
    """The records that no problem names (what --skip_bad_clips trains on)."""
    bad_ids = {problem.clip_id for problem in problems}
    return [record for record in records if record.clip_id not in bad_ids]


def format_problems(problems: list[ClipProblem]) -> str:
    """One `clip_id<TAB>reason<TAB>detail` line per problem, then a count per reason."""
    if not problems:
        return "no problems found"
    lines = [f"{problem.clip_id}\t{problem.reason}\t{problem.detail}" for problem in problems]
    counts = Counter(problem.reason for problem in problems)
    order = [reason for reason in PROBLEM_REASONS if reason in counts] + sorted(set(counts) - set(PROBLEM_REASONS))
    summary = ", ".join(f"{reason}={counts[reason]}" for reason in order)
    lines.append(f"{len(problems)} problem(s): {summary}")
    return "\n".join(lines)


def write_skipped(problems: list[ClipProblem], path) -> Path:
    """CSV with columns clip_id, reason, detail (the clips a run left out, and why), written atomically."""
    rows = [["clip_id", "reason", "detail"]] + [[problem.clip_id, problem.reason, problem.detail] for problem in problems]
    return write_csv_atomically(path, rows)


def write_csv_atomically(path, rows) -> Path:
    """Writes a whole CSV to a temporary file beside `path`, then renames it into place (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerows(rows)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def records_to_dataset_dict(records: list[ClipRecord]):
    """-> `datasets.DatasetDict` with the splits present (train, valid, test order); ids stay strings."""
    import datasets  # imported here: `check-data` and the readers do not need its import time

    features = datasets.Features(
        {
            "clip_id": datasets.Value("string"),
            "video_id": datasets.Value("string"),
            "text": datasets.Value("string"),
            "label": datasets.Value("float64"),
            "split": datasets.Value("string"),
            "media_path": datasets.Value("string"),
        }
    )
    splits = {}
    for split in SPLITS:
        rows = [record for record in records if record.split == split]
        if rows:
            columns = {name: [getattr(record, name) for record in rows] for name in features}
            splits[split] = datasets.Dataset.from_dict(columns, features=features)
    return datasets.DatasetDict(splits)
