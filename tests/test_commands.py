"""The commands of omni_regressor/commands.py: `inspect-inputs` reports the official token counts of a clip and applies
processing flags; the writing commands (`tiny-backbone`, `demo-data`) refuse a non-empty folder and leave it untouched
unless told --overwrite."""

import json
import shutil

import hostile_media as hm
from conftest import SMALL_PIXEL_FLAGS, cli, digests, one_error_line
from omni_regressor.cli import main as cli_main


def test_tiny_backbone_refuses_a_non_empty_folder_and_leaves_it_untouched(regressor, tmp_path):
    folder = tmp_path / "my-model"
    shutil.copytree(regressor, folder)
    before = digests(folder)
    status, _, err = cli("tiny-backbone", "--output_dir", folder)
    assert status == 2
    one_error_line(err, f"--output_dir {folder} is not empty; pass --overwrite")
    assert digests(folder) == before


def test_demo_data_refuses_a_folder_with_a_real_label_csv_and_writes_there_with_overwrite(tmp_path):
    folder = tmp_path / "MOSI"
    hm.label_csv_with_bom(folder)
    before = digests(folder)
    status, _, err = cli("demo-data", "--output_dir", folder, "--num_clips", "3")
    assert status == 2
    one_error_line(err, f"--output_dir {folder} is not empty; pass --overwrite")
    assert digests(folder) == before
    status, _, _ = cli("demo-data", "--output_dir", folder, "--num_clips", "3", "--overwrite", "true")
    assert status == 0 and digests(folder) != before


def official_token_counts(width: int, height: int, seconds: float, fps: float = 25.0, max_frames: int = 16) -> dict:
    """Video and audio tokens of a clip by qwen-omni-utils' sizing rules (the official implementation) and the
    released processor's audio rule, computed without the code under test."""
    from qwen_omni_utils.v2_5.vision_process import (FPS_MIN_FRAMES, VIDEO_MAX_TOKEN_NUM, VIDEO_MIN_TOKEN_NUM,
                                                     smart_nframes, smart_resize)

    factor = 28
    total_frames = int(seconds * fps)
    frames = smart_nframes({"fps": 2.0, "max_frames": max_frames, "min_frames": FPS_MIN_FRAMES}, total_frames, fps)
    min_pixels = VIDEO_MIN_TOKEN_NUM * factor * factor
    max_pixels = max(min(VIDEO_MAX_TOKEN_NUM * factor * factor, 128000 * factor * factor * 0.9 / frames * 2), int(min_pixels * 1.05))
    resized_height, resized_width = smart_resize(height, width, factor, min_pixels, int(max_pixels))
    video_tokens = frames // 2 * (resized_height // 14) * (resized_width // 14) // 4
    mel_frames = int(seconds * 100)
    audio_tokens = ((mel_frames - 1) // 2 + 1 - 2) // 2 + 1
    return {"frames": frames, "frame_height": resized_height, "frame_width": resized_width,
            "video_tokens": video_tokens, "audio_tokens": audio_tokens}


def test_inspect_inputs_reports_the_official_token_counts_of_a_360p_clip(real_tokenizer_backbone_dir, clip_360p_8s, capsys):
    assert cli_main(["inspect-inputs", "--model", str(real_tokenizer_backbone_dir), str(clip_360p_8s),
                     "--transcript", "I really liked it"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = official_token_counts(640, 360, 8.0)
    assert {key: report[key] for key in expected} == expected
    assert (expected["frame_height"], expected["frame_width"], expected["video_tokens"]) == (364, 644, 2392)
    assert report["audio_seconds"] == 8.0 and report["audio_feature_frames"] == 800 and report["fps"] == 2.0
    assert report["total_tokens"] == report["text_tokens"] + report["audio_tokens"] + report["video_tokens"]
    assert report["text_tokens"] > 0 and report["modalities"] == ["text", "audio", "video"]


def test_inspect_inputs_applies_processing_flags_and_a_saved_regressors_settings(tiny_backbone_dir, clip_360p_8s, capsys, tmp_path):
    assert cli_main(["inspect-inputs", "--model", str(tiny_backbone_dir), str(clip_360p_8s), "--modalities", "T+V",
                     "--transcript", "ok", "--max_frames", "4", *SMALL_PIXEL_FLAGS]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    height, width = report["frame_height"], report["frame_width"]
    assert report["frames"] == 4 and report["audio_tokens"] == 0 and height * width <= 28 * 28 * 16
    assert report["video_tokens"] == 4 // 2 * (height // 14) * (width // 14) // 4
