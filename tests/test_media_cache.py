"""The media cache (omni_regressor/media.py) under hostile conditions: a clip replaced with one of the same size and
mtime, orphaned temporary files, and two processes writing the same entries at once."""

import multiprocessing
import os
import sys

import numpy as np

import hostile_media as hm
from conftest import SMALL_PIXEL_FLAGS, SMALL_PIXELS, predict, read_csv, stale_and_fresh_temporaries
from omni_regressor.cli import main as cli_main


def test_a_clip_replaced_with_same_size_and_mtime_gets_its_own_score(regressor, tmp_path):
    cache = tmp_path / "cache"
    dark, bright = hm.uniform_grey_clip(tmp_path / "dark.mp4", 40), hm.uniform_grey_clip(tmp_path / "bright.mp4", 220)
    assert dark.stat().st_size == bright.stat().st_size
    status, _, _ = predict(regressor, dark, bright, "--output", tmp_path / "first.csv", "--media_cache_dir", cache,
                           "--batch_size", "1")
    assert status == 0
    dark_score, bright_score = (row["score"] for row in read_csv(tmp_path / "first.csv"))
    assert dark_score != bright_score
    before = dark.stat()
    dark.write_bytes(bright.read_bytes())  # `cp -p bright.mp4 dark.mp4`
    os.utime(dark, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (dark.stat().st_size, dark.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    status, _, _ = predict(regressor, dark, "--output", tmp_path / "second.csv", "--media_cache_dir", cache,
                           "--batch_size", "1")
    assert status == 0
    assert read_csv(tmp_path / "second.csv")[0]["score"] == bright_score


def test_orphaned_cache_temporary_files_are_cleaned(regressor, clip_folder, tmp_path):
    cache = tmp_path / "cache"
    orphan, live = stale_and_fresh_temporaries(cache)
    status, _, _ = predict(regressor, clip_folder / "a_good.mp4", "--output", tmp_path / "out.csv",
                           "--media_cache_dir", cache)
    assert status == 0
    assert not orphan.exists() and live.exists()
    assert len(list(cache.glob("*.safetensors"))) == 1


def _check_into_cache(root, cache_dir):
    sys.exit(cli_main(["check-data", str(root), "--media_cache_dir", str(cache_dir), *SMALL_PIXEL_FLAGS]))


def test_concurrent_cache_writers_leave_whole_entries_only(demo_dataset_dir, tmp_path):
    from omni_regressor.data import read_mmsa
    from omni_regressor.media import MediaCache
    from processing_omni_regressor import ProcessingSettings, decode_clip

    cache_dir = tmp_path / "cache"
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_check_into_cache, args=(demo_dataset_dir, cache_dir)) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=240)
    assert [writer.exitcode for writer in writers] == [0, 0]
    assert not list(cache_dir.glob(".*.tmp"))
    records = read_mmsa(demo_dataset_dir)[0]
    assert len(list(cache_dir.glob("*.safetensors"))) == len(records)

    settings = ProcessingSettings(**SMALL_PIXELS).resolve_for(image_factor=28, extractor_seconds=300.0).media_settings()
    reader = MediaCache(cache_dir)
    for record in records[:3]:
        cached, fresh = reader.load(record.media_path, settings), decode_clip(record.media_path, settings)
        np.testing.assert_array_equal(cached.frames, fresh.frames)
        np.testing.assert_array_equal(cached.audio, fresh.audio)
    assert (reader.hits, reader.decode_calls) == (3, 0)
