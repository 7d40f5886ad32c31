"""Dataset layouts: the only module that knows where labels, transcripts and clips live.

Every reader returns `(records, problems)`: one `ClipRecord` per usable row and one `ClipProblem` per row (or file)
that is not, so nothing is ever dropped without a name and a reason. `scan_problems` adds the media checks.

Layouts:
- MMSA (CMU-MOSI, CMU-MOSEI, CH-SIMS as distributed by MMSA): `<root>/label.csv` with columns video_id, clip_id,
  text, label, mode (+ optional label_T, label_A, label_V, annotation; any order), clips at
  `<root>/Raw/<video_id>/<clip_id>.mp4`. CH-SIMS is this layout with labels in [-1, 1] and Chinese transcripts.
- CMU-SDK raw MOSI: clips at `<root>/Raw/Video/Segmented/<video_id>_<segment>.mp4`, transcripts at
  `<root>/Raw/Transcript/Segmented/<video_id>.annotprocessed` (lines `<segment>_DELIM_<text>`), labels from a CSV
  with columns video_id, clip_id (= segment), label, mode. Reads into the same records as MMSA.

Ids are strings everywhere ("007" stays "007"); a record's `clip_id` is "<video_id>/<clip_id>".
"""

import csv
import math
import os
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .media import MediaError, MediaSettings, decode_clip, probe_media, write_clip

SPLITS = ("train", "valid", "test")
MODALITIES = ("text", "audio", "video")
DATASET_FORMATS = ("mmsa", "cmu-sdk")
PROBLEM_REASONS = (
    "missing_file",
    "unreadable_file",
    "no_audio_track",
    "no_video_stream",
    "too_short_video",
    "empty_transcript",
    "missing_label",
    "nan_label",
    "label_out_of_range",
    "unknown_mode",
    "duplicate_id",
    "missing_column",
)
MMSA_REQUIRED_COLUMNS = ("video_id", "clip_id", "text", "label", "mode")
SDK_REQUIRED_COLUMNS = ("video_id", "clip_id", "label", "mode")
MODALITY_LABEL_COLUMNS = ("label_T", "label_A", "label_V")
TRANSCRIPT_DELIMITER = "_DELIM_"


