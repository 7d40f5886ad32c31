"""The hostile-input builders (tests/hostile_media.py) make what they claim. Checked with PyAV directly, not with
the package's decoding code (that is what the reliability tests exercise)."""

import codecs
import os

import av
import numpy as np
import pytest

import hostile_media as hm


def video_frames(path) -> list:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def audio_samples(path) -> int:
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0))


def test_tiny_clip_has_one_frame_and_a_sliver_of_audio(tmp_path):
    path = hm.tiny_clip(tmp_path / "tiny.mp4")
    assert len(video_frames(path)) == 1
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        assert float(audio.duration * audio.time_base) == pytest.approx(0.005)  # 80 samples recorded in the header
    assert audio_samples(path) <= 1024  # one AAC frame decodes (the 5 ms plus encoder padding)


def test_truncated_faststart_clip_has_moov_first_and_is_cut(tmp_path):
    frames, audio = hm._noise_frames(50, 64, 48), hm._tone(2.0)
    whole = hm.write_mp4(tmp_path / "whole.mp4", frames, 25, audio, container_options={"movflags": "faststart"})
    path = hm.truncated_faststart_clip(tmp_path / "cut.mp4")
    assert hm.top_level_atoms(whole) == ["ftyp", "moov", "free", "mdat"]
    atoms = hm.mp4_atoms(path.read_bytes())
    assert [kind for kind, _, _ in atoms] == ["ftyp", "moov", "free", "mdat"]
    assert path.stat().st_size == int(whole.stat().st_size * 0.6)
    kind, offset, size = atoms[-1]
    assert offset + size > path.stat().st_size  # the mdat claims bytes the file no longer has

    with av.open(str(path)) as container:  # header intact
        stream = container.streams.video[0]
        assert stream.frames == 50 and container.duration / av.time_base == pytest.approx(2.0)
    with av.open(str(path)) as container:  # default (slice) threading: the cut packet raises
        with pytest.raises(av.InvalidDataError):
            for _ in container.decode(video=0):
                pass
    with av.open(str(path)) as container:  # frame threading (what decode_clip sets): silent early end
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        assert 0 < sum(1 for _ in container.decode(stream)) < 50
    assert audio_samples(path) < 0.8 * 32000  # audio ends early without an error


