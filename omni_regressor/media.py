"""Media files in and out: the only module that opens audio/video files (PyAV, with its bundled FFmpeg).

`decode_clip` turns one file into what the Qwen2.5-Omni processor takes: a few RGB frames sized for the vision
encoder (multiples of 28, within a pixel budget) and the audio track as 16 kHz mono float32, both cut to the same
time window. `MediaCache` keeps decodes on disk, keyed by the file's identity and the `MediaSettings`, so epochs,
seeds, ablations and evaluation decode every clip once.

Documented edge cases:
- Long clips: the window is `[0, min(duration, max_audio_seconds)]` for frames AND audio (they stay time-aligned);
  `DecodedClip.truncated` is True when the file was longer.
- Short clips: at least 2 frames are always returned (Qwen's temporal patch is 2). A video with a single decodable
  frame gives that frame twice; a video stream without any decodable frame raises `MediaError`.
- No audio track: `DecodedClip.audio` is None; no video stream: `DecodedClip.frames` is None. Neither is an error
  here (the data checks decide whether the chosen modalities need them).
"""

import hashlib
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import safetensors
import safetensors.numpy
from PIL import Image

# Bump when the decoding rule or the cache entry layout changes: old entries are then ignored.
MEDIA_CACHE_FORMAT_VERSION = 1
# Qwen2-VL / Qwen2.5-Omni vision: patch 14, spatial merge 2 -> sizes are multiples of 28; temporal patch 2.
IMAGE_FACTOR = 28
TEMPORAL_PATCH_SIZE = 2


