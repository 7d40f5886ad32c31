"""Generated demo data: MMSA-layout datasets of real H.264 + AAC clips whose labels are learnable from each modality."""

import csv
import os
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..media import write_clip
from .cmu_sdk import TRANSCRIPT_DELIMITER
from .labels import MODALITY_LABEL_COLUMNS
from .mmsa import read_mmsa
from .records import format_problems
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
