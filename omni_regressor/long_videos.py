"""`predict --window`: a long video scored in time windows, one row per window, then a whole-video row per video
(the duration-weighted mean of its windows) and a timeline plot of its windows' scores."""

import sys
from pathlib import Path

from .outputs import RowWriter, read_rows


def window_items(pairs: list[tuple[str, str | None]], window: float, hop: float | None):
    """Each input video -> one item per window, the window's transcript from the subtitles beside it. A video that
    cannot be windowed (unreadable, shorter than the window, subtitles that do not parse) is one error item."""
    from pipeline_omni_regressor import video_windows

    from .streaming import InputItem

    items = []
    for path, _ in pairs:
        try:
            _, spans, texts = video_windows(path, window, hop)  # a whole-video transcript is not every window's
        except Exception as error:  # noqa: BLE001 - the video's error row; the others go on
            message = str(error) if str(path) in str(error) else f"{path}: {error}"
            items.append(InputItem(len(items), path, None, error=message))
            continue
        items += [InputItem(len(items) + number, path, text, start, end)
                  for number, ((start, end), text) in enumerate(zip(spans, texts))]
    return items


def finish_windows(output: Path, score_range, timeline_dir: Path) -> list[dict]:
    """The whole-video rows (duration-weighted mean of each video's windows) and one timeline PNG per video, for the
    videos of `output` that have none yet (a resumed run that had finished adds nothing)."""
    from pipeline_omni_regressor import ClipScore, duration_weighted_score, prediction_record

    from omni_regressor.eval.plots import plot_timeline

    rows = read_rows(output)
    summarised = {row["path"] for row in rows if row.get("kind") == "video"}
    by_video = {}
    for row in rows:
        if row.get("kind") != "video" and row["path"] not in summarised:
            by_video.setdefault(row["path"], []).append(row)
    summaries = []
    for path, windows in by_video.items():
        scored = [(float(row["start"]), float(row["end"]), float(row["score"])) for row in windows
                  if row.get("score") not in (None, "") and row.get("start") not in (None, "")]
        errors = [row["error"] for row in windows if row.get("error")]
        score = duration_weighted_score(scored)
        timeline = (plot_timeline(scored, timeline_dir / f"{Path(path).stem}.png", score_range, title=Path(path).name)
                    if scored else None)
        error = "" if scored else (errors[0] if errors else "no window could be scored")
        record = prediction_record(ClipScore(path, score, (), error or None), score_range)
        record.update(video_id=Path(path).parent.name, clip_id=Path(path).stem, kind="video",
                      start=0.0 if scored else None, end=max(end for _, end, _ in scored) if scored else None,
                      modalities=f"{len(scored)} of {len(windows)} windows", timeline=str(timeline) if timeline else "")
        summaries.append(record)
    return summaries


def write_video_rows(output: Path, score_range, columns: list[str], timeline_dir: Path | None = None) -> None:
    """Appends the whole-video rows of `output` (see `finish_windows`); the timelines go to `timeline_dir` (default:
    `<output>_timelines` beside it)."""
    timeline_dir = timeline_dir or output.with_name(f"{output.stem}_timelines")
    summaries = finish_windows(output, score_range, timeline_dir)
    writer = RowWriter(output, columns, append=True)
    for summary in summaries:
        writer.write(summary)
    writer.close()
    print(f"{len(summaries)} whole-video rows; timelines in {timeline_dir}", file=sys.stderr)