@dataclass(frozen=True)
class MediaSettings:
    """How a clip is decoded. Part of the cache key, and saved with the model (through the processing settings).

    Args:
        fps: target frame sampling rate, frames per second of clip time.
        max_frames: most frames per clip (long windows are sampled more sparsely instead).
        min_pixels: least height*width of a resized frame.
        max_pixels: most height*width of a resized frame.
        audio_sampling_rate: sampling rate of the returned mono waveform (Whisper features expect 16000).
        max_audio_seconds: longest window decoded; longer clips are cut (audio and frames alike).
    """

    fps: float = 2.0
    max_frames: int = 16
    min_pixels: int = IMAGE_FACTOR * IMAGE_FACTOR * 4
    max_pixels: int = IMAGE_FACTOR * IMAGE_FACTOR * 64
    audio_sampling_rate: int = 16000
    max_audio_seconds: float = 30.0

    def __post_init__(self):
        for name in ("fps", "max_audio_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"`{name}` must be a positive finite number, got {value!r}.")
            object.__setattr__(self, name, float(value))  # 2 and 2.0 must give the same cache key
        for name in ("max_frames", "min_pixels", "max_pixels", "audio_sampling_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
            object.__setattr__(self, name, int(value))
        if self.max_frames < TEMPORAL_PATCH_SIZE:
            raise ValueError(f"`max_frames` must be at least {TEMPORAL_PATCH_SIZE}, got {self.max_frames}.")
        if self.min_pixels < IMAGE_FACTOR * IMAGE_FACTOR:
            raise ValueError(f"`min_pixels` must be at least {IMAGE_FACTOR}*{IMAGE_FACTOR}, got {self.min_pixels}.")
        if self.max_pixels < self.min_pixels:
            raise ValueError(f"`max_pixels` ({self.max_pixels}) must be >= `min_pixels` ({self.min_pixels}).")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "MediaSettings":
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    def cache_key(self) -> str:
        """Canonical JSON of the settings: the same in every process (unlike `hash()`)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


@dataclass
class DecodedClip:
    """One decoded clip.

    Args:
        frames: uint8 `(num_frames, height, width, 3)` RGB, or None when the file has no video stream.
        fps: effective sampling rate of `frames` (frames per second of clip time); pass it to the video processor.
        audio: float32 `(num_samples,)` mono at `MediaSettings.audio_sampling_rate`, or None without an audio track.
        duration: seconds of the decoded window.
        truncated: True when the file was longer than `max_audio_seconds` and was cut.
    """

    frames: np.ndarray | None
    fps: float
    audio: np.ndarray | None
    duration: float
    truncated: bool = False


class MediaError(Exception):
    """A media file that cannot be used. `reason` is a `ClipProblem` code ("unreadable_file", "too_short_video"...)."""

    def __init__(self, path, detail: str, reason: str = "unreadable_file"):
        self.path = str(path)
        self.detail = detail
        self.reason = reason
        super().__init__(f"{self.path}: {detail}")


def smart_resize(
    height: int, width: int, factor: int = IMAGE_FACTOR, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280
) -> tuple[int, int]:
    """Qwen2-VL's resize rule: both sides multiples of `factor`, min_pixels <= h*w <= max_pixels, aspect kept.

    Same rule as `transformers.models.qwen2_vl.image_processing_qwen2_vl.smart_resize` (not imported: importing it
    costs seconds).
    """
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"Aspect ratio must be below 200, got {height}x{width}.")
    resized_height = round(height / factor) * factor
    resized_width = round(width / factor) * factor
    if resized_height * resized_width > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        resized_height = max(factor, math.floor(height / beta / factor) * factor)
        resized_width = max(factor, math.floor(width / beta / factor) * factor)
    elif resized_height * resized_width < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        resized_height = math.ceil(height * beta / factor) * factor
        resized_width = math.ceil(width * beta / factor) * factor
    return resized_height, resized_width


def frame_sample_times(window_seconds: float, settings: MediaSettings) -> tuple[np.ndarray, float]:
    """Times (seconds from the clip start) of the frames to keep, and their effective fps.

    n = round(window * fps), clamped to [2, max_frames], rounded down to an even count. Frame i stands for the i-th
    `1 / effective_fps`-long segment and is the frame nearest that segment's centre; the segments are centred in the
    window. effective_fps is `fps`, or `n / window` when `max_frames` caps the count (frames then span the window).
    """
    wanted = round(window_seconds * settings.fps)
    num_frames = min(max(wanted, TEMPORAL_PATCH_SIZE), settings.max_frames)
    num_frames = max(TEMPORAL_PATCH_SIZE, num_frames - num_frames % TEMPORAL_PATCH_SIZE)
    effective_fps = num_frames / window_seconds if wanted > settings.max_frames else settings.fps
    spacing = 1.0 / effective_fps
    offset = (window_seconds - num_frames * spacing) / 2
    times = offset + (np.arange(num_frames) + 0.5) * spacing  # (num_frames,)
    return times, effective_fps


def _open(path):
    if not os.path.exists(path):
        raise MediaError(path, "file not found.", reason="missing_file")
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as error:
        raise MediaError(path, f"not a readable media file ({error}).") from error


def _first_stream(container, kind: str):
    streams = getattr(container.streams, kind)
    return streams[0] if len(streams) else None


def _metadata_duration(container) -> float | None:
    """Seconds from the container header, else the longest stream's; None when the file does not say."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    stream_durations = [
        float(stream.duration * stream.time_base)
        for stream in container.streams
        if stream.duration is not None and stream.time_base is not None
    ]
    return max(stream_durations) if stream_durations else None


def _demuxed_duration(path, stream_types=("video", "audio")) -> float:
    """Seconds up to the end of the last packet (reads packets, decodes nothing)."""
    end = 0.0
    with _open(path) as container:
        streams = [stream for stream in container.streams if stream.type in stream_types]
        for packet in container.demux(*streams):
            if packet.pts is None or packet.time_base is None:
                continue
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return end


def probe_media(path) -> dict:
    """Stream layout from the header, without decoding: has_video, has_audio, duration (s), num_frames.

    `duration` and `num_frames` are None where the container does not record them.
    """
    try:
        with _open(path) as container:
            video_stream = _first_stream(container, "video")
            return {
                "has_video": video_stream is not None,
                "has_audio": _first_stream(container, "audio") is not None,
                "duration": _metadata_duration(container),
                "num_frames": (video_stream.frames or None) if video_stream is not None else None,
            }
    except av.FFmpegError as error:
        raise MediaError(path, f"not a readable media file ({error}).") from error


def _resize_frame(frame: av.VideoFrame, height: int, width: int) -> np.ndarray:
    image = frame.to_image()  # PIL RGB
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)  # (height, width, 3)


