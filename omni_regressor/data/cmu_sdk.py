"""CMU-MultimodalSDK raw layout (MOSI); reads into the same records as the MMSA layout except `media_path`.

    <root>/Raw/Video/Segmented/<video_id>_<segment>.mp4
    <root>/Raw/Transcript/Segmented/<video_id>.annotprocessed     lines: <segment>_DELIM_<text>
    labels CSV (anywhere): video_id, clip_id (= segment), label, mode
"""

from pathlib import Path

from .labels import read_label_table, read_text, records_from_table
from .records import ClipProblem, ClipRecord

REQUIRED_COLUMNS = ("video_id", "clip_id", "label", "mode")
TRANSCRIPT_DELIMITER = "_DELIM_"


def read_transcripts(path: Path) -> dict[str, str]:
    """`<segment>_DELIM_<text>` lines -> {segment: text}; {} when the file is missing."""
    if not path.is_file():
        return {}
    transcripts = {}
    for line in read_text(path).splitlines():
        segment, delimiter, text = line.partition(TRANSCRIPT_DELIMITER)
        if delimiter:
            transcripts[segment.strip()] = text
    return transcripts


def read_cmu_sdk(root, score_range=None, labels_csv=None) -> tuple[list[ClipRecord], list[ClipProblem]]:
    """A clip whose transcript file or line is missing gets text "" ("empty_transcript" when text is used)."""
    if labels_csv is None:
        raise ValueError("the cmu-sdk layout needs `labels_csv` (a CSV with video_id, clip_id, label, mode).")
    root = Path(root).expanduser().resolve()
    labels_csv = Path(labels_csv).expanduser().resolve()
    table, problems = read_label_table(labels_csv, REQUIRED_COLUMNS)
    if table is None:
        return [], problems
    transcript_dir = root / "Raw" / "Transcript" / "Segmented"
    transcripts_by_video = {}

    def text_of(row, video_id, segment):
        if video_id not in transcripts_by_video:
            transcripts_by_video[video_id] = read_transcripts(transcript_dir / f"{video_id}.annotprocessed")
        transcripts = transcripts_by_video[video_id]
        if segment in transcripts:
            return transcripts[segment]
        # "1" in the labels and "01" in the transcript (or the reverse) name the same segment.
        by_number = {key.lstrip("0") or "0": text for key, text in transcripts.items()}
        return by_number.get(segment.lstrip("0") or "0", "")

    return records_from_table(
        table,
        labels_csv.name,
        text_of=text_of,
        media_path_of=lambda video_id, segment: root / "Raw" / "Video" / "Segmented" / f"{video_id}_{segment}.mp4",
        score_range=score_range,
    )
