"""Decoding (`processing_omni_regressor`: official frame rule, sizing, edge clips) and `omni_regressor.media` (writer,
header probe, decoded-media cache), on real mp4 files."""

import os
import subprocess
import sys

import av
import numpy as np
import pytest

from conftest import stale_and_fresh_temporaries
from omni_regressor import media
from omni_regressor.media import MediaCache, default_cache_dir, probe_media, write_clip
from processing_omni_regressor import (
    MediaError,
    MediaSettings,
    decode_clip,
    frame_count,
    frame_sample_times,
    frame_size,
    smart_resize,
)

SAMPLE_RATE = 16000
# Small frames keep decoding fast where a test is not about the official (much larger) pixel bounds.
SMALL = {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 16}


def index_coded_frames(num_frames, width=64, height=48):
    """Frame i is uniformly grey at brightness 8*i, so a decoded frame tells which source frame it was."""
    return np.stack([np.full((height, width, 3), 8 * index, dtype=np.uint8) for index in range(num_frames)])


def tone(seconds, frequency=440.0, amplitude=0.3):
    time = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def dominant_frequency(audio):
    spectrum = np.abs(np.fft.rfft(audio))
    return np.argmax(spectrum) * SAMPLE_RATE / len(audio)


def small_settings(**overrides):
    return MediaSettings(**{**SMALL, **overrides})


