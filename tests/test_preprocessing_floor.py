"""Preprocessing at the decode floor: frames sized once at decode, the processor's resize skipped, same tensors."""

import sys
from unittest import mock

import numpy as np
import pytest
import torch
from transformers import AutoProcessor, Qwen2VLVideoProcessor

import decoding_omni_regressor
from omni_regressor.media import write_clip
from omni_regressor.tiny_backbone import build_processor
from processing_omni_regressor import ClipEncoder, DecodedClip, ProcessingSettings, decode_clip, frame_size


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
