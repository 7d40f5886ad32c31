"""Decoding (decoding_omni_regressor.py, through `processing_omni_regressor`, `omni-regressor inspect-inputs` and the
media cache): edge clips at the official settings (too few frames, too long, an extreme resolution), hostile clips (a
ten-minute clip cut to the model's window, a 4K clip to its pixel budget, a rotated clip fed upright), containers as
they are (Matroska/WebM streams measured by their own tags, the default audio track, a clip over the limit marked
`truncated`), and preprocessing at the decode floor (frames sized once at decode, the processor's resize skipped, same
tensors)."""

import json
import logging
import sys
from dataclasses import replace
from unittest import mock

import numpy as np
import pytest
import torch
from transformers import AutoProcessor, Qwen2VLVideoProcessor

import decoding_omni_regressor
from conftest import SAMPLE_RATE, SMALL_PIXELS, cli, speech_like_tone, write_test_clip
from hostile_media import long_clip, mkv_with_short_audio, second_audio_track_default_clip
from omni_regressor.media import probe_media, write_clip
from omni_regressor.outputs import read_rows
from omni_regressor.predict import main as predict_main
from omni_regressor.tiny_backbone import build_processor
from processing_omni_regressor import (
    ClipEncoder,
    DecodedClip,
    MediaError,
    MediaSettings,
    ProcessingSettings,
    decode_clip,
    frame_size,
)


def test_a_ten_minute_clip_is_cut_to_the_model_window_and_a_4k_clip_to_its_pixel_budget(regressor, clip_folder):
    def inspected(name):
        status, out, err = cli("inspect-inputs", "--model", regressor, clip_folder / name)
        assert status == 0, err
        return json.loads(out)

    ten_minutes = inspected("ten_minutes.mp4")
    assert ten_minutes["truncated"] is True and ten_minutes["audio_seconds"] == 300.0
    assert ten_minutes["frames"] == ten_minutes["settings"]["max_frames"]
    ultra_hd = inspected("ultra_hd.mp4")
    assert ultra_hd["frame_height"] * ultra_hd["frame_width"] <= ultra_hd["settings"]["max_pixels"]
    assert ultra_hd["frame_width"] > ultra_hd["frame_height"]


