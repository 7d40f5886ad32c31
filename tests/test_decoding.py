"""Decoding hostile clips (decoding_omni_regressor.py, seen through `omni-regressor inspect-inputs` and the media
cache): a ten-minute clip is cut to the model's window, a 4K clip to its pixel budget, a rotated clip is fed upright."""

import json
from dataclasses import replace

import numpy as np

from conftest import cli


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
