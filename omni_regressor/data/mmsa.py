"""MMSA layout (CMU-MOSI, CMU-MOSEI, CH-SIMS as distributed by MMSA).

    <root>/label.csv          video_id, clip_id, text, label, mode (+ label_T, label_A, label_V, annotation; any order)
    <root>/Raw/<video_id>/<clip_id>.mp4

CH-SIMS is this layout with labels in [-1, 1] and Chinese transcripts.
"""

from pathlib import Path

from .labels import read_label_table, records_from_table
from .records import ClipProblem, ClipRecord

REQUIRED_COLUMNS = ("video_id", "clip_id", "text", "label", "mode")


def read_mmsa(root, score_range=None, **_) -> tuple[list[ClipRecord], list[ClipProblem]]:
    """Labels outside `score_range` (default: inferred, see `infer_score_range`) are "label_out_of_range"."""
    root = Path(root).expanduser().resolve()
    table, problems = read_label_table(root / "label.csv", REQUIRED_COLUMNS)
    if table is None:
        return [], problems
    return records_from_table(
        table,
        "label.csv",
        text_of=lambda row, video_id, segment: row["text"],
        media_path_of=lambda video_id, segment: root / "Raw" / video_id / f"{segment}.mp4",
        score_range=score_range,
    )