def test_a_rotated_video_is_fed_upright(regressor, clip_folder):
    from transformers import AutoConfig

    from omni_regressor.media import MediaCache
    from processing_omni_regressor import ProcessingSettings

    # 12 tokens' worth of pixels at least: 48x64 is scaled to 84x112 (the model's 56x56 would hide the aspect ratio).
    min_pixels = 12 * 28 * 28
    status, out, err = cli("inspect-inputs", "--model", regressor, clip_folder / "rotated.mp4", "--min_pixels", min_pixels)
    assert status == 0, err
    report = json.loads(out)
    assert (report["frame_height"], report["frame_width"]) == (112, 84)  # stored 64x48 landscape, displayed portrait
    settings = replace(ProcessingSettings.from_config(AutoConfig.from_pretrained(regressor, trust_remote_code=True)),
                       min_pixels=min_pixels)
    frames = MediaCache(None).load(clip_folder / "rotated.mp4", settings.media_settings()).frames
    assert frames.shape[1:3] == (112, 84)
    height, width = frames.shape[1:3]
    top_left = frames[:, : height // 8, : width // 8].reshape(-1, 3).mean(axis=0)
    top_right = frames[:, : height // 16, -(width // 16):].reshape(-1, 3).mean(axis=0)
    bottom = frames[:, -(height // 4):].reshape(-1, 3).mean(axis=0)
    assert top_left[0] > 200 and top_left[1] < 60  # red, where the display puts it
    assert top_right[1] > 200 and top_right[0] < 60  # green
    assert np.all(np.abs(bottom - 128) < 20)  # grey


def test_a_clip_shorter_than_the_minimum_frame_count_repeats_frames(tmp_path):
    path = write_clip(tmp_path / "short.mp4", np.full((2, 48, 64, 3), 90, np.uint8), 25, speech_like_tone(0.5))
    clip = decode_clip(path, MediaSettings(**SMALL_PIXELS))
    assert clip.frames.shape[0] == 4 and np.array_equal(clip.frames[0], clip.frames[-1])


def test_a_clip_longer_than_the_audio_limit_is_cut_with_one_warning(tmp_path, caplog):
    path = write_test_clip(tmp_path / "long.mp4", 64, 48, 6.0, fps=5)
    with caplog.at_level(logging.WARNING):
        clip = decode_clip(path, MediaSettings(max_audio_seconds=2.0, **SMALL_PIXELS))
    assert clip.truncated and len(clip.audio) == 2 * SAMPLE_RATE and clip.duration == 2.0
    warnings = [record.getMessage() for record in caplog.records if "only the first" in record.getMessage()]
    assert len(warnings) == 1 and str(path) in warnings[0] and "\n" not in warnings[0]


def test_an_extreme_resolution_is_an_error_naming_the_clip(tmp_path):
    path = write_clip(tmp_path / "sliver.mp4", np.full((4, 600, 2, 3), 90, np.uint8), 4, None)
    with pytest.raises(MediaError) as error:
        decode_clip(path, MediaSettings(**SMALL_PIXELS))
    assert error.value.reason == "unsupported_geometry" and str(path) in str(error.value)


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


@pytest.fixture(scope="module")
def wide_clip(tmp_path_factory):
    """1.5 s of 640x360 at 10 fps with a moving square: official sizing gives 4 frames of 364x644."""
    frames = np.zeros((15, 360, 640, 3), dtype=np.uint8)  # (T, H, W, 3)
    frames[...] = np.linspace(0, 255, 640, dtype=np.uint8)[None, None, :, None]
    for index, frame in enumerate(frames):
        frame[120:240, 30 * index : 30 * index + 120] = (255, 80, 0)
    audio = (0.2 * np.sin(2 * np.pi * 220 * np.arange(24000) / 16000)).astype(np.float32)
    return write_clip(tmp_path_factory.mktemp("floor") / "wide.mp4", frames, 10.0, audio, 16000)


@pytest.fixture(scope="module")
def official_encoder(tiny_processor):
    return ClipEncoder(tiny_processor, ProcessingSettings(modalities=("text", "audio", "video")))


@pytest.mark.parametrize("backbone, frame_shape, grid", [("qwen2.5-omni", (4, 364, 644, 3), [2, 26, 46]),
                                                       ("qwen3-omni", (4, 352, 640, 3), [2, 22, 40])])
def test_frames_sized_at_decode_skip_the_processors_copies_with_identical_tensors(wide_clip, backbone, frame_shape, grid):
    encoder = ClipEncoder(build_processor(backbone, "small"), ProcessingSettings())
    clip = encoder.decode(wide_clip)
    assert clip.frames.shape == frame_shape
    video_processor_class = type(encoder.processor.video_processor)
    with mock.patch.object(video_processor_class, "resize", autospec=True,
                           side_effect=video_processor_class.resize) as resize, \
         mock.patch.object(video_processor_class, "__call__", autospec=True,
                           side_effect=video_processor_class.__call__) as video_processor_call:
        short_path = encoder.encode("a fine film", clip)
        assert (resize.call_count, video_processor_call.call_count) == (0, 0)
        with mock.patch.object(ClipEncoder, "frames_have_final_size", return_value=False):
            processor_path = encoder.encode("a fine film", clip)  # the path before: the processor does it all
        assert (resize.call_count, video_processor_call.call_count) == (1, 1)
    assert short_path.keys() == processor_path.keys()
    for key, value in processor_path.items():
        if isinstance(value, torch.Tensor):
            assert value.dtype == short_path[key].dtype and torch.equal(short_path[key], value), key
        else:
            assert short_path[key] == value, key
    assert short_path["video_grid_thw"].tolist() == [grid]


def test_the_saved_processor_is_the_original_one(official_encoder, tmp_path):
    official_encoder.save_pretrained(tmp_path)
    assert type(official_encoder.processor.video_processor) is Qwen2VLVideoProcessor
    assert type(AutoProcessor.from_pretrained(tmp_path).video_processor) is Qwen2VLVideoProcessor


def test_frames_of_another_size_are_still_resized_by_the_processor(official_encoder):
    frames = np.random.default_rng(0).integers(0, 255, size=(4, 250, 420, 3), dtype=np.uint8)
    clip = DecodedClip(frames=frames, fps=2.0, audio=None, duration=2.0)
    assert not official_encoder.frames_have_final_size(frames)
    encoded = official_encoder.encode("a fine film", clip, ("text", "video"))
    height, width = frame_size(250, 420, 4, official_encoder.media_settings)
    assert encoded["video_grid_thw"].tolist() == [[2, height // 14, width // 14]]


def test_parallel_frame_conversion_equals_one_thread(official_encoder, wide_clip):
    settings = official_encoder.media_settings
    with mock.patch.object(decoding_omni_regressor, "_conversion_threads", return_value=1):
        one_thread = decode_clip(wide_clip, settings)
    with mock.patch.object(decoding_omni_regressor, "_conversion_threads", return_value=4):
        four_threads = decode_clip(wide_clip, settings)
    assert four_threads.frames.flags.c_contiguous
    np.testing.assert_array_equal(one_thread.frames, four_threads.frames)


def test_a_one_frame_clip_fills_every_slot_with_its_one_conversion(tmp_path):
    path = write_clip(tmp_path / "still.mp4", np.full((1, 64, 96, 3), 200, dtype=np.uint8), 1.0)
    settings = ProcessingSettings(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16).resolve_for(28, 300.0).media_settings()
    with mock.patch.object(decoding_omni_regressor, "_conversion_threads", return_value=4):
        clip = decode_clip(path, settings)
    assert clip.frames.shape[0] == 4 and clip.frames.flags.c_contiguous
    assert all(np.array_equal(frame, clip.frames[0]) for frame in clip.frames)


def test_official_preprocessing_benchmark_names_what_is_missing(monkeypatch, capsys):
    from omni_regressor.benchmarks import official_preprocessing

    monkeypatch.setitem(sys.modules, "torchcodec", None)  # as if not installed
    monkeypatch.setattr(official_preprocessing.importlib.util, "find_spec",
                        lambda name: None if name == "torchcodec" else object())
    with pytest.raises(SystemExit) as raised:
        official_preprocessing.main(["--seconds", "1", "--sizes", "64x64"])
    assert "torchcodec" in str(raised.value) and "omni-regressor[bench]" in str(raised.value)


def test_frames_the_short_path_cannot_take_go_to_the_processor(official_encoder):
    frames = np.random.default_rng(1).integers(0, 255, size=(4, 644, 364, 3), dtype=np.uint8).transpose(0, 2, 1, 3)
    assert not frames.flags.c_contiguous and official_encoder.frames_have_final_size(frames)
    clip = DecodedClip(frames=frames, fps=2.0, audio=None, duration=2.0)
    encoded = official_encoder.encode("a fine film", clip, ("text", "video"))
    reference = official_encoder.processor.video_processor([np.ascontiguousarray(frames)], do_resize=False,
                                                           return_tensors="pt")
    assert torch.equal(encoded["pixel_values_videos"], reference["pixel_values_videos"])
