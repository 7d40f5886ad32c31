"""omni_regressor.data: layouts, problem reports and the demo dataset (real files in tmp dirs)."""

import csv
import dataclasses

import av
import numpy as np
import pytest

from omni_regressor.data import (
    ClipProblem,
    ClipRecord,
    DataProblemsError,
    check_dataset,
    format_problems,
    infer_score_range,
    read_cmu_sdk,
    read_dataset,
    read_mmsa,
    records_to_dataset_dict,
    scan_problems,
    usable_records,
    write_demo_dataset,
    write_demo_sdk_layout,
    write_skipped,
)
from omni_regressor.data.demo import DEMO_WORDS
from omni_regressor.media import MediaCache, write_clip
from processing_omni_regressor import MediaSettings, decode_clip

SAMPLE_RATE = 16000
# Small frames keep the scans fast; these tests are about which problems are found, not the official frame size.
SMALL_MEDIA = MediaSettings(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16)
SMALL_PIXEL_FLAGS = ["--min_pixels", str(28 * 28 * 4), "--max_pixels", str(28 * 28 * 16)]


def write_label_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def small_frames(num_frames=4):
    return np.full((num_frames, 48, 64, 3), 120, dtype=np.uint8)


def small_tone(seconds=0.5):
    return (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE)).astype(np.float32)


def write_cut_clip(path, keep_fraction=0.6):
    """3 s of noise video with its header first (faststart), then cut: the header is intact, the data is not."""
    noise = np.random.default_rng(0).integers(0, 256, (24, 48, 64, 3), dtype=np.uint8)
    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for image in noise:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


