"""Media files on disk: the decoded-media cache, header probing, and the mp4 writer used by demo data and tests.

Decoding itself lives in `processing_omni_regressor.py` (it travels with exported models); this module keeps what
only the package needs. `MediaCache` stores each decoded clip once per (file content, decoding settings), so epochs,
seeds, ablations, evaluation and prediction decode every clip once.
"""

import hashlib
import json
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import safetensors
import safetensors.numpy

from decoding_omni_regressor import (  # noqa: I001 - the stream helpers are decoding's own
    DecodedClip,
    _first_stream,
    _tagged_duration,
    MediaError,
    MediaSettings,
    check_finite,
    decode_clip,
    frame_count,
    missing_file_detail,
    frame_sample_times,
    smart_resize,
)

# Bump when the decoding rule or the cache entry layout changes: old entries are then ignored.
MEDIA_CACHE_FORMAT_VERSION = 2
FINGERPRINT_BLOCK_BYTES = 64 * 1024
# Temporary files older than this are left over from a killed writer and are removed.
STALE_TEMPORARY_SECONDS = 3600


def probe_media(path) -> dict:
    """Stream layout from the header, without decoding: has_video, has_audio, duration, num_frames, size, aspect_ratio,
    audio_duration (seconds; None where the file does not say)."""
    path = str(path)
    if not os.path.exists(path):
        raise MediaError(path, missing_file_detail(path), reason="missing_file")
    try:
        with av.open(path) as container:
            video = _first_stream(container, "video")
            audio = _first_stream(container, "audio")  # the default one, as decoding picks it
            duration = container.duration / av.time_base if container.duration and container.duration > 0 else None
            audio_duration = None
            if audio is not None and audio.duration is not None and audio.time_base is not None:
                audio_duration = float(audio.duration * audio.time_base)
            elif audio is not None:
                audio_duration = _tagged_duration(audio)  # Matroska/WebM: the stream's DURATION tag
            size = (video.codec_context.width, video.codec_context.height) if video is not None else None
            return {
                "has_video": video is not None,
                "has_audio": audio is not None,
                "duration": duration,
                "num_frames": (video.frames or None) if video is not None else None,
                "size": f"{size[0]}x{size[1]}" if size else None,
                "aspect_ratio": max(size) / max(1, min(size)) if size and min(size) > 0 else None,
                "audio_duration": audio_duration,
            }
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as error:
        raise MediaError(path, f"not a readable media file ({error}).") from error