class _NearestFrames:
    """For each sample time, the decoded frame nearest to it (frames arrive in presentation order)."""

    def __init__(self, sample_times: np.ndarray):
        self.sample_times = sample_times
        self.frames = [None] * len(sample_times)
        self.distances = np.full(len(sample_times), np.inf)
        self.num_seen = 0

    def offer(self, frame: av.VideoFrame, frame_time: float) -> bool:
        """Returns True once no later frame can be nearer to any sample time."""
        self.num_seen += 1
        distances = np.abs(self.sample_times - frame_time)
        for index in np.flatnonzero(distances < self.distances):
            self.frames[index] = frame
            self.distances[index] = distances[index]
        return frame_time >= self.sample_times[-1]

    def to_array(self, settings: MediaSettings) -> np.ndarray:
        first = self.frames[0]
        height, width = smart_resize(first.height, first.width, IMAGE_FACTOR, settings.min_pixels, settings.max_pixels)
        resized = {}  # one resize per distinct source frame (a 1-frame clip fills both slots with it)
        for frame in self.frames:
            if id(frame) not in resized:
                resized[id(frame)] = _resize_frame(frame, height, width)
        return np.stack([resized[id(frame)] for frame in self.frames])  # (num_frames, height, width, 3)


class _MonoAudio:
    """Resamples decoded audio frames to mono float32 until `num_samples` are collected."""

    def __init__(self, sampling_rate: int, num_samples: int):
        self.sampling_rate = sampling_rate
        self.num_samples = num_samples
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=sampling_rate)
        self.chunks = []
        self.num_collected = 0

    def _append(self, chunk: np.ndarray):
        self.chunks.append(chunk)
        self.num_collected += len(chunk)

    def offer(self, frame: av.AudioFrame, frame_time: float | None) -> bool:
        """Returns True once the window is filled."""
        if not self.chunks and frame_time is not None and frame_time > 0:
            # The track starts after the clip does: pad so the waveform stays on the clip's clock.
            self._append(np.zeros(int(round(frame_time * self.sampling_rate)), dtype=np.float32))
        for resampled in self.resampler.resample(frame):
            self._append(resampled.to_ndarray().reshape(-1))  # packed mono (1, samples) -> (samples,)
        return self.num_collected >= self.num_samples

    def to_array(self, flush: bool) -> np.ndarray:
        if flush:
            for resampled in self.resampler.resample(None):
                self._append(resampled.to_ndarray().reshape(-1))
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.float32)
        return np.ascontiguousarray(audio[: self.num_samples], dtype=np.float32)  # (num_samples,)


def decode_clip(path, settings: MediaSettings) -> DecodedClip:
    """Decodes the window `[0, min(duration, max_audio_seconds)]` of one file (see the module docstring)."""
    path = str(path)
    try:
        return _decode(path, settings)
    except av.FFmpegError as error:
        raise MediaError(path, f"decoding failed ({error}).") from error