@dataclass
class ClipRecord:
    """One labelled clip.

    Args:
        clip_id: "<video_id>/<clip_id>", unique within a dataset.
        video_id: the source video (speaker-level grouping).
        text: the transcript, stripped ("" when the dataset has none for this clip).
        label: the sentiment score.
        split: "train", "valid" or "test".
        media_path: absolute path of the clip's mp4.
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
        hint = f"run `omni-regressor check-data {root if root is not None else '<root>'}` or pass --skip-bad-clips"
        super().__init__(f"{format_problems(self.problems)}\n{hint}")


def infer_score_range(records: list[ClipRecord]) -> tuple[float, float]:
    """(-1, 1) when every |label| <= 1 (CH-SIMS), else (-3, 3) (MOSI/MOSEI). Pass `score_range` to override."""
    return _score_range_of([record.label for record in records])


def _score_range_of(labels) -> tuple[float, float]:
    return (-1.0, 1.0) if all(abs(label) <= 1.0 for label in labels) else (-3.0, 3.0)


def _read_label_csv(csv_path: Path, required_columns) -> tuple[pd.DataFrame | None, list[ClipProblem]]:
    name = csv_path.name
    if not csv_path.is_file():
        return None, [ClipProblem(name, "missing_file", f"label file {csv_path} does not exist.")]
    try:
        # dtype=str + no NA parsing: ids keep leading zeros, empty cells stay "" (reported, not guessed).
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        return None, [ClipProblem(name, "unreadable_file", f"cannot parse {csv_path}: {error}")]
    table.columns = [column.strip() for column in table.columns]
    missing = [column for column in required_columns if column not in table.columns]
    if missing:
        detail = (
            f"{csv_path} lacks column(s) {missing}; required: {list(required_columns)}, "
            f"found: {list(table.columns)}."
        )
        return None, [ClipProblem(name, "missing_column", detail)]
    return table, []


def _parse_label(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return math.nan


def _records_from_table(table, csv_name, text_of, media_path_of, score_range) -> tuple[list, list]:
    """Rows -> records; `text_of(row, video_id, segment)` and `media_path_of(video_id, segment)` know the layout."""
    problems = []
    candidates = []  # (row number, record) that passed the per-row checks
    row_numbers_by_id = defaultdict(list)
    for row_index, row in enumerate(table.to_dict("records")):
        row_number = row_index + 2  # 1-based, after the header line
        video_id, segment = row["video_id"].strip(), row["clip_id"].strip()
        clip_id = f"{video_id}/{segment}"
        row_numbers_by_id[clip_id].append(row_number)
        where = f"{csv_name} row {row_number}"
        row_problems = []

        label = _parse_label(row["label"])
        if label is None:
            row_problems.append(ClipProblem(clip_id, "missing_label", f"{where}: the label cell is empty."))
        elif math.isnan(label):
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
            value = _parse_label(row.get(column, ""))
            modality_labels[column] = None if value is None or math.isnan(value) else value
        record = ClipRecord(
            clip_id=clip_id,
            video_id=video_id,
            text=text_of(row, video_id, segment).strip(),
            label=label,
            split=split,
            media_path=str(media_path_of(video_id, segment)),
            **modality_labels,
        )
        candidates.append((row_number, record))

    duplicated = {clip_id: rows for clip_id, rows in row_numbers_by_id.items() if len(rows) > 1}
    for clip_id, rows in duplicated.items():
        detail = f"{csv_name} rows {rows} share this id; none of them is used."
        problems.append(ClipProblem(clip_id, "duplicate_id", detail))

    unique = [record for _, record in candidates if record.clip_id not in duplicated]
    if score_range is None:
        score_range = _score_range_of([record.label for record in unique if math.isfinite(record.label)])
    low, high = score_range
    records = []
    for record in unique:
        if low <= record.label <= high:
            records.append(record)
        else:
            detail = f"label {record.label:g} is outside the score range [{low:g}, {high:g}]."
            problems.append(ClipProblem(record.clip_id, "label_out_of_range", detail))
    return records, problems


def read_mmsa(root, score_range=None) -> tuple[list[ClipRecord], list[ClipProblem]]:
    """MMSA layout (MOSI, MOSEI, CH-SIMS): `<root>/label.csv` + `<root>/Raw/<video_id>/<clip_id>.mp4`.

    Labels outside `score_range` (default: `infer_score_range`) are reported as "label_out_of_range".
    """
    root = Path(root).expanduser().resolve()
    table, problems = _read_label_csv(root / "label.csv", MMSA_REQUIRED_COLUMNS)
    if table is None:
        return [], problems
    return _records_from_table(
        table,
        "label.csv",
        text_of=lambda row, video_id, segment: row["text"],
        media_path_of=lambda video_id, segment: root / "Raw" / video_id / f"{segment}.mp4",
        score_range=score_range,
    )


def _read_transcripts(path: Path) -> dict[str, str]:
    """`<segment>_DELIM_<text>` lines -> {segment: text}; {} when the file is missing."""
    if not path.is_file():
        return {}
    transcripts = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        segment, delimiter, text = line.partition(TRANSCRIPT_DELIMITER)
        if delimiter:
            transcripts[segment.strip()] = text
    return transcripts


def read_cmu_sdk(root, labels_csv, score_range=None) -> tuple[list[ClipRecord], list[ClipProblem]]:
    """CMU-SDK raw MOSI layout; records equal `read_mmsa`'s for the same clips except `media_path`.

    A clip whose transcript file or line is missing gets text "" (reported as "empty_transcript" by
    `scan_problems` when the text modality is used).
    """
    root = Path(root).expanduser().resolve()
    labels_csv = Path(labels_csv).expanduser().resolve()
    table, problems = _read_label_csv(labels_csv, SDK_REQUIRED_COLUMNS)
    if table is None:
        return [], problems
    transcript_dir = root / "Raw" / "Transcript" / "Segmented"
    transcripts_by_video = {}

    def text_of(row, video_id, segment):
        if video_id not in transcripts_by_video:
            transcripts_by_video[video_id] = _read_transcripts(transcript_dir / f"{video_id}.annotprocessed")
        transcripts = transcripts_by_video[video_id]
        if segment in transcripts:
            return transcripts[segment]
        # "1" in the labels and "01" in the transcript (or the reverse) name the same segment.
        by_number = {key.lstrip("0") or "0": text for key, text in transcripts.items()}
        return by_number.get(segment.lstrip("0") or "0", "")

    return _records_from_table(
        table,
        labels_csv.name,
        text_of=text_of,
        media_path_of=lambda video_id, segment: root / "Raw" / "Video" / "Segmented" / f"{video_id}_{segment}.mp4",
        score_range=score_range,
    )


def read_dataset(root, dataset_format="mmsa", labels_csv=None, score_range=None):
    """Dispatches on `dataset_format`: "mmsa" (also CH-SIMS) or "cmu-sdk" (needs `labels_csv`)."""
    dataset_format = dataset_format.lower().replace("_", "-")
    if dataset_format in ("mmsa", "ch-sims", "sims"):
        return read_mmsa(root, score_range=score_range)
    if dataset_format == "cmu-sdk":
        if labels_csv is None:
            raise ValueError(
                "`labels_csv` is required for dataset_format='cmu-sdk' (a CSV with video_id, clip_id, label, mode)."
            )
        return read_cmu_sdk(root, labels_csv, score_range=score_range)
    raise ValueError(f"`dataset_format` must be one of {list(DATASET_FORMATS)}, got {dataset_format!r}.")


def _modality_names(modalities) -> tuple[str, ...]:
    if isinstance(modalities, str):
        modalities = modalities.replace("+", ",").split(",")
    names = tuple(name.strip().lower() for name in modalities if name.strip())
    unknown = [name for name in names if name not in MODALITIES]
    if unknown:
        raise ValueError(f"`modalities` must be among {list(MODALITIES)}, got {unknown}.")
    return names


def scan_problems(records, settings: MediaSettings | None = None, modalities=MODALITIES, full_decode=False):
    """Media and transcript checks for the chosen modalities -> list of `ClipProblem`.

    Header-level checks (probe) for every clip; a clip whose header does not vouch for a decodable frame is decoded.
    `full_decode=True` decodes every clip (catches files that are corrupt after a valid header; slower).
    A 1-frame video is fine (decoding duplicates the frame); a video stream with no frame or zero duration is
    "too_short_video". A missing audio track matters only with "audio", an empty transcript only with "text".
    """
    settings = settings or MediaSettings()
    modalities = _modality_names(modalities)
    needs_media = "audio" in modalities or "video" in modalities
    problems = []
    for record in tqdm(records, desc="checking clips", unit="clip"):
        if "text" in modalities and not record.text.strip():
            problems.append(ClipProblem(record.clip_id, "empty_transcript", "the transcript is empty."))
        if not needs_media:
            continue
        path = record.media_path
        if not os.path.isfile(path):
            problems.append(ClipProblem(record.clip_id, "missing_file", f"{path} does not exist."))
            continue
        try:
            info = probe_media(path)
        except MediaError as error:
            problems.append(ClipProblem(record.clip_id, error.reason, str(error)))
            continue
        media_problems = []
        if "video" in modalities and not info["has_video"]:
            media_problems.append(ClipProblem(record.clip_id, "no_video_stream", f"{path} has no video stream."))
        if "audio" in modalities and not info["has_audio"]:
            media_problems.append(ClipProblem(record.clip_id, "no_audio_track", f"{path} has no audio track."))
        # Decode when the header cannot vouch for a frame (a 1-frame video is fine; zero frames are not).
        header_vouches = bool(info["num_frames"]) and bool(info["duration"])
        video_unverified = "video" in modalities and info["has_video"] and not header_vouches
        if full_decode or video_unverified:
            try:
                decode_clip(path, settings)
            except MediaError as error:
                media_problems.append(ClipProblem(record.clip_id, error.reason, str(error)))
        problems.extend(media_problems)
    return problems


def check_dataset(
    root,
    dataset_format="mmsa",
    labels_csv=None,
    settings: MediaSettings | None = None,
    modalities=MODALITIES,
    score_range=None,
    full_decode=False,
) -> tuple[list[ClipRecord], list[ClipProblem]]:
    """Reader + `scan_problems`. `records` still holds clips with media problems; filter with `usable_records`."""
    records, problems = read_dataset(root, dataset_format, labels_csv=labels_csv, score_range=score_range)
    return records, problems + scan_problems(records, settings, modalities, full_decode=full_decode)


def usable_records(records: list[ClipRecord], problems: list[ClipProblem]) -> list[ClipRecord]:
    """The records that no problem names (what --skip-bad-clips trains on)."""
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
    """CSV with columns clip_id, reason, detail (the clips a run left out, and why)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["clip_id", "reason", "detail"])
        for problem in problems:
            writer.writerow([problem.clip_id, problem.reason, problem.detail])
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