def write_zero_frame_video(path):
    """A video stream that holds no frame, next to 0.5 s of audio (AVI keeps the empty stream; mp4 drops it)."""
    with av.open(str(path), mode="w", format="avi") as container:
        video_stream = container.add_stream("mpeg4", rate=8)
        video_stream.width, video_stream.height, video_stream.pix_fmt = 64, 48, "yuv420p"
        audio_stream = container.add_stream("pcm_s16le", rate=SAMPLE_RATE)
        audio_stream.layout = "mono"
        container.start_encoding()
        silence = av.AudioFrame.from_ndarray(np.zeros((1, SAMPLE_RATE // 2), np.int16), format="s16", layout="mono")
        silence.sample_rate, silence.pts = SAMPLE_RATE, 0
        container.mux(audio_stream.encode(silence))
        container.mux(audio_stream.encode(None))


# Columns deliberately not in MMSA's order: readers go by name.
PROBLEM_HEADER = ["mode", "clip_id", "label", "video_id", "text", "annotation"]
EXPECTED_PROBLEMS = [
    ("v1/002", "missing_file"),
    ("v1/003", "unreadable_file"),
    ("v1/004", "no_audio_track"),
    ("v1/005", "no_video_stream"),
    ("v1/006", "too_short_video"),
    ("v1/007", "empty_transcript"),
    ("v1/008", "nan_label"),
    ("v1/009", "missing_label"),
    ("v1/010", "label_out_of_range"),
    ("v1/011", "unknown_mode"),
    ("v1/012", "duplicate_id"),
    ("v1/014", "corrupt_file"),
    ("v1/015", "unsupported_geometry"),
    ("v1/016", "too_short_audio"),
]
# What only a full decode finds: a header-only scan (`full_decode=False`) reads these clips as fine.
DECODE_ONLY_PROBLEMS = [("v1/006", "too_short_video"), ("v1/014", "corrupt_file")]


@pytest.fixture(scope="module")
def problem_root(tmp_path_factory):
    """MMSA folder with one clip per problem kind, plus a good clip (001) and a 1-frame clip (013)."""
    root = tmp_path_factory.mktemp("problems")
    raw = root / "Raw" / "v1"
    raw.mkdir(parents=True)
    write_clip(raw / "001.mp4", small_frames(), 8, small_tone(), SAMPLE_RATE)
    (raw / "003.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    write_clip(raw / "004.mp4", small_frames(), 8, None)
    write_clip(raw / "005.mp4", None, 8, small_tone(), SAMPLE_RATE)
    write_zero_frame_video(raw / "006.mp4")
    write_clip(raw / "007.mp4", small_frames(), 8, small_tone(), SAMPLE_RATE)
    write_clip(raw / "013.mp4", small_frames(1), 8, small_tone(), SAMPLE_RATE)
    write_cut_clip(raw / "014.mp4")
    write_clip(raw / "015.mp4", np.full((4, 600, 2, 3), 120, dtype=np.uint8), 8, small_tone(), SAMPLE_RATE)  # 1:300
    write_clip(raw / "016.mp4", small_frames(2), 8, small_tone(0.03), SAMPLE_RATE)  # one 64 ms AAC frame of audio
    rows = [
        ["train", "001", "1.2", "v1", "good clip", "Positive"],
        ["train", "002", "0.4", "v1", "file is missing", "Positive"],
        ["train", "003", "0.4", "v1", "random bytes", "Positive"],
        ["valid", "004", "-0.6", "v1", "no audio", "Negative"],
        ["valid", "005", "-0.6", "v1", "no video", "Negative"],
        ["test", "006", "2.0", "v1", "zero frames", "Positive"],
        ["test", "007", "-2.0", "v1", "   ", "Negative"],
        ["train", "008", "nan", "v1", "nan label", "Neutral"],
        ["train", "009", "", "v1", "empty label", "Neutral"],
        ["train", "010", "7.5", "v1", "too high", "Positive"],
        ["dev", "011", "0.0", "v1", "unknown split", "Neutral"],
        ["train", "012", "1.0", "v1", "first copy", "Positive"],
        ["test", "012", "1.0", "v1", "second copy", "Positive"],
        ["train", "013", "0.2", "v1", "one frame", "Neutral"],
        ["train", "014", "0.2", "v1", "cut after its header", "Neutral"],
        ["valid", "015", "0.2", "v1", "a sliver of a frame", "Neutral"],
        ["test", "016", "0.2", "v1", "a blip of audio", "Neutral"],
    ]
    write_label_csv(root / "label.csv", PROBLEM_HEADER, rows)
    return root


@pytest.fixture(scope="module")
def problem_check(problem_root):
    return check_dataset(problem_root, media_settings=SMALL_MEDIA, modalities=("text", "audio", "video"), progress=False)


@pytest.mark.parametrize("clip_id, reason", EXPECTED_PROBLEMS)
def test_each_problem_is_reported_by_clip_id_and_reason(problem_check, clip_id, reason):
    _, problems = problem_check
    assert (clip_id, reason) in {(problem.clip_id, problem.reason) for problem in problems}


def test_nothing_else_is_reported(problem_check):
    _, problems = problem_check
    assert sorted((problem.clip_id, problem.reason) for problem in problems) == sorted(EXPECTED_PROBLEMS)


def test_records_hold_rows_usable_as_far_as_the_csv_tells(problem_check):
    records, problems = problem_check
    segments = [record.clip_id.split("/")[1] for record in records]
    assert segments == ["001", "002", "003", "004", "005", "006", "007", "013", "014", "015", "016"]
    assert [record.clip_id for record in usable_records(records, problems)] == ["v1/001", "v1/013"]


def test_one_frame_clip_is_not_a_problem(problem_check):
    _, problems = problem_check
    assert "v1/013" not in {problem.clip_id for problem in problems}


def test_missing_audio_matters_only_with_the_audio_modality(problem_root):
    _, problems = check_dataset(problem_root, media_settings=SMALL_MEDIA, modalities=("text", "video"), progress=False)
    assert {"no_audio_track", "too_short_audio"}.isdisjoint({problem.reason for problem in problems})


def test_header_only_check_finds_all_but_what_needs_a_decode(problem_root):
    modalities = ("text", "video")  # (the cut clip has no audio track, which its header does tell)
    _, decoded = check_dataset(problem_root, media_settings=SMALL_MEDIA, modalities=modalities, progress=False)
    _, header_only = check_dataset(
        problem_root, media_settings=SMALL_MEDIA, modalities=modalities, full_decode=False, progress=False
    )
    decoded = {(problem.clip_id, problem.reason) for problem in decoded}
    assert set(DECODE_ONLY_PROBLEMS) <= decoded
    assert {(problem.clip_id, problem.reason) for problem in header_only} == decoded - set(DECODE_ONLY_PROBLEMS)


def test_full_scan_leaves_the_decoded_clips_in_the_media_cache(demo_dataset_dir, tmp_path):
    records, _ = read_mmsa(demo_dataset_dir)
    first = MediaCache(tmp_path / "cache")
    assert scan_problems(records, SMALL_MEDIA, media_cache=first, progress=False) == []
    assert (first.decode_calls, len(first.entries())) == (len(records), len(records))
    later_run = MediaCache(tmp_path / "cache")
    scan_problems(records, SMALL_MEDIA, media_cache=later_run, progress=False)
    assert (later_run.decode_calls, later_run.hits) == (0, len(records))


def test_empty_transcript_matters_only_with_the_text_modality(problem_root):
    _, problems = check_dataset(problem_root, media_settings=SMALL_MEDIA, modalities=("audio", "video"), progress=False)
    assert "empty_transcript" not in {problem.reason for problem in problems}


def test_text_only_check_does_not_open_media(problem_root):
    records, _ = read_mmsa(problem_root)
    problems = scan_problems(records, SMALL_MEDIA, modalities=("text",), progress=False)
    assert [(problem.clip_id, problem.reason) for problem in problems] == [("v1/007", "empty_transcript")]


def test_missing_column_is_reported_for_the_label_file(tmp_path):
    write_label_csv(tmp_path / "label.csv", ["video_id", "clip_id", "text", "label"], [["v1", "001", "hi", "1.0"]])
    records, problems = read_mmsa(tmp_path)
    assert records == []
    assert [(problem.clip_id, problem.reason) for problem in problems] == [("label.csv", "missing_column")]
    assert "mode" in problems[0].detail


def test_header_only_label_file_is_no_rows(tmp_path):
    write_label_csv(tmp_path / "label.csv", ["video_id", "clip_id", "text", "label", "mode"], [])
    records, problems = read_mmsa(tmp_path)
    assert records == []
    assert [(problem.clip_id, problem.reason) for problem in problems] == [("label.csv", "no_rows")]


def test_label_file_with_utf8_bom_reads_its_first_column(tmp_path):
    (tmp_path / "label.csv").write_bytes(
        "video_id,clip_id,text,label,mode\nv1,001,très bien,1.5,train\n".encode("utf-8-sig")
    )
    records, problems = read_mmsa(tmp_path)
    assert problems == []
    assert [(record.clip_id, record.text) for record in records] == [("v1/001", "très bien")]


def test_latin1_label_file_is_read_as_latin1(tmp_path):
    (tmp_path / "label.csv").write_bytes('video_id,clip_id,text,label,mode\nv1,001,"café, très bien",-0.5,test\n'.encode("latin-1"))
    records, problems = read_mmsa(tmp_path)
    assert problems == []
    assert [(record.clip_id, record.text, record.label) for record in records] == [("v1/001", "café, très bien", -0.5)]


def test_latin1_sdk_transcript_is_read_as_latin1(tmp_path):
    transcripts = tmp_path / "Raw" / "Transcript" / "Segmented"
    transcripts.mkdir(parents=True)
    (transcripts / "abc.annotprocessed").write_bytes("1_DELIM_un café crème\n".encode("latin-1"))
    write_label_csv(tmp_path / "labels.csv", ["video_id", "clip_id", "label", "mode"], [["abc", "1", "0.4", "train"]])
    records, problems = read_cmu_sdk(tmp_path, labels_csv=tmp_path / "labels.csv")
    assert problems == []
    assert records[0].text == "un café crème"


def test_missing_label_file_is_reported(tmp_path):
    records, problems = read_mmsa(tmp_path)
    assert records == []
    assert [(problem.clip_id, problem.reason) for problem in problems] == [("label.csv", "missing_file")]


def test_ids_with_leading_zeros_survive(tmp_path):
    write_label_csv(
        tmp_path / "label.csv",
        ["video_id", "clip_id", "text", "label", "mode"],
        [["0042", "007", "it was fine", "1.0", "train"]],
    )
    records, problems = read_mmsa(tmp_path)
    assert problems == []
    assert (records[0].clip_id, records[0].video_id) == ("0042/007", "0042")
    assert records[0].media_path == str(tmp_path.resolve() / "Raw" / "0042" / "007.mp4")
    assert records_to_dataset_dict(records)["train"][0]["clip_id"] == "0042/007"


def test_mmsa_and_sdk_layouts_read_into_identical_records(demo_dataset_dir, tmp_path):
    mmsa_records, mmsa_problems = read_mmsa(demo_dataset_dir)
    labels_csv = write_demo_sdk_layout(tmp_path, demo_dataset_dir)
    sdk_records, sdk_problems = read_cmu_sdk(tmp_path, labels_csv=labels_csv)
    assert mmsa_problems == [] and sdk_problems == []
    assert [dataclasses.replace(record, media_path="") for record in sdk_records] == [
        dataclasses.replace(record, media_path="") for record in mmsa_records
    ]
    assert sdk_records[0].media_path.endswith(f"Raw/Video/Segmented/{sdk_records[0].video_id}_001.mp4")


def test_sdk_reader_matches_segments_written_without_leading_zeros(tmp_path):
    transcripts = tmp_path / "Raw" / "Transcript" / "Segmented"
    transcripts.mkdir(parents=True)
    lines = "1_DELIM_ i really liked it \n2_DELIM_not at all\n"
    (transcripts / "abc.annotprocessed").write_text(lines, encoding="utf-8")
    write_label_csv(tmp_path / "labels.csv", ["video_id", "clip_id", "label", "mode"], [["abc", "01", "2.4", "test"]])
    records, problems = read_cmu_sdk(tmp_path, labels_csv=tmp_path / "labels.csv")
    assert problems == []
    assert (records[0].clip_id, records[0].text) == ("abc/01", "i really liked it")


def test_read_dataset_needs_labels_csv_for_cmu_sdk(tmp_path):
    with pytest.raises(ValueError, match="labels_csv"):
        read_dataset(tmp_path, "cmu-sdk")
    with pytest.raises(ValueError, match="dataset_format"):
        read_dataset(tmp_path, "mosi-pkl")


def test_sims_style_labels_infer_unit_range_and_keep_chinese_text(tmp_path):
    write_label_csv(
        tmp_path / "label.csv",
        ["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode"],
        [["0001", "0001", "我很喜欢", "0.8", "1.0", "0.6", "0.8", "Positive", "train"],
         ["0001", "0002", "一般般", "-0.2", "0.0", "-0.4", "-0.2", "Negative", "test"]],
    )
    records, problems = read_dataset(tmp_path, "mmsa")
    assert problems == []
    assert infer_score_range(records) == (-1.0, 1.0)
    assert (records[0].text, records[0].label_A) == ("我很喜欢", 0.6)


def test_mosi_style_labels_infer_three_point_range():
    records = [ClipRecord("v/1", "v", "t", label, "train", "x.mp4") for label in (-2.4, 0.6, 3.0)]
    assert infer_score_range(records) == (-3.0, 3.0)


def test_score_range_argument_wins(tmp_path):
    write_label_csv(
        tmp_path / "label.csv",
        ["video_id", "clip_id", "text", "label", "mode"],
        [["v", "1", "a", "0.5", "train"], ["v", "2", "b", "0.9", "train"]],
    )
    records, problems = read_mmsa(tmp_path, score_range=(-0.6, 0.6))
    assert [record.clip_id for record in records] == ["v/1"]
    assert [(problem.clip_id, problem.reason) for problem in problems] == [("v/2", "label_out_of_range")]


def test_format_problems_lists_each_problem_and_counts_reasons():
    problems = [
        ClipProblem("v/1", "missing_file", "gone."),
        ClipProblem("v/2", "nan_label", "not a number."),
        ClipProblem("v/3", "missing_file", "gone too."),
    ]
    lines = format_problems(problems).splitlines()
    assert lines[:3] == ["v/1\tmissing_file\tgone.", "v/2\tnan_label\tnot a number.", "v/3\tmissing_file\tgone too."]
    assert lines[3] == "3 problem(s): missing_file=2, nan_label=1"
    assert format_problems([]) == "no problems found"


def test_write_skipped_writes_clip_reason_detail_csv(tmp_path):
    path = write_skipped([ClipProblem("0042/007", "missing_file", "gone, really.")], tmp_path / "skipped.csv")
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows == [["clip_id", "reason", "detail"], ["0042/007", "missing_file", "gone, really."]]


def test_data_problems_error_names_clips_and_the_way_out():
    error = DataProblemsError([ClipProblem("v/1", "no_audio_track", "no audio.")], root="/data/mosi")
    assert error.problems[0].clip_id == "v/1"
    assert "v/1\tno_audio_track" in str(error)
    assert "omni-regressor check-data /data/mosi" in str(error) and "--skip_bad_clips" in str(error)


def test_dataset_dict_has_present_splits_and_string_columns(demo_dataset_dir):
    records, _ = read_mmsa(demo_dataset_dir)
    dataset = records_to_dataset_dict([record for record in records if record.split != "valid"])
    assert list(dataset) == ["train", "test"]
    assert dataset["train"].column_names == ["clip_id", "video_id", "text", "label", "split", "media_path"]
    assert dataset["train"].features["clip_id"].dtype == "string"
    assert sum(dataset[split].num_rows for split in dataset) == sum(record.split != "valid" for record in records)


# --- demo dataset ----------------------------------------------------------------------------------------------


def test_demo_dataset_is_deterministic_for_a_seed(tmp_path):
    first = write_demo_dataset(tmp_path / "a", num_clips=6, seed=3)
    second = write_demo_dataset(tmp_path / "b", num_clips=6, seed=3)
    other = write_demo_dataset(tmp_path / "c", num_clips=6, seed=4)
    assert (first / "label.csv").read_bytes() == (second / "label.csv").read_bytes()
    assert (first / "label.csv").read_bytes() != (other / "label.csv").read_bytes()


def test_demo_dataset_columns_ids_and_splits(demo_dataset_dir):
    with open(demo_dataset_dir / "label.csv", newline="", encoding="utf-8") as file:
        header = next(csv.reader(file))
    assert header == ["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode"]
    records, problems = check_dataset(demo_dataset_dir, media_settings=SMALL_MEDIA, progress=False)
    assert problems == []
    assert {record.split for record in records} == {"train", "valid", "test"}
    assert records[0].clip_id == "demo_00/001"


def test_demo_labels_lie_on_a_grid_within_the_range(tmp_path):
    root = write_demo_dataset(tmp_path, num_clips=12, seed=1, score_range=(-1.0, 1.0))
    records, problems = read_mmsa(root, score_range=(-1.0, 1.0))
    labels = np.array([record.label for record in records])
    assert problems == [] and len(records) == 12
    assert np.all(np.abs(labels) <= 1.0)
    np.testing.assert_allclose(labels / 0.2, np.round(labels / 0.2), atol=1e-6)


def test_demo_transcripts_use_the_vocabulary_of_their_annotation(demo_dataset_dir):
    records, _ = read_mmsa(demo_dataset_dir)
    with open(demo_dataset_dir / "label.csv", newline="", encoding="utf-8") as file:
        annotations = {f"{row['video_id']}/{row['clip_id']}": row["annotation"] for row in csv.DictReader(file)}
    for record in records:
        words = set(record.text.split()) - {"it", "was", ",", "and"}
        assert words <= set(DEMO_WORDS[annotations[record.clip_id]]), record.clip_id


def test_demo_labels_are_learnable_from_frames_and_audio(demo_dataset_dir):
    records, _ = read_mmsa(demo_dataset_dir)
    labels, brightness, pitch, loudness = [], [], [], []
    for record in records:
        clip = decode_clip(record.media_path, SMALL_MEDIA)
        labels.append(record.label)
        brightness.append(clip.frames.mean())
        spectrum = np.abs(np.fft.rfft(clip.audio))
        pitch.append(np.argmax(spectrum) * SAMPLE_RATE / len(clip.audio))
        loudness.append(np.sqrt(np.mean(clip.audio**2)))
    assert np.corrcoef(labels, brightness)[0, 1] > 0.8
    assert np.corrcoef(labels, pitch)[0, 1] > 0.8
    assert np.corrcoef(labels, loudness)[0, 1] > 0.8


@pytest.fixture
def media_cache_dir(tmp_path, monkeypatch):
    """The CLI's default media cache, pointed into the test's folder (never the user's ~/.cache)."""
    monkeypatch.setenv("OMNI_REGRESSOR_CACHE", str(tmp_path / "media-cache"))
    return tmp_path / "media-cache"


def test_check_data_command_prints_each_problem_by_clip_id_and_exits_1(problem_root, media_cache_dir, capsys):
    from omni_regressor.cli import main

    assert main(["check-data", str(problem_root), *SMALL_PIXEL_FLAGS]) == 1
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    for clip_id, reason in EXPECTED_PROBLEMS:
        assert any(line.startswith(f"{clip_id}\t{reason}\t") for line in lines), (clip_id, reason)
    assert f"11 clips read, {len(EXPECTED_PROBLEMS)} problems." in printed


def test_check_data_command_decodes_every_clip_unless_told_header_only(tmp_path, media_cache_dir, capsys):
    from omni_regressor.cli import main

    write_clip(tmp_path / "data" / "Raw" / "v1" / "001.mp4", small_frames(), 8, small_tone(), SAMPLE_RATE)
    write_cut_clip(tmp_path / "data" / "Raw" / "v1" / "002.mp4")
    write_label_csv(
        tmp_path / "data" / "label.csv",
        ["video_id", "clip_id", "text", "label", "mode"],
        [["v1", "001", "fine", "1.0", "train"], ["v1", "002", "cut", "-1.0", "train"]],
    )
    assert main(["check-data", str(tmp_path / "data"), "--modalities", "T+V", *SMALL_PIXEL_FLAGS]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in lines if "\t" in line] == [["v1/002", "corrupt_file"]]
    assert len(list(media_cache_dir.glob("*.safetensors"))) == 1  # the good clip, decoded for the run

    header_only = ["check-data", str(tmp_path / "data"), "--modalities", "T+V", "--full_decode", "false"]
    assert main([*header_only, *SMALL_PIXEL_FLAGS]) == 0
    assert "2 clips read, 0 problems." in capsys.readouterr().out


def test_check_data_command_exits_0_on_a_clean_dataset(demo_dataset_dir, media_cache_dir, capsys):
    from omni_regressor.cli import main

    assert main(["check-data", str(demo_dataset_dir), *SMALL_PIXEL_FLAGS]) == 0
    assert "0 problems" in capsys.readouterr().out