def write_raw_mp4(path, frames, fps=8, container_options=None, display_rotation_ccw=0):
    """H.264 mp4 written with PyAV directly: for files `write_clip` does not make (faststart, display matrix)."""
    with av.open(str(path), mode="w", options=container_options or {}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if display_rotation_ccw:
            stream.set_display_rotation(display_rotation_ccw)
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


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


def test_default_media_settings_are_the_official_preprocessing():
    settings = MediaSettings()
    assert (settings.image_factor, settings.min_pixels, settings.max_pixels) == (28, 128 * 28 * 28, 768 * 28 * 28)
    assert settings.total_pixels == 128000 * 28 * 28 * 0.9  # 90 % of a 128 000-token context
    assert (settings.fps, settings.min_frames, settings.max_frames) == (2.0, 4, 16)
    assert (settings.max_audio_seconds, settings.audio_sampling_rate) == (300.0, 16000)


@pytest.mark.parametrize(
    "window_seconds, expected_count",
    [
        (0.4, 4),  # 0.8 frames -> at least min_frames (4)
        (1.5, 4),  # 3 -> at least 4
        (2.6, 4),  # 5.2 -> floored to an even count: 4
        (3.0, 6),
        (3.9, 6),  # 7.8 -> floored (rounding would give 8)
        (4.0, 8),
        (7.4, 14),  # 14.8 -> 14
        (100.0, 16),  # capped by max_frames
    ],
)
def test_frame_count_is_clamped_to_min_and_max_frames_and_floored_to_even(window_seconds, expected_count):
    assert frame_count(window_seconds, MediaSettings()) == expected_count


def test_frame_count_floors_odd_bounds_to_even():
    assert frame_count(10.0, MediaSettings(min_frames=3, max_frames=7)) == 6
    assert frame_count(0.1, MediaSettings(min_frames=3, max_frames=7)) == 2


def test_frame_count_matches_qwen_omni_utils():
    from qwen_omni_utils.v2_5.vision_process import smart_nframes

    for window_seconds in (0.3, 1.0, 1.5, 2.6, 3.1, 3.9, 5.0, 7.7, 8.0, 8.5, 30.0, 300.0):
        for min_frames, max_frames in ((4, 16), (4, 768), (8, 32)):
            settings = MediaSettings(min_frames=min_frames, max_frames=max_frames)
            # 30 fps source: always more source frames than samples, so the official cap by total frames is inactive.
            official = smart_nframes(
                {"fps": 2.0, "min_frames": min_frames, "max_frames": max_frames}, round(window_seconds * 30), 30
            )
            assert frame_count(window_seconds, settings) == official, (window_seconds, min_frames, max_frames)


@pytest.mark.parametrize("window_seconds, expected_count", [(0.4, 4), (2.6, 4), (4.0, 8), (100.0, 16)])
def test_frames_sample_the_centres_of_equal_segments_of_the_window(window_seconds, expected_count):
    times, effective_fps = frame_sample_times(window_seconds, MediaSettings())
    assert len(times) == expected_count
    assert effective_fps == pytest.approx(expected_count / window_seconds)  # frames / window, not the setting
    segment = window_seconds / expected_count
    np.testing.assert_allclose(times, (np.arange(expected_count) + 0.5) * segment)


def test_frame_size_gives_each_frame_an_even_share_of_the_total_pixel_budget():
    settings = MediaSettings(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 64, total_pixels=28 * 28 * 64 * 4)
    few_height, few_width = frame_size(480, 640, 4, settings)  # budget share 128 tokens: max_pixels binds
    many_height, many_width = frame_size(480, 640, 16, settings)  # budget share 32 tokens
    assert few_height * few_width <= settings.max_pixels
    assert many_height * many_width <= settings.total_pixels / 16 * 2  # (the temporal patch holds 2 frames)
    assert many_height * many_width < few_height * few_width
    assert (many_height % 28, many_width % 28) == (0, 0)
    assert many_width / many_height == pytest.approx(640 / 480, rel=0.2)


def test_a_budget_share_below_min_pixels_is_raised_to_min_pixels_times_1_05():
    settings = MediaSettings(total_pixels=28 * 28 * 100)  # 12.5 tokens per frame over 16 frames
    height, width = frame_size(360, 640, 16, settings)
    assert (height, width) == smart_resize(360, 640, 28, settings.min_pixels, int(settings.min_pixels * 1.05))
    assert height * width > 8 * settings.total_pixels / 16 * 2


def test_frame_size_matches_qwen_omni_utils():
    from qwen_omni_utils.v2_5.vision_process import VIDEO_MAX_TOKEN_NUM, smart_resize as official_resize

    for total_pixels in (MediaSettings().total_pixels, 28 * 28 * 2000, 28 * 28 * 300):
        settings = MediaSettings(total_pixels=total_pixels)
        for num_frames in (4, 8, 16):
            for height, width in ((360, 640), (1080, 1920), (48, 64), (1920, 1080)):
                # qwen-omni-utils `fetch_video`: the per-frame cap from the total budget, floored at 1.05 x min_pixels.
                max_pixels = max(
                    min(VIDEO_MAX_TOKEN_NUM * 28 * 28, total_pixels / num_frames * 2), int(settings.min_pixels * 1.05)
                )
                expected = official_resize(height, width, 28, settings.min_pixels, max_pixels)
                assert frame_size(height, width, num_frames, settings) == expected, (total_pixels, num_frames, height)


def test_decoded_frames_follow_fps_and_pixel_limits(clip_3s):
    settings = small_settings(fps=2.0, max_frames=16)
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
    clip = decode_clip(path, MediaSettings(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 64))
    assert clip.frames.shape == (4, 168, 252, 3)  # 4:3 -> 6x9 patches of 28, 42336 <= 50176 pixels


def test_small_frames_are_upscaled_to_the_official_minimum(clip_3s):
    clip = decode_clip(clip_3s, MediaSettings(max_frames=4))
    height, width = clip.frames.shape[1:3]
    assert (height, width) == smart_resize(48, 64, 28, 128 * 28 * 28, 768 * 28 * 28)
    assert height * width >= 128 * 28 * 28


def test_decoded_frames_are_nearest_to_segment_centres(clip_3s):
    clip = decode_clip(clip_3s, small_settings(fps=2.0))
    # Centres 0.25, 0.75, ... 2.75 s at 8 fps are source frames 2, 6, ... 22 (brightness 8 * index).
    brightness = clip.frames.reshape(len(clip.frames), -1).mean(axis=1)
    np.testing.assert_allclose(brightness, 8 * np.array([2, 6, 10, 14, 18, 22]), atol=3)


def test_decoded_audio_matches_written_tone(clip_3s):
    clip = decode_clip(clip_3s, small_settings())
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert len(clip.audio) == pytest.approx(3.0 * SAMPLE_RATE, rel=0.02)
    assert dominant_frequency(clip.audio) == pytest.approx(440.0, abs=2)
    assert np.sqrt(np.mean(clip.audio**2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)


def test_audio_is_resampled_to_the_setting(clip_3s):
    clip = decode_clip(clip_3s, small_settings(audio_sampling_rate=8000))
    assert len(clip.audio) == pytest.approx(3.0 * 8000, rel=0.02)


def test_clip_without_audio_track_has_audio_none(tmp_path):
    path = write_clip(tmp_path / "silent.mp4", index_coded_frames(12), 8, None)
    clip = decode_clip(path, small_settings())
    assert clip.audio is None
    assert clip.frames.shape[0] == 4  # 1.5 s at 2 fps = 3 frames -> at least min_frames


def test_audio_only_file_has_frames_none(tmp_path):
    path = write_clip(tmp_path / "audio_only.mp4", None, 8, tone(1.0), SAMPLE_RATE)
    clip = decode_clip(path, small_settings())
    assert clip.frames is None
    assert len(clip.audio) == pytest.approx(SAMPLE_RATE, rel=0.02)


def test_single_frame_clip_repeats_its_frame_up_to_min_frames(tmp_path):
    frame = np.zeros((48, 64, 3), dtype=np.uint8)
    frame[:, :32] = 200
    path = write_clip(tmp_path / "one_frame.mp4", frame[None], 8, None)
    clip = decode_clip(path, small_settings())
    assert clip.frames.shape[0] == 4
    for repeated in clip.frames[1:]:
        np.testing.assert_array_equal(repeated, clip.frames[0])
    assert clip.frames[0].mean() > 50  # the real frame, not padding
    assert clip.fps == pytest.approx(4 / 0.125)  # 4 frames over the 0.125 s window


def test_short_clip_fills_min_frames_with_the_nearest_frames(tmp_path):
    path = write_clip(tmp_path / "three_frames.mp4", index_coded_frames(3) + 100, 8, None)
    clip = decode_clip(path, small_settings())
    # Window 0.375 s, 4 segment centres at 0.047, 0.141, 0.234, 0.328 s -> source frames 0, 1, 2, 2 (at 0, .125, .25 s).
    brightness = clip.frames.reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(brightness, 100 + 8 * np.array([0, 1, 2, 2]), atol=3)


def test_long_clip_is_truncated_and_frames_capped(clip_3s):
    settings = small_settings(fps=8.0, max_frames=4, max_audio_seconds=1.0)
    clip = decode_clip(clip_3s, settings)
    assert clip.truncated
    assert clip.duration == pytest.approx(1.0)
    assert len(clip.audio) == SAMPLE_RATE
    assert clip.frames.shape[0] == 4
    assert clip.fps == pytest.approx(4.0)  # 4 frames over the 1 s window
    # Segment centres 0.125, 0.375, 0.625, 0.875 s -> source frames 1, 3, 5, 7: all inside the window.
    brightness = clip.frames.reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(brightness, 8 * np.array([1, 3, 5, 7]), atol=3)


def test_random_bytes_raise_media_error_naming_the_path(tmp_path):
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(MediaError, match="corrupt.mp4") as raised:
        decode_clip(path, small_settings())
    assert raised.value.reason == "unreadable_file"
    with pytest.raises(MediaError, match="corrupt.mp4"):
        probe_media(path)


def test_file_cut_after_a_valid_header_is_corrupt(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (24, 48, 64, 3), dtype=np.uint8)
    path = write_raw_mp4(tmp_path / "cut.mp4", noise, container_options={"movflags": "faststart"})  # header first
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    assert probe_media(path)["duration"] == pytest.approx(3.0)  # the header still says 3 s
    with pytest.raises(MediaError, match="cut.mp4") as raised:
        decode_clip(path, small_settings())
    assert raised.value.reason == "corrupt_file"


@pytest.mark.parametrize("height, width", [(600, 2), (2, 600)])
def test_aspect_ratio_over_200_is_unsupported_geometry(tmp_path, height, width):
    path = write_clip(tmp_path / "sliver.mp4", np.full((4, height, width, 3), 100, dtype=np.uint8), 8, None)
    assert probe_media(path)["aspect_ratio"] == 300.0
    with pytest.raises(MediaError, match="sliver.mp4") as raised:
        decode_clip(path, small_settings())
    assert raised.value.reason == "unsupported_geometry"


def test_frames_are_turned_upright_from_the_display_rotation(tmp_path):
    stored = np.full((64, 96, 3), 128, dtype=np.uint8)  # landscape pixels, as a phone stores a portrait clip
    stored[:16, :24] = (255, 0, 0)  # red block at the stored top-left
    # Display matrix "rotate 90 degrees clockwise" (PyAV takes the counter-clockwise angle).
    path = write_raw_mp4(tmp_path / "portrait.mp4", np.repeat(stored[None], 4, axis=0), display_rotation_ccw=-90)
    clip = decode_clip(path, small_settings())
    height, width = clip.frames.shape[1:3]
    assert (height, width) == (84, 56)  # upright: portrait 64 wide x 96 tall, resized
    corner = clip.frames[0, : height // 8, -width // 8 :].reshape(-1, 3).mean(axis=0)
    assert corner[0] > 200 and corner[1] < 60  # the red block is now top-right
    assert clip.frames[0, : height // 8, : width // 8].mean() == pytest.approx(128, abs=10)


def test_missing_file_raises_media_error(tmp_path):
    with pytest.raises(MediaError, match="nowhere.mp4") as raised:
        decode_clip(tmp_path / "nowhere.mp4", small_settings())
    assert raised.value.reason == "missing_file"


def test_probe_reports_streams_without_decoding(clip_3s, tmp_path):
    expected = {
        "has_video": True,
        "has_audio": True,
        "duration": pytest.approx(3.0, abs=0.1),
        "num_frames": 24,
        "size": "64x48",
        "aspect_ratio": pytest.approx(64 / 48),
        "audio_duration": pytest.approx(3.0, abs=0.1),
    }
    assert probe_media(clip_3s) == expected
    silent = write_clip(tmp_path / "silent.mp4", index_coded_frames(4), 8, None)
    assert (probe_media(silent)["has_audio"], probe_media(silent)["audio_duration"]) == (False, None)
    audio_only = probe_media(write_clip(tmp_path / "audio_only.mp4", None, 8, tone(1.0), SAMPLE_RATE))
    assert (audio_only["has_video"], audio_only["size"], audio_only["aspect_ratio"]) == (False, None, None)
    assert audio_only["audio_duration"] == pytest.approx(1.0, abs=0.1)


def test_write_clip_rejects_odd_frame_size(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_clip(tmp_path / "odd.mp4", np.zeros((2, 47, 64, 3), dtype=np.uint8), 8)


@pytest.mark.parametrize(
    "field, value",
    [("fps", 0), ("fps", float("nan")), ("max_frames", 1), ("min_frames", 1), ("min_pixels", 100),
     ("max_pixels", 28 * 28 * 2), ("image_factor", 0), ("total_pixels", 0), ("audio_sampling_rate", 0),
     ("max_audio_seconds", -1.0), ("denoise", "sox")],
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
    assert "max_frames=8" in settings.cache_key().split(",")
    assert settings.cache_key() != MediaSettings(fps=2, max_frames=10).cache_key()


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
    cache.load(cached_clip, small_settings())
    cache.load(cached_clip, small_settings())
    assert len(counted_decodes) == 1
    assert (cache.decode_calls, cache.hits) == (1, 1)


def test_cache_is_shared_by_cache_objects_on_the_same_folder(tmp_path, cached_clip, counted_decodes):
    MediaCache(tmp_path / "cache").load(cached_clip, small_settings())
    second_run = MediaCache(tmp_path / "cache")
    second_run.load(cached_clip, small_settings())
    assert len(counted_decodes) == 1 and second_run.hits == 1


def test_cached_arrays_equal_a_fresh_decode(tmp_path, cached_clip):
    cache = MediaCache(tmp_path / "cache")
    cache.load(cached_clip, small_settings())
    cached = cache.load(cached_clip, small_settings())
    fresh = decode_clip(cached_clip, small_settings())
    assert cache.hits == 1
    np.testing.assert_array_equal(cached.frames, fresh.frames)
    np.testing.assert_array_equal(cached.audio, fresh.audio)
    assert (cached.fps, cached.duration, cached.truncated) == (fresh.fps, fresh.duration, fresh.truncated)
    assert cached.frames.dtype == np.uint8 and cached.audio.dtype == np.float32


def test_touched_file_is_decoded_again(tmp_path, cached_clip, counted_decodes):
    cache = MediaCache(tmp_path / "cache")
    cache.load(cached_clip, small_settings())
    stat = os.stat(cached_clip)
    os.utime(cached_clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    cache.load(cached_clip, small_settings())
    assert len(counted_decodes) == 2


def test_rewritten_file_is_decoded_again(tmp_path, cached_clip, counted_decodes):
    cache = MediaCache(tmp_path / "cache")
    first = cache.load(cached_clip, small_settings())
    write_clip(cached_clip, index_coded_frames(24)[12:], 8, tone(1.5), SAMPLE_RATE)  # brighter frames
    second = cache.load(cached_clip, small_settings())
    assert len(counted_decodes) == 2
    assert second.frames.mean() > first.frames.mean() + 50


def test_file_replaced_with_same_size_and_mtime_is_decoded_again(tmp_path, counted_decodes):
    # Uniform grey frames encode to files of identical size whatever the grey: a `cp -p`-style replacement.
    dark = write_clip(tmp_path / "dark.mp4", np.full((4, 48, 64, 3), 60, dtype=np.uint8), 8, None)
    bright = write_clip(tmp_path / "bright.mp4", np.full((4, 48, 64, 3), 200, dtype=np.uint8), 8, None)
    assert os.path.getsize(dark) == os.path.getsize(bright)
    cache = MediaCache(tmp_path / "cache")
    first = cache.load(dark, small_settings())
    stat = os.stat(dark)
    key_before = cache.entry_path(dark, small_settings())
    dark.write_bytes(bright.read_bytes())
    os.utime(dark, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (os.stat(dark).st_size, os.stat(dark).st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert cache.entry_path(dark, small_settings()) != key_before
    second = cache.load(dark, small_settings())
    assert len(counted_decodes) == 2
    assert second.frames.mean() > first.frames.mean() + 100


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_cache_key_fingerprints_the_start_middle_and_end_of_the_file(tmp_path, where):
    path = tmp_path / "blob.bin"
    data = bytearray(np.random.default_rng(0).bytes(1_000_000))
    path.write_bytes(bytes(data))
    stat = os.stat(path)
    cache = MediaCache(tmp_path / "cache")
    key_before = cache.entry_path(path, small_settings())
    offset = {"start": 10, "middle": len(data) // 2, "end": len(data) - 10}[where]
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cache.entry_path(path, small_settings()) != key_before


def test_stale_temporary_files_are_swept_and_fresh_ones_kept(tmp_path, cached_clip):
    stale, fresh = stale_and_fresh_temporaries(tmp_path / "cache")
    cache = MediaCache(tmp_path / "cache")
    cache.load(cached_clip, small_settings())
    assert not stale.exists()
    assert fresh.exists()  # another process may still be writing it
    assert len(cache.entries()) == 1


def test_changed_settings_are_decoded_again(tmp_path, cached_clip, counted_decodes):
    cache = MediaCache(tmp_path / "cache")
    cache.load(cached_clip, small_settings(fps=2.0))
    clip = cache.load(cached_clip, small_settings(fps=4.0))
    assert len(counted_decodes) == 2
    assert clip.frames.shape[0] == 6
    assert len(cache.entries()) == 2


def test_unreadable_cache_entry_is_decoded_again(tmp_path, cached_clip, counted_decodes):
    cache = MediaCache(tmp_path / "cache")
    cache.load(cached_clip, small_settings())
    cache.entry_path(cached_clip, small_settings()).write_bytes(b"partial")
    clip = cache.load(cached_clip, small_settings())
    assert len(counted_decodes) == 2 and clip.frames.shape[0] == 4


def test_cache_without_folder_always_decodes(cached_clip, counted_decodes):
    cache = MediaCache(None)
    cache.load(cached_clip, small_settings())
    cache.load(cached_clip, small_settings())
    assert len(counted_decodes) == 2 and cache.decode_calls == 2
    assert "disabled" in cache.describe()


def test_cache_reports_entries_and_size(tmp_path, cached_clip):
    cache = MediaCache(tmp_path / "cache")
    cache.load(cached_clip, small_settings())
    assert cache.size_bytes() > 0
    assert f"{tmp_path / 'cache'}" in cache.describe() and "1 entries" in cache.describe()
    assert not list((tmp_path / "cache").glob("*.tmp"))  # written atomically, no leftovers


def test_clip_without_audio_round_trips_through_the_cache(tmp_path):
    path = write_clip(tmp_path / "silent.mp4", index_coded_frames(12), 8, None)
    cache = MediaCache(tmp_path / "cache")
    cache.load(path, small_settings())
    clip = cache.load(path, small_settings())
    assert cache.hits == 1 and clip.audio is None and clip.frames.shape[0] == 4


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OMNI_REGRESSOR_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("OMNI_REGRESSOR_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "omni_regressor", "media")