def write_clip(path, frames: np.ndarray | None, fps: float, audio: np.ndarray | None = None, sample_rate: int = 16000):
    """Writes an mp4: H.264 (libx264, yuv420p) video from uint8 `(T, H, W, 3)` frames and/or AAC mono audio.

    H and W must be even (yuv420p). Pass `frames=None` for an audio-only file, `audio=None` for a silent one.
    """
    if frames is None and audio is None:
        raise ValueError(f"{path}: nothing to write (frames and audio are both None).")
    if frames is not None:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise ValueError(f"{path}: frames must be uint8 (T>0, H, W, 3), got {frames.dtype} {frames.shape}.")
        height, width = frames.shape[1:3]
        if height % 2 or width % 2:
            raise ValueError(f"{path}: H.264 yuv420p needs an even height and width, got {height}x{width}.")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        if frames is not None:
            video_stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            video_stream.width, video_stream.height = width, height
            video_stream.pix_fmt = "yuv420p"
            video_stream.options = {"preset": "ultrafast", "crf": "18", "threads": "1"}
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=sample_rate)
            audio_stream.layout = "mono"
        if frames is not None:
            for image in frames:
                container.mux(video_stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(video_stream.encode(None))
        if audio is not None:
            waveform = np.asarray(audio, dtype=np.float32).reshape(-1)
            for start in range(0, len(waveform), 1024):
                chunk = waveform[start : start + 1024]
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")  # (1, samples)
                frame.sample_rate = sample_rate
                frame.pts = start
                frame.time_base = Fraction(1, sample_rate)
                container.mux(audio_stream.encode(frame))
            container.mux(audio_stream.encode(None))
    return Path(path)


def default_cache_dir() -> Path:
    """`$OMNI_REGRESSOR_CACHE`, else `~/.cache/omni_regressor/media`."""
    return Path(os.environ.get("OMNI_REGRESSOR_CACHE") or Path.home() / ".cache" / "omni_regressor" / "media")


def content_fingerprint(path, size: int) -> str:
    """sha256 of the first, middle and last 64 KiB: a file replaced by another of the same size and mtime (`cp -p`,
    `rsync -t`, tar restores) still gets a new key, at the cost of three small reads."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for offset in sorted({0, max(0, size // 2 - FINGERPRINT_BLOCK_BYTES // 2), max(0, size - FINGERPRINT_BLOCK_BYTES)}):
            file.seek(offset)
            digest.update(file.read(FINGERPRINT_BLOCK_BYTES))
    return digest.hexdigest()


class MediaCache:
    """Decoded clips on disk, one `.safetensors` file per (file, settings).

    The key hashes the absolute path, size, mtime_ns and a content fingerprint of the source (`content_fingerprint`),
    `settings.cache_key()` and `MEDIA_CACHE_FORMAT_VERSION`: a changed file or other settings decode again. Entries
    are written to a temporary file and renamed into place, so processes decoding the same clip concurrently never
    see a partial entry; temporary files left by a killed writer are removed after an hour. An unreadable entry
    counts as a miss. `MediaCache(None)` decodes every time.

    Attributes:
        decode_calls: real decodes performed by this object (this process).
        hits: loads served from disk.
    """

    def __init__(self, cache_dir=None):
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.decode_calls = 0
        self.hits = 0
        self._swept = False
        self._warned = False

    def entry_path(self, path, settings: MediaSettings, start: float = 0.0, end: float | None = None) -> Path:
        source = Path(path).expanduser()
        try:
            source = source.resolve(strict=True)
            stat = source.stat()
            fingerprint = content_fingerprint(source, stat.st_size)
        except (OSError, RuntimeError) as error:  # RuntimeError: a symbolic link loop (Python 3.11)
            detail = missing_file_detail(path) if not os.path.exists(path) else f"cannot read the file ({error})."
            raise MediaError(path, detail, reason="missing_file") from error
        window = [] if not start and end is None else [float(start), end]  # a window of a long video: its own entry
        identity = json.dumps(
            [str(source), stat.st_size, stat.st_mtime_ns, fingerprint, settings.cache_key(), MEDIA_CACHE_FORMAT_VERSION,
             *window]
        )
        return self.cache_dir / f"{hashlib.sha256(identity.encode()).hexdigest()[:32]}.safetensors"

    def load(self, path, settings: MediaSettings, start: float = 0.0, end: float | None = None) -> DecodedClip:
        """The decoded clip (or its window `[start, end]` seconds), from the cache or decoded and stored.

        The cache is an optimisation and never fails a clip: an entry that cannot be read or written (a full disk, a
        read-only folder) means decoding, with one warning line per cache object. Samples or frames that are NaN or
        infinite are a `non_finite_audio` MediaError."""
        window = (start, end) if start or end is not None else ()
        if self.cache_dir is None:
            self.decode_calls += 1
            return check_finite(path, decode_clip(path, settings, *window))
        entry = self.entry_path(path, settings, start, end)
        try:
            clip = _read_entry(entry) if entry.exists() else None
        except OSError as error:
            self._warn(error)
            clip = None
        if clip is not None:
            self.hits += 1
            return check_finite(path, clip)
        self.decode_calls += 1
        clip = decode_clip(path, settings, *window)  # module-level lookup on purpose: tests count calls by patching it
        try:
            self._sweep_stale_temporaries()
            _write_entry(entry, clip)
        except OSError as error:
            self._warn(error)
        return check_finite(path, clip)

    def _warn(self, error: OSError):
        if not self._warned:
            self._warned = True
            print(f"warning: media cache {self.cache_dir} cannot be used ({error}); decoding clips without it.",
                  file=sys.stderr)

    def _sweep_stale_temporaries(self):
        """Once per object: removes `.tmp` files that a killed writer left behind (older than an hour)."""
        if self._swept or self.cache_dir is None or not self.cache_dir.is_dir():
            return
        self._swept = True
        cutoff = time.time() - STALE_TEMPORARY_SECONDS
        for temporary in self.cache_dir.glob(".*.tmp"):
            try:
                if temporary.stat().st_mtime < cutoff:
                    temporary.unlink()
            except OSError:
                pass  # another process removed or renamed it

    def entries(self) -> list[Path]:
        if self.cache_dir is None or not self.cache_dir.is_dir():
            return []
        return sorted(self.cache_dir.glob("*.safetensors"))

    def size_bytes(self) -> int:
        return sum(entry.stat().st_size for entry in self.entries())

    def describe(self) -> str:
        if self.cache_dir is None:
            return "media cache: disabled (every clip is decoded each time)"
        entries = self.entries()
        size_mb = sum(entry.stat().st_size for entry in entries) / 2**20
        return f"media cache: {self.cache_dir} ({len(entries)} entries, {size_mb:.1f} MB)"


def _write_entry(entry: Path, clip: DecodedClip):
    entry.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    if clip.frames is not None:
        arrays["frames"] = np.ascontiguousarray(clip.frames)
    if clip.audio is not None:
        arrays["audio"] = np.ascontiguousarray(clip.audio)
    metadata = {
        "fps": repr(float(clip.fps)),  # repr round-trips floats exactly
        "duration": repr(float(clip.duration)),
        "truncated": str(int(clip.truncated)),
    }
    payload = safetensors.numpy.save(arrays, metadata=metadata)
    handle, temporary = tempfile.mkstemp(dir=entry.parent, prefix=f".{entry.stem}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        os.replace(temporary, entry)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _read_entry(entry: Path) -> DecodedClip | None:
    try:
        with safetensors.safe_open(entry, framework="numpy") as stored:
            metadata = stored.metadata()
            names = set(stored.keys())
            return DecodedClip(
                frames=stored.get_tensor("frames") if "frames" in names else None,
                fps=float(metadata["fps"]),
                audio=stored.get_tensor("audio") if "audio" in names else None,
                duration=float(metadata["duration"]),
                truncated=bool(int(metadata["truncated"])),
            )
    except (OSError, KeyError, ValueError, safetensors.SafetensorError):
        return None  # partial or foreign file: decode again and overwrite


__all__ = [
    "DecodedClip", "MediaCache", "MediaError", "MediaSettings", "decode_clip", "default_cache_dir", "frame_count",
    "frame_sample_times", "probe_media", "smart_resize", "write_clip",
]
