"""check-data on hostile datasets (omni_regressor/data/checks.py): each damaged clip or odd transcript is named with
its problem kind, and a label file without rows is a problem for check-data and train alike.

Choices pinned down here:
- A clip too short for a modality (1 frame + 5 ms of audio) is a `too_short_audio` problem for train/evaluate/
  check-data with audio (predict scores it on the modalities it can provide: test_predict_inputs.py).
- A clip cut after its header is found only by decoding (`check-data` decodes by default); `--full_decode false`
  reads headers and finds the rest.
- A transcript of special tokens only is an empty transcript.
"""

import pytest

import hostile_media as hm
from conftest import CUT, SMALL_PIXEL_FLAGS, TINY, cli, hostile_training_flags, problem_lines


@pytest.mark.parametrize("decode_flags", [[], ["--full_decode", "true"]], ids=["default", "full_decode"])
def test_check_data_names_each_hostile_clip_with_its_kind(hostile_root, hostile_cache, expected_problems, decode_flags):
    status, out, err = cli("check-data", hostile_root[0], *decode_flags, "--media_cache_dir", hostile_cache,
                           *SMALL_PIXEL_FLAGS)
    assert status == 1 and "Traceback" not in err
    assert problem_lines(out) == expected_problems
    assert "27 clips read, 4 problems." in out
    assert "4 problem(s): corrupt_file=1, unsupported_geometry=1, too_short_audio=1, empty_transcript=1" in out


def test_header_only_check_names_geometry_and_short_audio_but_needs_a_decode_for_the_cut_file(
        hostile_root, expected_problems):
    status, out, _ = cli("check-data", hostile_root[0], "--full_decode", "false", *SMALL_PIXEL_FLAGS)
    assert status == 1
    assert problem_lines(out) == {clip: kind for clip, kind in expected_problems.items() if clip != CUT}


def test_the_tiny_clip_is_no_problem_for_text_and_video(hostile_root, hostile_cache, expected_problems):
    status, out, _ = cli("check-data", hostile_root[0], "--modalities", "T+V", "--media_cache_dir", hostile_cache,
                         *SMALL_PIXEL_FLAGS)
    assert status == 1
    assert problem_lines(out) == {clip: kind for clip, kind in expected_problems.items() if clip != TINY}


def test_a_header_only_label_file_is_a_problem_for_check_data_and_train(tiny_backbone_dir, tmp_path, no_model_loads):
    root = hm.header_only_label_csv(tmp_path / "data")
    status, out, _ = cli("check-data", root)
    assert status == 1
    assert problem_lines(out) == {"label.csv": "no_rows"}
    assert "0 clips read, 1 problems." in out
    status, _, err = cli("train", *hostile_training_flags(tiny_backbone_dir, root, tmp_path / "run"))
    assert status == 1 and "label.csv\tno_rows\t" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
