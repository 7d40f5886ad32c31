"""Long videos in the pipeline (and so the web page) are scored a few batches of windows at a time, like `predict
--window`: memory stays flat in the video's length; a clip cut at the limit says so."""

import pipeline_omni_regressor
from hostile_media import long_clip
from omni_regressor.inference import SentimentScorer
from pipeline_omni_regressor import WINDOW_CHUNK_BATCHES, score_video_windows


def test_pipeline_windows_are_scored_in_bounded_chunks_in_order(tiny_regressor_dir, tmp_path, monkeypatch):
    scorer = SentimentScorer.from_pretrained(tiny_regressor_dir, device="cpu")
    video = long_clip(tmp_path / "long.mp4", seconds=12)
    real, sizes = pipeline_omni_regressor.score_clips, []

    def recording(model, encoder, paths, *args, **kwargs):
        sizes.append(len(paths))
        return real(model, encoder, paths, *args, **kwargs)

    monkeypatch.setattr(pipeline_omni_regressor, "score_clips", recording)
    results, summary = score_video_windows(scorer.model, scorer.encoder, video, window=1.0, batch_size=1)
    assert max(sizes) == WINDOW_CHUNK_BATCHES and sum(sizes) == len(results) == 12
    assert [result.extras["start"] for result in results] == [float(second) for second in range(12)]
    assert summary["windows"] == 12 and summary["windows_failed"] == 0


def test_a_clip_longer_than_the_limit_is_marked_truncated_by_the_pipeline(tiny_regressor_dir, tmp_path):
    scorer = SentimentScorer.from_pretrained(tiny_regressor_dir, device="cpu", processing={"max_audio_seconds": 2.0})
    short, long = long_clip(tmp_path / "short.mp4", seconds=1), long_clip(tmp_path / "long.mp4", seconds=4)
    results = scorer.score_clips([short, long])
    assert [result.extras.get("truncated", False) for result in results] == [False, True]