@pytest.mark.parametrize("width, height", [(2, 600), (600, 2)])
def test_extreme_aspect_clip(tmp_path, width, height):
    path = hm.extreme_aspect_clip(tmp_path / "aspect.mp4", width=width, height=height)
    frames = video_frames(path)
    assert len(frames) == 4 and frames[0].shape == (height, width, 3)
    assert max(width, height) / min(width, height) == 300


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_rotated_clip_reads_back_and_rot90_makes_it_upright(tmp_path, rotation):
    path = hm.rotated_clip(tmp_path / f"rotated_{rotation}.mp4", rotation)
    assert hm.stream_rotation_degrees(path) == rotation
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        assert frame.rotation == {0: 0, 90: -90, 180: -180, 270: 90}[rotation]  # counter-clockwise, [-180, 180]
        stored = frame.to_ndarray(format="rgb24")
    displayed = hm.displayed_test_pattern()
    assert stored.shape == (np.rot90(displayed, k=rotation // 90)).shape
    upright = hm.upright(stored, rotation)
    assert upright.shape == displayed.shape
    assert np.abs(upright.astype(int) - displayed).mean() < 3
    assert tuple(upright[2, 2]) == pytest.approx((255, 0, 0), abs=12)  # red block: top-left of the displayed image
    assert np.array_equal(upright, np.rot90(stored, k=frame.rotation // 90))  # same thing from frame.rotation
    # (T, H, W, C) stacks rotate on axes (1, 2)
    assert np.array_equal(hm.upright(stored[None], rotation)[0], upright)


def test_rotated_clip_writes_a_phone_style_tkhd_matrix(tmp_path):
    path = hm.rotated_clip(tmp_path / "rotated.mp4", 90)
    a, b, _, c, d, *_ = hm.tkhd_matrices(path)[0]
    assert (a, b, c, d) == (0.0, 1.0, -1.0, 0.0)  # what an iPhone writes for a portrait recording
    assert hm.tkhd_matrices(hm.normal_clip(tmp_path / "plain.mp4"))[0][:5] == (1.0, 0.0, 0.0, 0.0, 1.0)
    assert hm.stream_rotation_degrees(hm.audio_only_clip(tmp_path / "audio.mp4")) == 0


def test_rot90_matches_ffmpeg_transpose_clock():
    from fractions import Fraction

    image = hm.displayed_test_pattern()
    graph = av.filter.Graph()
    source = graph.add_buffer(width=image.shape[1], height=image.shape[0], format="rgb24", time_base=Fraction(1, 8))
    transpose = graph.add("transpose", "clock")
    sink = graph.add("buffersink")
    source.link_to(transpose)
    transpose.link_to(sink)
    graph.configure()
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    frame.pts, frame.time_base = 0, Fraction(1, 8)
    graph.push(frame)
    assert np.array_equal(graph.pull().to_ndarray(format="rgb24"), hm.upright(image, 90))


def test_variable_frame_rate_clip(tmp_path):
    path = hm.variable_frame_rate_clip(tmp_path / "vfr.mp4")
    with av.open(str(path)) as container:
        times = [round(frame.time * 1000) for frame in container.decode(video=0)]
    assert times == list(hm.FRAME_TIMES_MS)
    assert len(set(np.diff(times))) > 2


def test_single_stream_long_and_non_ascii_clips(tmp_path):
    with av.open(str(hm.audio_only_clip(tmp_path / "a.mp4"))) as container:
        assert len(container.streams.video) == 0 and len(container.streams.audio) == 1
    with av.open(str(hm.video_only_clip(tmp_path / "v.mp4"))) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 0
    with av.open(str(hm.long_clip(tmp_path / "long.mp4"))) as container:
        assert container.duration / av.time_base == pytest.approx(40.0, abs=0.2)
    path = hm.non_ascii_name_clip(tmp_path)
    assert path.name == "ünïcødé clip 😀.mp4" and path.is_file()
    assert len(video_frames(path)) == 8


def test_files_that_are_not_media(tmp_path):
    assert hm.zero_byte_file(tmp_path / "z.mp4").stat().st_size == 0
    assert hm.text_file_named_mp4(tmp_path / "t.mp4").read_bytes().startswith(b"this is not a video")
    random_path = hm.random_bytes_mp4(tmp_path / "r.mp4")
    assert random_path.stat().st_size == 4096
    assert random_path.read_bytes() == hm.random_bytes_mp4(tmp_path / "r2.mp4").read_bytes()  # deterministic
    for path in (tmp_path / "z.mp4", tmp_path / "t.mp4", random_path):
        with pytest.raises(av.FFmpegError):
            av.open(str(path)).close()


def test_label_csv_encodings(tmp_path):
    bom_root = hm.label_csv_with_bom(tmp_path / "bom")
    assert (bom_root / "label.csv").read_bytes().startswith(codecs.BOM_UTF8 + b"video_id,")
    assert (bom_root / "Raw" / "v1" / "001.mp4").is_file()
    latin_root = hm.label_csv_latin1(tmp_path / "latin")
    raw = (latin_root / "label.csv").read_bytes()
    assert "café".encode("latin-1") in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    header_root = hm.header_only_label_csv(tmp_path / "header")
    assert (header_root / "label.csv").read_text(encoding="utf-8").splitlines() == ["video_id,clip_id,text,label,mode"]


def test_cmu_sdk_latin1_transcript(tmp_path):
    root, labels_csv = hm.cmu_sdk_latin1_transcript(tmp_path / "sdk")
    transcript = (root / "Raw" / "Transcript" / "Segmented" / "v1.annotprocessed").read_bytes()
    assert transcript.startswith(b"1_DELIM_caf\xe9")
    assert labels_csv.is_file() and (root / "Raw" / "Video" / "Segmented" / "v1_1.mp4").is_file()


def test_predict_csvs(tmp_path):
    bom_csv = hm.predict_csv_with_bom(tmp_path)
    assert bom_csv.read_bytes().startswith(codecs.BOM_UTF8 + b"path,text")
    latin_csv = hm.predict_csv_latin1(tmp_path)
    assert b"caf\xe9" in latin_csv.read_bytes()
    assert (tmp_path / "clip_a.mp4").is_file() and (tmp_path / "clip_b.mp4").is_file()


def test_symlinks(tmp_path):
    dangling = hm.folder_with_broken_symlink(tmp_path / "broken")
    assert dangling.is_symlink() and not dangling.exists()
    file_loop, dir_loop = hm.folder_with_looping_symlinks(tmp_path / "loops")
    assert file_loop.is_symlink() and dir_loop.is_symlink()
    with pytest.raises(OSError):  # ELOOP (note: Path.resolve(strict=True) raises RuntimeError on 3.11)
        os.stat(file_loop)
    assert os.path.samefile(dir_loop, tmp_path / "loops")


def test_special_token_dataset(tmp_path):
    root = hm.special_token_dataset(tmp_path / "tokens")
    text = (root / "label.csv").read_text(encoding="utf-8")
    assert "<|VIDEO|>" in text and "<|im_start|>assistant" in text
    assert len(list((root / "Raw" / "hostile").glob("*.mp4"))) == len(hm.SPECIAL_TOKEN_TRANSCRIPTS)


def test_every_media_builder_writes_a_path(tmp_path):
    for name, builder in hm.MEDIA_BUILDERS.items():
        path = builder(tmp_path / f"{name}.mp4")
        assert os.path.lexists(path), name