def _decode(path: str, settings: MediaSettings) -> DecodedClip:
    with _open(path) as container:
        video_stream = _first_stream(container, "video")
        audio_stream = _first_stream(container, "audio")
        if video_stream is None and audio_stream is None:
            raise MediaError(path, "no video stream and no audio track.")
        clip_duration = _metadata_duration(container)
        if not clip_duration:  # unknown, or a header that says 0: measure the packets
            clip_duration = _demuxed_duration(path)
        if clip_duration <= 0:
            reason = "too_short_video" if video_stream is not None else "unreadable_file"
            raise MediaError(path, "zero duration.", reason=reason)
        window_seconds = min(clip_duration, settings.max_audio_seconds)
        start_time = container.start_time / av.time_base if container.start_time is not None else 0.0

        sample_times, effective_fps = frame_sample_times(window_seconds, settings)
        nearest_frames = _NearestFrames(sample_times) if video_stream is not None else None
        mono_audio = None
        if audio_stream is not None:
            window_samples = int(round(window_seconds * settings.audio_sampling_rate))
            mono_audio = _MonoAudio(settings.audio_sampling_rate, window_samples)
        if video_stream is not None:
            video_stream.thread_type = "AUTO"
            frame_rate = float(video_stream.average_rate or settings.fps)

        # One pass over both streams, stopped as soon as both have what the window needs.
        video_done, audio_done = video_stream is None, audio_stream is None
        for packet in container.demux(*[stream for stream in (video_stream, audio_stream) if stream is not None]):
            if packet.stream.type == "video" and not video_done:
                for frame in packet.decode():
                    if frame.time is not None:
                        frame_time = frame.time - start_time
                    else:
                        frame_time = nearest_frames.num_seen / frame_rate
                    if nearest_frames.offer(frame, frame_time):
                        video_done = True
                        break
            elif packet.stream.type == "audio" and not audio_done:
                for frame in packet.decode():
                    frame_time = frame.time - start_time if frame.time is not None else None
                    if mono_audio.offer(frame, frame_time):
                        audio_done = True
                        break
            if video_done and audio_done:
                break

    frames = None
    if nearest_frames is not None:
        if nearest_frames.num_seen == 0:
            raise MediaError(path, "the video stream has no decodable frame.", reason="too_short_video")
        frames = nearest_frames.to_array(settings)
    return DecodedClip(
        frames=frames,
        fps=float(effective_fps),
        audio=mono_audio.to_array(flush=not audio_done) if mono_audio is not None else None,
        duration=float(window_seconds),
        truncated=bool(clip_duration > settings.max_audio_seconds),
    )


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


class MediaCache:
    """Decoded clips on disk, one `.safetensors` file per (file identity, settings).

    The key hashes the absolute path, size and mtime_ns of the source, `settings.cache_key()` and
    `MEDIA_CACHE_FORMAT_VERSION`: a rewritten or touched file, or other settings, decode again. Entries are written
    to a temporary file and renamed into place, so ranks decoding the same clip concurrently never see a partial
    entry. An unreadable entry counts as a miss. `MediaCache(None)` decodes every time.

    Attributes:
        decode_calls: real decodes performed by this object (this process).
        hits: loads served from disk.
    """

    def __init__(self, cache_dir=None):
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.decode_calls = 0
        self.hits = 0

    def entry_path(self, path, settings: MediaSettings) -> Path:
        source = Path(path).expanduser().resolve()
        try:
            stat = source.stat()
        except FileNotFoundError as error:
            raise MediaError(path, "file not found.", reason="missing_file") from error
        identity = json.dumps(
            [str(source), stat.st_size, stat.st_mtime_ns, settings.cache_key(), MEDIA_CACHE_FORMAT_VERSION]
        )
        return self.cache_dir / f"{hashlib.sha256(identity.encode()).hexdigest()[:32]}.safetensors"

    def load(self, path, settings: MediaSettings) -> DecodedClip:
        if self.cache_dir is None:
            self.decode_calls += 1
            return decode_clip(path, settings)
        entry = self.entry_path(path, settings)
        if entry.exists():
            clip = _read_entry(entry)
            if clip is not None:
                self.hits += 1
                return clip
        self.decode_calls += 1
        clip = decode_clip(path, settings)  # module-level lookup on purpose: tests count calls by patching it
        _write_entry(entry, clip)
        return clip

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
