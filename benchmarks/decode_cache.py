"""Per-clip time of a real decode vs a load from a warm `MediaCache`, on freshly written demo clips.

    python benchmarks/decode_cache.py [--clips N] [--cache_dir D]

Prints one JSON line: {"clips", "decode_ms_per_clip", "cached_ms_per_clip", "speedup", "cache_bytes"}.
Without --cache_dir the cache lives in the temporary folder and is removed afterwards.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from omni_regressor.data import read_mmsa, write_demo_dataset  # noqa: E402
from omni_regressor.media import MediaCache, MediaSettings, decode_clip  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=48, help="number of demo clips to write and decode")
    parser.add_argument("--cache_dir", default=None, help="cache folder (default: a temporary one)")
    args = parser.parse_args()

    settings = MediaSettings()
    with tempfile.TemporaryDirectory(prefix="omni-decode-bench-") as workdir:
        records, problems = read_mmsa(write_demo_dataset(Path(workdir) / "clips", num_clips=args.clips, seed=0))
        if problems:
            raise SystemExit(f"demo dataset has problems: {problems}")
        paths = [record.media_path for record in records]
        cache_dir = args.cache_dir or Path(workdir) / "cache"

        decode_clip(paths[0], settings)  # library start-up is not a per-clip cost
        start = time.perf_counter()
        for path in paths:
            decode_clip(path, settings)
        decode_seconds = time.perf_counter() - start

        for path in paths:  # fill the cache
            MediaCache(cache_dir).load(path, settings)
        warm_cache = MediaCache(cache_dir)
        start = time.perf_counter()
        for path in paths:
            warm_cache.load(path, settings)
        cached_seconds = time.perf_counter() - start
        assert warm_cache.decode_calls == 0, "the warm cache decoded a clip"

        cache_bytes = sum(warm_cache.entry_path(path, settings).stat().st_size for path in paths)

    print(
        json.dumps(
            {
                "clips": len(paths),
                "decode_ms_per_clip": round(1000 * decode_seconds / len(paths), 3),
                "cached_ms_per_clip": round(1000 * cached_seconds / len(paths), 3),
                "speedup": round(decode_seconds / cached_seconds, 1),
                "cache_bytes": cache_bytes,
            }
        )
    )


if __name__ == "__main__":
    main()
