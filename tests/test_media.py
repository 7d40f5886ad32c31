"""omni_regressor.media: decoding rule, edge clips, writer, and the decoded-media cache (real mp4 files)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from omni_regressor import media
from omni_regressor.media import (
    MediaCache,
    MediaError,
    MediaSettings,
    decode_clip,
    default_cache_dir,
    frame_sample_times,
    probe_media,
    smart_resize,
    write_clip,
)

SAMPLE_RATE = 16000


def index_coded_frames(num_frames, width=64, height=48):
    """Frame i is uniformly grey at brightness 8*i, so a decoded frame tells which source frame it was."""
    return np.stack([np.full((height, width, 3), 8 * index, dtype=np.uint8) for index in range(num_frames)])


def tone(seconds, frequency=440.0, amplitude=0.3):
    time = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def dominant_frequency(audio):
    spectrum = np.abs(np.fft.rfft(audio))
    return np.argmax(spectrum) * SAMPLE_RATE / len(audio)


@pytest.fixture(scope="module")
def clip_3s(tmp_path_factory):
    """3 s, 8 fps (24 index-coded frames), 64x48, 440 Hz tone."""
    path = tmp_path_factory.mktemp("media") / "clip_3s.mp4"
    return write_clip(path, index_coded_frames(24), 8, tone(3.0), SAMPLE_RATE)


def test_smart_resize_matches_transformers_rule():
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as reference

    settings = MediaSettings()
    for height, width in [(48, 64), (28, 28), (10, 300), (480, 640), (1080, 1920), (720, 1280), (100, 37)]:
        expected = reference(height, width, 28, settings.min_pixels, settings.max_pixels)
        assert smart_resize(height, width, 28, settings.min_pixels, settings.max_pixels) == expected


@pytest.mark.parametrize(
    "window_seconds, expected_count, expected_fps",
    [
        (0.4, 2, 2.0),  # round(0.8) = 1 -> at least 2
        (1.5, 2, 2.0),  # round(3) = 3 -> even: 2
        (2.6, 4, 2.0),  # round(5.2) = 5 -> even: 4
        (4.0, 8, 2.0),
        (100.0, 16, 0.16),  # capped by max_frames: frames span the window
    ],
)
def test_frame_count_follows_the_rule(window_seconds, expected_count, expected_fps):
    times, effective_fps = frame_sample_times(window_seconds, MediaSettings(fps=2.0, max_frames=16))
    assert len(times) == expected_count
    assert effective_fps == pytest.approx(expected_fps)
    assert np.diff(times) == pytest.approx(np.full(expected_count - 1, 1 / expected_fps))


def test_decoded_frames_follow_fps_and_pixel_limits(clip_3s):
    settings = MediaSettings(fps=2.0, max_frames=16)
    clip = decode_clip(clip_3s, settings)
    num_frames, height, width, channels = clip.frames.shape
    assert (num_frames, channels) == (6, 3)
    assert height % 28 == 0 and width % 28 == 0
    assert settings.min_pixels <= height * width <= settings.max_pixels
    assert clip.frames.dtype == np.uint8
    assert clip.fps == 2.0
    assert clip.duration == pytest.approx(3.0)
    assert not clip.truncated


def test_large_frames_are_downscaled_within_max_pixels_keeping_aspect(tmp_path):
    path = write_clip(tmp_path / "large.mp4", np.zeros((4, 240, 320, 3), dtype=np.uint8), 8, None)
    clip = decode_clip(path, MediaSettings(max_pixels=28 * 28 * 64))
    assert clip.frames.shape[1:] == (168, 252, 3)  # 4:3 -> 6x9 patches of 28, 42336 <= 50176 pixels


def test_decoded_frames_are_nearest_to_segment_centres(clip_3s):
    clip = decode_clip(clip_3s, MediaSettings(fps=2.0))
    # Centres 0.25, 0.75, ... 2.75 s at 8 fps are source frames 2, 6, ... 22 (brightness 8 * index).
    brightness = clip.frames.reshape(len(clip.frames), -1).mean(axis=1)
    np.testing.assert_allclose(brightness, 8 * np.array([2, 6, 10, 14, 18, 22]), atol=3)


def test_decoded_audio_matches_written_tone(clip_3s):
    clip = decode_clip(clip_3s, MediaSettings())
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert len(clip.audio) == pytest.approx(3.0 * SAMPLE_RATE, rel=0.02)
    assert dominant_frequency(clip.audio) == pytest.approx(440.0, abs=2)
    assert np.sqrt(np.mean(clip.audio**2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)


def test_audio_is_resampled_to_the_setting(clip_3s):
    clip = decode_clip(clip_3s, MediaSettings(audio_sampling_rate=8000))
    assert len(clip.audio) == pytest.approx(3.0 * 8000, rel=0.02)


def test_clip_without_audio_track_has_audio_none(tmp_path):
    path = write_clip(tmp_path / "silent.mp4", index_coded_frames(12), 8, None)
    clip = decode_clip(path, MediaSettings())
    assert clip.audio is None
    assert clip.frames.shape[0] == 2


def test_audio_only_file_has_frames_none(tmp_path):
    path = write_clip(tmp_path / "audio_only.mp4", None, 8, tone(1.0), SAMPLE_RATE)
    clip = decode_clip(path, MediaSettings())
    assert clip.frames is None
    assert len(clip.audio) == pytest.approx(SAMPLE_RATE, rel=0.02)


def test_single_frame_clip_gives_two_identical_frames(tmp_path):
    frame = np.zeros((48, 64, 3), dtype=np.uint8)
    frame[:, :32] = 200
    path = write_clip(tmp_path / "one_frame.mp4", frame[None], 8, None)
    clip = decode_clip(path, MediaSettings())
    assert clip.frames.shape[0] == 2
    np.testing.assert_array_equal(clip.frames[0], clip.frames[1])
    assert clip.frames[0].mean() > 50  # the real frame, not padding


def test_long_clip_is_truncated_and_frames_capped(clip_3s):
    settings = MediaSettings(fps=8.0, max_frames=4, max_audio_seconds=1.0)
    clip = decode_clip(clip_3s, settings)
    assert clip.truncated
    assert clip.duration == pytest.approx(1.0)
    assert len(clip.audio) == SAMPLE_RATE
    assert clip.frames.shape[0] == 4
    assert clip.fps == pytest.approx(4.0)  # 4 frames over the 1 s window
    # Segment centres 0.125, 0.375, 0.625, 0.875 s -> source frames 1, 3, 5, 7: all inside the window.
    brightness = clip.frames.reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(brightness, 8 * np.array([1, 3, 5, 7]), atol=3)


def test_corrupt_file_raises_media_error_naming_the_path(tmp_path):
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(MediaError, match="corrupt.mp4") as raised:
        decode_clip(path, MediaSettings())
    assert raised.value.reason == "unreadable_file"
    with pytest.raises(MediaError, match="corrupt.mp4"):
        probe_media(path)


def test_missing_file_raises_media_error(tmp_path):
    with pytest.raises(MediaError, match="nowhere.mp4") as raised:
        decode_clip(tmp_path / "nowhere.mp4", MediaSettings())
    assert raised.value.reason == "missing_file"


def test_probe_reports_streams_without_decoding(clip_3s, tmp_path):
    expected = {"has_video": True, "has_audio": True, "duration": pytest.approx(3.0, abs=0.1), "num_frames": 24}
    assert probe_media(clip_3s) == expected
    silent = write_clip(tmp_path / "silent.mp4", index_coded_frames(4), 8, None)
    assert probe_media(silent)["has_audio"] is False


def test_write_clip_rejects_odd_frame_size(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_clip(tmp_path / "odd.mp4", np.zeros((2, 47, 64, 3), dtype=np.uint8), 8)


@pytest.mark.parametrize(
    "field, value",
    [("fps", 0), ("fps", float("nan")), ("max_frames", 1), ("min_pixels", 100), ("max_pixels", 28 * 28 * 2),
     ("audio_sampling_rate", 0), ("max_audio_seconds", -1.0)],
)
def test_media_settings_reject_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        MediaSettings(**{field: value})


def test_settings_cache_key_is_stable_across_processes():
    settings = MediaSettings(fps=2, max_frames=8)
    assert settings.cache_key() == MediaSettings(fps=2.0, max_frames=8).cache_key()
    code = "from omni_regressor.media import MediaSettings; print(MediaSettings(fps=2, max_frames=8).cache_key())"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    other = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == settings.cache_key()
    assert json.loads(settings.cache_key())["max_frames"] == 8


# --- cache -----------------------------------------------------------------------------------------------------


@pytest.fixture
def counted_decodes(monkeypatch):
    """Counts calls of the module-level `decode_clip` (the one MediaCache uses)."""
    calls = []
    real_decode_clip = media.decode_clip

    def counting_decode_clip(path, settings):
        calls.append(str(path))
        return real_decode_clip(path, settings)

    monkeypatch.setattr(media, "decode_clip", counting_decode_clip)
    return calls


@pytest.fixture
def cached_clip(tmp_path):
    return write_clip(tmp_path / "clip.mp4", index_coded_frames(12), 8, tone(1.5), SAMPLE_RATE)


def test_second_load_does_not_decode(tmp_path, cached_clip, counted_decodes):
    cache = MediaCache(tmp_path / "cache")
    cache.load(cached_clip, MediaSettings())
    cache.load(cached_clip, MediaSettings())
    assert len(counted_decodes) == 1
    assert (cache.decode_calls, cache.hits) == (1, 1)


def test_cache_is_shared_by_cache_objects_on_the_same_folder(tmp_path, cached_clip, counted_decodes):
    MediaCache(tmp_path / "cache").load(cached_clip, MediaSettings())
    second_run = MediaCache(tmp_path / "cache")
    second_run.load(cached_clip, MediaSettings())
    assert len(counted_decodes) == 1 and second_run.hits == 1


def test_cached_arrays_equal_a_fresh_decode(tmp_path, cached_clip):
    cache = MediaCache(tmp_path / "cache")
    cache.load(cached_clip, MediaSettings())
    cached = cache.load(cached_clip, MediaSettings())
    fresh = decode_clip(cached_clip, MediaSettings())
    assert cache.hits == 1
    np.testing.assert_array_equal(cached.frames, fresh.frames)
    np.testing.assert_array_equal(cached.audio, fresh.audio)
    assert (cached.fps, cached.duration, cached.truncated) == (fresh.fps, fresh.duration, fresh.truncated)
    assert cached.frames.dtype == np.uint8 and cached.audio.dtype == np.float32


def test_touched_file_is_decoded_again(tmp_path, cached_clip, counted_decodes):
    cache = MediaCache(tmp_path / "cache")
    cache.load(cached_clip, MediaSettings())
    stat = os.stat(cached_clip)
    os.utime(cached_clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    cache.load(cached_clip, MediaSettings())
    assert len(counted_decodes) == 2


def test_rewritten_file_is_decoded_again(tmp_path, cached_clip, counted_decodes):
    cache = MediaCache(tmp_path / "cache")
    first = cache.load(cached_clip, MediaSettings())
    write_clip(cached_clip, index_coded_frames(24)[12:], 8, tone(1.5), SAMPLE_RATE)  # brighter frames
    second = cache.load(cached_clip, MediaSettings())
    assert len(counted_decodes) == 2
    assert second.frames.mean() > first.frames.mean() + 50


def test_changed_settings_are_decoded_again(tmp_path, cached_clip, counted_decodes):
    cache = MediaCache(tmp_path / "cache")
    cache.load(cached_clip, MediaSettings(fps=2.0))
    clip = cache.load(cached_clip, MediaSettings(fps=4.0))
    assert len(counted_decodes) == 2
    assert clip.frames.shape[0] == 6
    assert len(cache.entries()) == 2


def test_unreadable_cache_entry_is_decoded_again(tmp_path, cached_clip, counted_decodes):
    cache = MediaCache(tmp_path / "cache")
    cache.load(cached_clip, MediaSettings())
    cache.entry_path(cached_clip, MediaSettings()).write_bytes(b"partial")
    clip = cache.load(cached_clip, MediaSettings())
    assert len(counted_decodes) == 2 and clip.frames.shape[0] == 2


def test_cache_without_folder_always_decodes(cached_clip, counted_decodes):
    cache = MediaCache(None)
    cache.load(cached_clip, MediaSettings())
    cache.load(cached_clip, MediaSettings())
    assert len(counted_decodes) == 2 and cache.decode_calls == 2
    assert "disabled" in cache.describe()


def test_cache_reports_entries_and_size(tmp_path, cached_clip):
    cache = MediaCache(tmp_path / "cache")
    cache.load(cached_clip, MediaSettings())
    assert cache.size_bytes() > 0
    assert f"{tmp_path / 'cache'}" in cache.describe() and "1 entries" in cache.describe()
    assert not list((tmp_path / "cache").glob("*.tmp"))  # written atomically, no leftovers


def test_clip_without_audio_round_trips_through_the_cache(tmp_path):
    path = write_clip(tmp_path / "silent.mp4", index_coded_frames(12), 8, None)
    cache = MediaCache(tmp_path / "cache")
    cache.load(path, MediaSettings())
    clip = cache.load(path, MediaSettings())
    assert cache.hits == 1 and clip.audio is None and clip.frames.shape[0] == 2


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OMNI_REGRESSOR_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("OMNI_REGRESSOR_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "omni_regressor", "media")

