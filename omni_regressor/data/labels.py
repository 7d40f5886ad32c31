"""Label tables: reading a CSV whatever its encoding, and turning its rows into records (shared by every reader)."""

import io
import logging
import math
from collections import defaultdict
from pathlib import Path

import pandas as pd

from .records import SPLITS, ClipProblem, ClipRecord, score_range_of

logger = logging.getLogger(__name__)
MODALITY_LABEL_COLUMNS = ("label_T", "label_A", "label_V")


def read_text(path: Path) -> str:
    """A text file as UTF-8 (a BOM is dropped), or as Latin-1 when it is not valid UTF-8 (said once in the log)."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        logger.warning("%s is not UTF-8; read as Latin-1.", path)
        return data.decode("latin-1")


def read_label_table(csv_path: Path, required_columns) -> tuple[pd.DataFrame | None, list[ClipProblem]]:
    """The label CSV as strings (ids keep leading zeros, empty cells stay ""), or the problem that stops it."""
    name = csv_path.name
    if not csv_path.is_file():
        return None, [ClipProblem(name, "missing_file", f"label file {csv_path} does not exist.")]
    try:
        table = pd.read_csv(io.StringIO(read_text(csv_path)), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as error:
        return None, [ClipProblem(name, "unreadable_file", f"cannot parse {csv_path}: {error}")]
    table.columns = [column.strip() for column in table.columns]
    missing = [column for column in required_columns if column not in table.columns]
    if missing:
        detail = f"{csv_path} lacks column(s) {missing}; required: {list(required_columns)}, found: {list(table.columns)}."
        return None, [ClipProblem(name, "missing_column", detail)]
    if table.empty:
        return None, [ClipProblem(name, "no_rows", f"{csv_path} has a header but no clip rows.")]
    return table, []


def parse_label(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return math.nan


def records_from_table(table, csv_name, text_of, media_path_of, score_range) -> tuple[list, list]:
    """Rows -> records; `text_of(row, video_id, segment)` and `media_path_of(video_id, segment)` know the layout."""
    problems = []
    candidates = []  # records that passed the per-row checks
    row_numbers_by_id = defaultdict(list)
    for row_index, row in enumerate(table.to_dict("records")):
        row_number = row_index + 2  # 1-based, after the header line
        video_id, segment = row["video_id"].strip(), row["clip_id"].strip()
        clip_id = f"{video_id}/{segment}"
        row_numbers_by_id[clip_id].append(row_number)
        where = f"{csv_name} row {row_number}"
        row_problems = []

        label = parse_label(row["label"])
        if label is None:
            row_problems.append(ClipProblem(clip_id, "missing_label", f"{where}: the label cell is empty."))
        elif math.isnan(label) or math.isinf(label):
            row_problems.append(ClipProblem(clip_id, "nan_label", f"{where}: label {row['label']!r} is not a number."))
        split = row["mode"].strip().lower()
        if split not in SPLITS:
            detail = f"{where}: mode {row['mode']!r} is not one of {list(SPLITS)}."
            row_problems.append(ClipProblem(clip_id, "unknown_mode", detail))
        if row_problems:
            problems.extend(row_problems)
            continue
        modality_labels = {}
        for column in MODALITY_LABEL_COLUMNS:
            value = parse_label(row.get(column, ""))
            modality_labels[column] = None if value is None or not math.isfinite(value) else value
        candidates.append(
            ClipRecord(
                clip_id=clip_id,
                video_id=video_id,
                text=text_of(row, video_id, segment).strip(),
                label=label,
                split=split,
                media_path=str(media_path_of(video_id, segment)),
                **modality_labels,
            )
        )

    duplicated = {clip_id: rows for clip_id, rows in row_numbers_by_id.items() if len(rows) > 1}
    for clip_id, rows in duplicated.items():
        problems.append(ClipProblem(clip_id, "duplicate_id", f"{csv_name} rows {rows} share this id; none of them is used."))

    unique = [record for record in candidates if record.clip_id not in duplicated]
    low, high = score_range if score_range is not None else score_range_of([record.label for record in unique])
    records = []
    for record in unique:
        if low <= record.label <= high:
            records.append(record)
        else:
            detail = f"label {record.label:g} is outside the score range [{low:g}, {high:g}]."
            problems.append(ClipProblem(record.clip_id, "label_out_of_range", detail))
    return records, problems