# --- demo data -------------------------------------------------------------------------------------------------

DEMO_WORDS = {
    "Positive": ("loved", "wonderful", "great", "excellent", "amazing", "happy"),
    "Neutral": ("okay", "fine", "average", "ordinary", "plain", "usual"),
    "Negative": ("hated", "terrible", "awful", "horrible", "boring", "sad"),
}
DEMO_LABEL_COLUMNS = ("video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode")
DEMO_CLIPS_PER_VIDEO = 8


def _demo_frames(strength: float, num_frames: int, width: int, height: int) -> np.ndarray:
    """Grey background whose brightness rises with `strength` in [0, 1], plus a square moving left to right."""
    background = int(round(30 + 190 * strength))
    frames = np.full((num_frames, height, width, 3), background, dtype=np.uint8)  # (T, H, W, 3)
    side = max(2, height // 4)
    top = (height - side) // 2
    for index in range(num_frames):
        left = int(round((width - side) * index / max(1, num_frames - 1)))
        frames[index, top : top + side, left : left + side] = (255, 96, 0)
    return frames


def _demo_audio(strength: float, seconds: float, sample_rate: int) -> np.ndarray:
    """A tone whose pitch (220 -> 880 Hz) and loudness rise with `strength` in [0, 1]."""
    frequency = 220.0 * 2 ** (2 * strength)
    amplitude = 0.05 + 0.25 * strength
    time = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def write_demo_dataset(
    root, num_clips=48, seed=0, score_range=(-3.0, 3.0), size=(64, 48), seconds=1.5, fps=8, sample_rate=16000
) -> Path:
    """A small MMSA-layout dataset of real H.264 + AAC mp4 clips whose label is learnable from each modality.

    Labels: uniform in `score_range`, on a 0.2 grid. Text: three words from a positive/neutral/negative vocabulary
    (thirds of the range, also the `annotation`). Audio: pitch and loudness rise with the label. Video (`size` =
    width, height): brightness rises with the label, plus a moving square. Splits ~60/20/20 by a seeded permutation.
    Video ids "demo_00", "demo_01"... with clip ids "001".."008". Same seed -> same label.csv.
    """
    root = Path(root)
    width, height = size
    low, high = (float(value) for value in score_range)
    rng = np.random.default_rng(seed)
    labels = np.clip(np.round(rng.uniform(low, high, num_clips) / 0.2) * 0.2, low, high)
    order = rng.permutation(num_clips)
    num_valid = max(1, round(0.2 * num_clips)) if num_clips >= 3 else 0
    num_test = max(1, round(0.2 * num_clips)) if num_clips >= 3 else 0
    splits = np.array(["train"] * num_clips, dtype=object)
    splits[order[num_clips - num_valid - num_test : num_clips - num_test]] = "valid"
    splits[order[num_clips - num_test :]] = "test"
    num_frames = max(1, round(seconds * fps))

    rows = []
    for index in range(num_clips):
        label = round(float(labels[index]), 6) + 0.0  # + 0.0 turns -0.0 into 0.0
        strength = (label - low) / (high - low)  # 0 at the bottom of the range, 1 at the top
        annotation = "Negative" if strength < 1 / 3 else ("Positive" if strength > 2 / 3 else "Neutral")
        words = rng.choice(DEMO_WORDS[annotation], size=3, replace=False)
        text = f"it was {words[0]} , {words[1]} and {words[2]}"
        video_id = f"demo_{index // DEMO_CLIPS_PER_VIDEO:02d}"
        clip_id = f"{index % DEMO_CLIPS_PER_VIDEO + 1:03d}"
        write_clip(
            root / "Raw" / video_id / f"{clip_id}.mp4",
            _demo_frames(strength, num_frames, width, height),
            fps,
            _demo_audio(strength, seconds, sample_rate),
            sample_rate,
        )
        label_text = str(label)
        modality_labels = [label_text] * 3  # label_T, label_A, label_V: each modality carries the full label
        rows.append([video_id, clip_id, text, label_text, *modality_labels, annotation, splits[index]])

    with open(root / "label.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(DEMO_LABEL_COLUMNS)
        writer.writerows(rows)
    return root


def write_demo_sdk_layout(root, records_or_mmsa_root) -> Path:
    """Writes the same clips in the CMU-SDK layout under `root`; returns the labels CSV path (`<root>/labels.csv`).

    `records_or_mmsa_root`: a list of `ClipRecord` or an MMSA-layout folder (read with `read_mmsa`).
    """
    root = Path(root)
    records = records_or_mmsa_root
    if isinstance(records_or_mmsa_root, (str, os.PathLike)):
        records, problems = read_mmsa(records_or_mmsa_root)
        if problems:
            raise ValueError(f"{records_or_mmsa_root} has problems:\n{format_problems(problems)}")
    video_dir = root / "Raw" / "Video" / "Segmented"
    transcript_dir = root / "Raw" / "Transcript" / "Segmented"
    video_dir.mkdir(parents=True, exist_ok=True)
    transcript_dir.mkdir(parents=True, exist_ok=True)

    transcript_lines = defaultdict(list)
    label_rows = []
    for record in records:
        segment = record.clip_id.split("/", 1)[1]
        shutil.copyfile(record.media_path, video_dir / f"{record.video_id}_{segment}.mp4")
        transcript_lines[record.video_id].append(f"{segment}{TRANSCRIPT_DELIMITER}{record.text}\n")
        modality_labels = [
            "" if value is None else repr(value) for value in (record.label_T, record.label_A, record.label_V)
        ]
        label_rows.append([record.video_id, segment, repr(record.label), *modality_labels, record.split])
    for video_id, lines in transcript_lines.items():
        (transcript_dir / f"{video_id}.annotprocessed").write_text("".join(lines), encoding="utf-8")

    labels_csv = root / "labels.csv"
    with open(labels_csv, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["video_id", "clip_id", "label", *MODALITY_LABEL_COLUMNS, "mode"])
        writer.writerows(label_rows)
    return labels_csv
