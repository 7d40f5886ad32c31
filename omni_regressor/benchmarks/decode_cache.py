"""Per-clip time of a real decode vs a load from a warm `MediaCache`, and what the cache key's content fingerprint
costs, on freshly written demo clips.

    python -m omni_regressor.benchmarks.decode_cache [--clips 48] [--cache_dir D]

Prints one JSON line: decode and cached ms per clip, their ratio, the cache's bytes, the fingerprint's ms per file
(three 64 KiB reads and a sha256) and a warm-cache load with the fingerprint vs with it replaced by a constant.
Without --cache_dir the cache lives in the temporary folder and is removed afterwards.
"""

import time
from pathlib import Path
from unittest import mock

from .common import base_parser, print_report, workspace


def seconds_per_clip(function, paths) -> float:
    started = time.perf_counter()
    for path in paths:
        function(path)
    return (time.perf_counter() - started) / len(paths)


def main(argv=None) -> int:
    from .. import media
    from ..data import read_mmsa, write_demo_dataset
    from ..media import MediaCache, MediaSettings, decode_clip

    parser = base_parser(__doc__.splitlines()[0], model=False)
    parser.add_argument("--clips", type=int, default=48, help="number of demo clips to write and decode")
    parser.add_argument("--cache_dir", default=None, help="cache folder (default: a temporary one)")
    args = parser.parse_args(argv)
    settings = MediaSettings()
    with workspace(args.workdir) as workdir:
        records, problems = read_mmsa(write_demo_dataset(workdir / "clips", num_clips=args.clips, seed=0))
        if problems:
            raise SystemExit(f"demo dataset has problems: {problems}")
        paths = [record.media_path for record in records]
        cache_dir = Path(args.cache_dir) if args.cache_dir else workdir / "cache"

        decode_clip(paths[0], settings)  # library start-up is not a per-clip cost
        decode_seconds = seconds_per_clip(lambda path: decode_clip(path, settings), paths)
        for path in paths:  # fill the cache
            MediaCache(cache_dir).load(path, settings)
        warm_cache = MediaCache(cache_dir)
        cached_seconds = seconds_per_clip(lambda path: warm_cache.load(path, settings), paths)
        assert warm_cache.decode_calls == 0, "the warm cache decoded a clip"
        cache_bytes = sum(warm_cache.entry_path(path, settings).stat().st_size for path in paths)

        fingerprint_seconds = seconds_per_clip(
            lambda path: media.content_fingerprint(path, Path(path).stat().st_size), paths)
        # The same warm loads with a constant in place of the fingerprint: their own cache folder, filled first.
        with mock.patch.object(media, "content_fingerprint", lambda path, size: "constant"):
            for path in paths:
                MediaCache(workdir / "cache-without-fingerprint").load(path, settings)
            unfingerprinted = MediaCache(workdir / "cache-without-fingerprint")
            unfingerprinted_seconds = seconds_per_clip(lambda path: unfingerprinted.load(path, settings), paths)
            assert unfingerprinted.decode_calls == 0
        cached_seconds = seconds_per_clip(lambda path: warm_cache.load(path, settings), paths)  # same conditions
    print_report({
        "benchmark": "decode_cache",
        "clips": len(paths),
        "decode_ms_per_clip": round(1000 * decode_seconds, 3),
        "cached_ms_per_clip": round(1000 * cached_seconds, 3),
        "speedup": round(decode_seconds / cached_seconds, 1),
        "cache_bytes": cache_bytes,
        "fingerprint_ms_per_file": round(1000 * fingerprint_seconds, 3),
        "cached_ms_per_clip_without_fingerprint": round(1000 * unfingerprinted_seconds, 3),
        "fingerprint_share_of_cached_load": round(1 - unfingerprinted_seconds / cached_seconds, 3),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
