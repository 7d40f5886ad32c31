"""Containers as they are (`processing_omni_regressor`'s stream selection and durations): Matroska/WebM streams
measured by their own tags, the default audio track, and a clip longer than the limit marked `truncated`."""

import numpy as np
import pytest

from hostile_media import long_clip, mkv_with_short_audio, second_audio_track_default_clip
from omni_regressor.media import probe_media
from omni_regressor.outputs import read_rows
from omni_regressor.predict import main as predict_main
from processing_omni_regressor import MediaSettings, decode_clip


@pytest.mark.parametrize("container_format, suffix", [("matroska", "mkv"), ("webm", "webm")])
def test_audio_shorter_than_the_video_in_matroska_decodes(tmp_path, container_format, suffix):
    path = mkv_with_short_audio(tmp_path / f"short.{suffix}", container_format)
    clip = decode_clip(path, MediaSettings())
    assert clip.frames is not None and clip.duration == pytest.approx(2.0)
    assert len(clip.audio) / 16000 == pytest.approx(1.0, abs=0.1) and np.abs(clip.audio).max() > 0.2
    assert probe_media(path)["audio_duration"] == pytest.approx(1.0, abs=0.1)


def test_the_audio_track_marked_default_is_the_one_decoded(tmp_path):
    path = second_audio_track_default_clip(tmp_path / "two.mkv")
    assert np.abs(decode_clip(path, MediaSettings()).audio).max() > 0.2  # the tone, not the silent first track


def test_matroska_with_short_audio_scores_and_a_clip_over_the_limit_says_truncated(tiny_regressor_dir, tmp_path):
    mkv_with_short_audio(tmp_path / "in" / "short.mkv")
    long_clip(tmp_path / "in" / "long.mp4", seconds=6)
    output = tmp_path / "scores.csv"
    status = predict_main(["--model", str(tiny_regressor_dir), str(tmp_path / "in"), "--output", str(output),
                           "--device", "cpu", "--no_progress", "--max_audio_seconds", "4"])
    rows = {row["clip_id"]: row for row in read_rows(output)}
    assert status == 0, rows
    assert rows["short"]["modalities"] == "audio+video" and rows["short"]["truncated"] == "False"
    assert rows["long"]["score"] and rows["long"]["truncated"] == "True"
