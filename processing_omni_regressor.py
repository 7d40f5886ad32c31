"""From a video file (+ transcript) to the inputs of an omni-regressor model (one of the files that travel to the Hub).

The one path every entry point uses — training collator, evaluation, `omni-regressor predict`, the transformers
pipeline shipped with an exported model — so a clip gives the same tensors wherever it is scored:

    file --decode_clip (PyAV)--> DecodedClip --ClipEncoder.encode (prompt + Qwen processor)--> one clip's tensors
         --ClipEncoder.collate--> a left-padded batch for `Qwen2_5OmniForSentimentRegression.forward`

Decoding follows the official Qwen-Omni video rules (qwen-omni-utils `vision_process.py`): frames sampled at `fps`,
at least `min_frames` and at most `max_frames` (an even count), each resized, aspect kept, to multiples of the
vision encoder's factor (patch size x merge size: 28 for Qwen2.5-Omni, 32 for Qwen3-Omni) within 128..768 tokens
per frame and a total pixel budget over the frames; the audio track resampled to 16 kHz mono. Frames and audio cover
the same window, the whole clip up to the feature extractor's limit (300 s for the released models) unless
`max_audio_seconds` is smaller. Audio features are sized to the clip, not padded to the extractor's 300 s.

Decoding (PyAV, the official sizing rules, long videos and subtitles) is `decoding_omni_regressor.py`, which travels
beside this file. Both import only numpy, av (PyAV), torch and transformers (and, lazily, the optional DeepFilterNet
runtime), so an exported folder scores clips without the omni-regressor package.
"""

import copy
import logging
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
import torch
from transformers import BatchFeature

# Decoding lives in decoding_omni_regressor.py; its public names are also importable from here, as before.
try:  # inside a Hub folder (transformers' dynamic modules)
    from .configuration_omni_regressor import MODALITIES
    from .decoding_omni_regressor import (  # noqa: F401
    DENOISERS, VIDEO_MIN_TOKENS_PER_FRAME, VIDEO_MAX_TOKENS_PER_FRAME, VIDEO_TOTAL_TOKEN_BUDGET, MAX_ASPECT_RATIO, TEMPORAL_PATCH_SIZE, MIN_AUDIO_SECONDS, MediaSettings, DecodedClip, MediaError, check_finite, smart_resize, frame_count, frame_sample_times, frame_size, missing_file_detail, display_rotation, decode_clip, check_denoiser, denoise_audio, audio_seconds, media_duration, TRUNCATION_TOLERANCE_SECONDS,
)
except ImportError:  # installed as a top-level module of the omni-regressor package
    from configuration_omni_regressor import MODALITIES
    from decoding_omni_regressor import (  # noqa: F401
    DENOISERS, VIDEO_MIN_TOKENS_PER_FRAME, VIDEO_MAX_TOKENS_PER_FRAME, VIDEO_TOTAL_TOKEN_BUDGET, MAX_ASPECT_RATIO, TEMPORAL_PATCH_SIZE, MIN_AUDIO_SECONDS, MediaSettings, DecodedClip, MediaError, check_finite, smart_resize, frame_count, frame_sample_times, frame_size, missing_file_detail, display_rotation, decode_clip, check_denoiser, denoise_audio, audio_seconds, media_duration, TRUNCATION_TOLERANCE_SECONDS,
)


logger = logging.getLogger(__name__)

MODALITY_ALIASES = {"t": "text", "a": "audio", "v": "video", "text": "text", "audio": "audio", "video": "video"}

DEFAULT_SYSTEM_PROMPT = (
    "You are a careful annotator of sentiment in video clips. Judge the speaker's sentiment from what is said, "
    "how it is said and what is shown."
)
DEFAULT_TASK_PROMPT = (
    "Rate the sentiment of this clip on a continuous scale from {low} (strongly negative) to {high} "
    "(strongly positive). Answer with one number."
)


def parse_modalities(value) -> tuple[str, ...]:
    """`"text,audio,video"`, `"T+A+V"`, `["audio", "text"]` -> canonical tuple in (text, audio, video) order."""
    if isinstance(value, str):
        parts = [part for part in value.replace("+", ",").replace(" ", ",").split(",") if part]
    else:
        parts = list(value)
    names = set()
    for part in parts:
        name = MODALITY_ALIASES.get(str(part).strip().lower())
        if name is None:
            raise ValueError(f"unknown modality {part!r} in {value!r}: use text, audio, video (or T, A, V, e.g. T+A+V).")
        names.add(name)
    if not names:
        raise ValueError(f"modalities must name at least one of {', '.join(MODALITIES)}, got {value!r}.")
    return tuple(name for name in MODALITIES if name in names)


def modality_tag(modalities) -> str:
    """(text, audio) -> "T+A", as in MMSA-style ablation tables."""
    return "+".join(name[0].upper() for name in parse_modalities(modalities))


# --- settings ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessingSettings:
    """What the model sees: saved in the model config (`processing`) and reused by every inference path.

    `None` means "the official value for this processor", filled in by `resolve(processor)` before training, so a
    saved model always records concrete numbers.

    Args:
        modalities: any non-empty subset of ("text", "audio", "video").
        fps, min_frames, max_frames: frame sampling (official: 2 fps, at least 4 frames; the paper: at most 16).
        min_pixels, max_pixels: area bounds of one frame (None: 128 and 768 tokens per frame, official).
        total_pixels: pixel budget of all frames together (None: the official 90 % of a 128 000-token context).
        max_audio_seconds: longest window decoded (None: the feature extractor's limit, 300 s when released).
        audio_sampling_rate: rate the audio track is resampled to.
        denoise: "none" or "deepfilternet".
        system_prompt, task_prompt: the chat prompt; `task_prompt` may use `{low}` and `{high}` (the score range).
        image_factor: vision patch size x merge size (None: read from the processor).
    """

    # A field with `help` is also a command-line flag of the package (`--fps`, ...; `omni_regressor.arguments` derives
    # the flags from these fields); `at_least` / `positive` / `choices` are its bounds, checked by `check_values`.
    modalities: tuple[str, ...] = field(default=MODALITIES, metadata={
        "help": "Any non-empty subset of text,audio,video (also T+A+V). Default: the model's, or text,audio,video."})
    fps: float = field(default=2.0, metadata={"help": "Frames sampled per second of clip (default 2).", "positive": True})
    min_frames: int = field(default=4, metadata={
        "help": "At least this many frames per clip; shorter clips repeat frames (default 4).",
        "at_least": TEMPORAL_PATCH_SIZE})
    max_frames: int = field(default=16, metadata={
        "help": "At most this many frames per clip; longer clips are sampled more sparsely (default 16).",
        "at_least": TEMPORAL_PATCH_SIZE})
    min_pixels: int | None = field(default=None, metadata={
        "help": "Least area of a resized frame (default: 128 tokens' worth, 128*28*28 for Qwen2.5-Omni).",
        "at_least": 16 * 16})
    max_pixels: int | None = field(default=None, metadata={
        "help": "Largest area of a resized frame (default: 768 tokens' worth, 768*28*28 for Qwen2.5-Omni). Lower "
                "budgets save memory and time at some cost in visual detail.",
        "at_least": 16 * 16})
    total_pixels: int | None = field(default=None, metadata={
        "help": "Pixel budget of all frames of a clip together (default: the official 0.9 * 128000 tokens' worth).",
        "at_least": 16 * 16})
    max_audio_seconds: float | None = field(default=None, metadata={
        "help": "Clips longer than this are cut to their first N seconds, frames and audio alike (default: the "
                "feature extractor's limit, 300 s for the released models).",
        "positive": True})
    audio_sampling_rate: int = 16000
    denoise: str = field(default="none", metadata={
        "help": "Speech enhancement of the audio track before encoding (default none).", "choices": DENOISERS})
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    task_prompt: str = DEFAULT_TASK_PROMPT
    image_factor: int | None = None

    def __post_init__(self):
        self.check_values(asdict(self))
        object.__setattr__(self, "modalities", parse_modalities(self.modalities))

    @classmethod
    def check_values(cls, values: dict) -> None:
        """Refuses (ValueError naming the field in backticks) a value out of its field's bounds, and a minimum above
        its maximum; names not in `values`, and `None` (unset), pass. The one validation of settings: a saved config,
        a dict from Python and the command's flags all pass through it."""
        for item in fields(cls):
            value = values.get(item.name)
            if value is None:
                continue
            bounds = item.metadata
            if item.name == "modalities":
                try:
                    parse_modalities(value)
                except ValueError as error:
                    raise ValueError(f"`modalities`: {error}") from None
            elif "choices" in bounds and value not in bounds["choices"]:
                raise ValueError(f"`{item.name}` must be one of {', '.join(bounds['choices'])}, got {value!r}.")
            elif bounds.get("positive") and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"`{item.name}` must be a positive number, got {value!r}.")
            elif "at_least" in bounds and value < bounds["at_least"]:
                raise ValueError(f"`{item.name}` must be at least {bounds['at_least']}, got {value!r}.")
        for low, high in (("min_frames", "max_frames"), ("min_pixels", "max_pixels")):
            if values.get(low) is not None and values.get(high) is not None and values[low] > values[high]:
                raise ValueError(f"`{low}` ({values[low]}) must not exceed `{high}` ({values[high]}).")

    @classmethod
    def from_dict(cls, values: dict | None) -> "ProcessingSettings":
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in (values or {}).items() if key in known})

    @classmethod
    def from_config(cls, config, modalities=None) -> "ProcessingSettings":
        """The settings a regressor config was trained with, optionally with other modalities."""
        processing = dict(config.processing or {})
        if modalities is not None:
            processing["modalities"] = parse_modalities(modalities)
        return cls.from_dict(processing)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["modalities"] = list(self.modalities)
        return values

    def resolve(self, processor) -> "ProcessingSettings":
        """These settings with every `None` replaced by the official value for `processor`."""
        video_processor, feature_extractor = processor.video_processor, processor.feature_extractor
        return self.resolve_for(
            image_factor=int(video_processor.patch_size * video_processor.merge_size),
            extractor_seconds=float(feature_extractor.n_samples / feature_extractor.sampling_rate),
        )

    def resolve_for(self, image_factor: int, extractor_seconds: float) -> "ProcessingSettings":
        """`resolve` for a vision factor (patch x merge) and a feature-extractor limit given as numbers."""
        factor = self.image_factor or image_factor
        return replace(
            self,
            image_factor=factor,
            # A budget below the official minimum lowers the minimum with it.
            min_pixels=self.min_pixels or min(VIDEO_MIN_TOKENS_PER_FRAME * factor * factor, self.max_pixels or 2**62),
            max_pixels=self.max_pixels or VIDEO_MAX_TOKENS_PER_FRAME * factor * factor,
            total_pixels=self.total_pixels or int(VIDEO_TOTAL_TOKEN_BUDGET * factor * factor),
            max_audio_seconds=min(self.max_audio_seconds or extractor_seconds, extractor_seconds),
        )

    def media_settings(self) -> MediaSettings:
        unresolved = [name for name in ("image_factor", "min_pixels", "max_pixels", "total_pixels", "max_audio_seconds")
                      if getattr(self, name) is None]
        if unresolved:
            raise ValueError(f"resolve(processor) first: {', '.join(unresolved)} not set.")
        return MediaSettings(
            fps=self.fps, min_frames=self.min_frames, max_frames=self.max_frames, image_factor=self.image_factor,
            min_pixels=self.min_pixels, max_pixels=self.max_pixels, total_pixels=self.total_pixels,
            audio_sampling_rate=self.audio_sampling_rate, max_audio_seconds=self.max_audio_seconds,
            denoise=self.denoise,
        )


# --- prompt ------------------------------------------------------------------------------------------------------


class TranscriptCleaner:
    """Transcripts are data, never markup: special-token strings (the tokenizer's, and anything shaped like Qwen's
    `<|...|>`) are removed, so no transcript can add a media placeholder or close the user turn. Whitespace is
    collapsed; a transcript that held nothing else becomes empty (the clip then has no text)."""

    QWEN_SPECIAL_TOKEN = r"<\|[^<>|\s]{1,40}\|>"

    def __init__(self, tokenizer=None):
        specials = set()
        if tokenizer is not None:
            specials.update(tokenizer.all_special_tokens)
            specials.update(token.content for token in getattr(tokenizer, "added_tokens_decoder", {}).values())
        alternatives = [re.escape(token) for token in sorted(filter(None, specials), key=len, reverse=True)]
        self.pattern = re.compile("|".join([*alternatives, self.QWEN_SPECIAL_TOKEN]))

    def __call__(self, transcript: str | None) -> str:
        return " ".join(self.pattern.sub(" ", transcript or "").split())


def build_conversation(transcript: str | None, modalities, settings: ProcessingSettings, score_range) -> list[dict]:
    """System + user turn. Absent modalities are absent from the prompt (no placeholder, no zero-filled input)."""
    low, high = (f"{value:g}" for value in score_range)
    user_content = []
    if "video" in modalities:
        user_content.append({"type": "video"})  # with audio too: the processor interleaves its track
    elif "audio" in modalities:
        user_content.append({"type": "audio"})
    task = settings.task_prompt.format(low=low, high=high)
    if "text" in modalities:
        task = f'{task}\nTranscript: "{transcript}"'
    user_content.append({"type": "text", "text": task})
    return [
        {"role": "system", "content": [{"type": "text", "text": settings.system_prompt}]},
        {"role": "user", "content": user_content},
    ]


# --- encoding and batching ---------------------------------------------------------------------------------------


class _FramePatcher:
    """The backbone's video processor (`Qwen2VLVideoProcessor`), with a short path for what `ClipEncoder.encode` hands
    it: uint8 (num_frames, height, width, 3) frames that decoding already sized (`do_resize=False`), an even frame count.

    The processor would turn them channels-first (a copy), to float32, normalise, cut patches (a copy) and concatenate
    (a copy). Here patches are cut from the uint8 frames (one copy at a quarter of the bytes), then converted and
    normalised in place: the same tensors, bitwise (tested), about half the processor's time.
    Anything else goes to the processor itself.
    """

    SHORT_PATH_KWARGS = {"cap_pixels_per_frame", "do_resize", "do_sample_frames", "fps", "return_tensors", "size"}

    def __init__(self, video_processor):
        self.video_processor = video_processor

    def __getattr__(self, name):  # temporal_patch_size, merge_size, ... as the processor's
        if name == "video_processor":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.video_processor, name)

    def _takes_short_path(self, videos, kwargs) -> bool:
        processor = self.video_processor
        factor = processor.patch_size * processor.merge_size
        return (
            set(kwargs) <= self.SHORT_PATH_KWARGS and kwargs.get("do_resize") is False
            and not kwargs.get("do_sample_frames") and kwargs.get("return_tensors") == "pt"
            and processor.do_rescale and processor.do_normalize
            and isinstance(videos, list) and len(videos) == 1 and isinstance(videos[0], np.ndarray)
            and videos[0].dtype == np.uint8 and videos[0].ndim == 4 and videos[0].shape[-1] == 3
            and videos[0].flags.c_contiguous
            and videos[0].shape[0] % processor.temporal_patch_size == 0
            and videos[0].shape[1] % factor == 0 and videos[0].shape[2] % factor == 0
        )

    def __call__(self, videos, **kwargs):
        if not self._takes_short_path(videos, kwargs):
            return self.video_processor(videos, **kwargs)
        processor = self.video_processor
        patch, merge, temporal = processor.patch_size, processor.merge_size, processor.temporal_patch_size
        frames = torch.from_numpy(videos[0])  # (T, H, W, 3) uint8
        num_frames, height, width, channels = frames.shape
        grid_t, grid_h, grid_w = num_frames // temporal, height // patch, width // patch
        patches = frames.view(grid_t, temporal, grid_h // merge, merge, patch, grid_w // merge, merge, patch, channels)
        # -> the processor's patch order: (t, h-block, w-block, h-in-block, w-in-block, channel, frame, row, column)
        patches = patches.permute(0, 2, 5, 3, 6, 8, 1, 4, 7).reshape(grid_t * grid_h * grid_w, channels, -1)
        # The processor's fused rescale + normalise constants: mean / rescale_factor, std / rescale_factor (float32).
        mean = torch.tensor(processor.image_mean) * (1.0 / processor.rescale_factor)
        std = torch.tensor(processor.image_std) * (1.0 / processor.rescale_factor)
        pixel_values = patches.to(torch.float32)  # (patches, channel, frame * row * column)
        pixel_values.sub_(mean.view(1, -1, 1)).div_(std.view(1, -1, 1))  # the processor's ops, in its order
        return BatchFeature(
            data={"pixel_values_videos": pixel_values.view(grid_t * grid_h * grid_w, -1),
                  "video_grid_thw": torch.tensor([[grid_t, grid_h, grid_w]])},
            tensor_type="pt",
        )


def _with_frame_patcher(processor):
    """A shallow copy of `processor` whose video processor is wrapped in `_FramePatcher` (the original is untouched:
    it is the one saved with a model)."""
    if getattr(processor, "video_processor", None) is None:
        return processor
    patched = copy.copy(processor)
    patched.video_processor = _FramePatcher(processor.video_processor)
    return patched


class DirectDecoder:
    """Decodes every time (no cache); the package's `MediaCache` has the same `load` method and counters."""

    def __init__(self):
        self.decode_calls = 0
        self.hits = 0

    def load(self, path, settings: MediaSettings, start: float = 0.0, end: float | None = None) -> DecodedClip:
        self.decode_calls += 1
        return decode_clip(path, settings, start, end)


class ClipEncoder:
    """Turns clips into model inputs; also the Trainer's data collator (rows with `text`, `media_path`, `label`).

    Args:
        processor: the backbone's processor (`Qwen2_5OmniProcessor`, `Qwen3OmniMoeProcessor`).
        settings: the `ProcessingSettings` the model was (or will be) trained with; resolved against `processor`.
        score_range: the label scale named in the prompt.
        media_cache: what decodes files (`load(path, media_settings)`); default: decode every time.
    """

    def __init__(self, processor, settings: ProcessingSettings, score_range=(-3.0, 3.0), media_cache=None):
        processor = getattr(processor, "backbone_processor", processor)  # an `OmniRegressorProcessor` wraps one
        self.processor = processor
        self.processor_for_frames = _with_frame_patcher(processor)  # decoded frames skip the processor's copies
        self.settings = settings.resolve(processor)
        self.media_settings = self.settings.media_settings()
        self.score_range = tuple(float(value) for value in score_range)
        self.media_cache = media_cache if media_cache is not None else DirectDecoder()
        self.pad_token_id = processor.tokenizer.pad_token_id
        self.clean_transcript = TranscriptCleaner(processor.tokenizer)
        self.needs_media = bool({"audio", "video"} & set(self.settings.modalities))
        check_denoiser(self.settings.denoise)

    @classmethod
    def for_config(cls, config, processor, media_cache=None, modalities=None) -> "ClipEncoder":
        """The encoder described by a regressor config (`processing`, `score_range`), around `processor`."""
        return cls(processor, ProcessingSettings.from_config(config, modalities), config.score_range, media_cache)

    def save_pretrained(self, output_dir):
        self.processor.save_pretrained(output_dir)

    def decode(self, media_path, start: float = 0.0, end: float | None = None) -> DecodedClip:
        """The clip (or its window `[start, end]` in seconds), through the media cache."""
        if start or end is not None:
            return self.media_cache.load(media_path, self.media_settings, start, end)
        return self.media_cache.load(media_path, self.media_settings)

    def available_modalities(self, clip: DecodedClip | None, transcript: str | None, modalities=None) -> tuple[str, ...]:
        """Which of `modalities` (default: the settings') this clip can actually provide."""
        present = []
        for name in parse_modalities(modalities or self.settings.modalities):
            if name == "text" and self.clean_transcript(transcript):
                present.append(name)
            elif name == "audio" and audio_seconds(clip, self.settings.audio_sampling_rate) >= MIN_AUDIO_SECONDS:
                present.append(name)
            elif name == "video" and clip is not None and clip.frames is not None:
                present.append(name)
        return tuple(present)

    @staticmethod
    def missing_modality_reason(clip: DecodedClip | None, modality: str) -> str:
        """The problem kind of a modality a clip cannot provide (the names `omni-regressor check-data` uses)."""
        if modality == "text":
            return "empty_transcript"
        if modality == "video":
            return "no_video_stream"
        return "no_audio_track" if clip is None or clip.audio is None else "too_short_audio"

    def encode(self, transcript: str | None, clip: DecodedClip | None, modalities=None, answer: str | None = None) -> dict:
        """One clip -> processor outputs with a batch dimension of 1, plus `use_audio_in_video` and `modalities`.

        `modalities` defaults to the settings'; a modality that the clip cannot provide raises a `ValueError`
        (callers that accept partial clips pass `available_modalities(...)`). `answer` appends an assistant turn
        (the generative readout's fine-tuning).
        """
        modalities = parse_modalities(modalities or self.settings.modalities)
        if ("audio" in modalities or "video" in modalities) and clip is None:
            raise ValueError(f"modalities {'+'.join(modalities)} need a decoded clip, got none.")
        transcript = self.clean_transcript(transcript)
        available = self.available_modalities(clip, transcript, modalities)
        missing = [name for name in modalities if name not in available]
        if missing:
            reasons = ", ".join(f"{name} ({self.missing_modality_reason(clip, name)})" for name in missing)
            raise ValueError(f"the clip cannot provide {reasons}, which the model reads.")

        conversation = build_conversation(transcript, modalities, self.settings, self.score_range)
        prompt = self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        if answer is not None:
            prompt = f"{prompt}{answer}{self.processor.tokenizer.eos_token}"

        processor_kwargs = {"text": [prompt], "return_tensors": "pt", "padding": False}
        use_audio_in_video = "audio" in modalities and "video" in modalities
        if "video" in modalities:
            processor_kwargs["videos"] = [clip.frames]
            processor_kwargs["videos_kwargs"] = {
                "fps": float(clip.fps),
                "do_sample_frames": False,
                "cap_pixels_per_frame": True,
                "size": {"shortest_edge": self.settings.min_pixels, "longest_edge": self.settings.max_pixels},
                # Decoding already sized the frames (`frame_size`): the processor's resize would be a no-op.
                "do_resize": not self.frames_have_final_size(clip.frames),
            }
        if "audio" in modalities:
            processor_kwargs["audio"] = [clip.audio]
            processor_kwargs["audio_kwargs"] = {"sampling_rate": self.settings.audio_sampling_rate}
            if getattr(self.processor, "audio_kwargs", {}).get("padding") is not True:
                # Qwen2.5-Omni pads every clip to the extractor's chunk_length (300 s when released): size it to
                # the clip instead. (Qwen3-Omni's processor already pads to the longest clip only.)
                processor_kwargs["audio_kwargs"]["max_length"] = self.feature_samples(len(clip.audio))
        if use_audio_in_video:
            processor_kwargs["load_audio_from_video"] = True
            processor_kwargs["audio_from_video_indices"] = [0]
        encoded = dict(self.processor_for_frames(**processor_kwargs))
        encoded.pop("num_audio_tokens", None)
        encoded["use_audio_in_video"] = use_audio_in_video
        encoded["modalities"] = modalities
        return encoded

    def frames_have_final_size(self, frames: np.ndarray) -> bool:
        """True when `frames` (num_frames, height, width, 3) already have the size decoding gives them."""
        num_frames, height, width = frames.shape[:3]
        try:
            return frame_size(height, width, num_frames, self.media_settings) == (height, width)
        except ValueError:
            return False

    def feature_samples(self, num_samples: int) -> int:
        """Samples the feature extractor pads to: the clip rounded up to whole feature frames, plus one frame of
        silence, which makes every feature inside the attention mask equal to the fully padded (300 s) extractor's."""
        hop = self.processor.feature_extractor.hop_length
        return min((int(math.ceil(num_samples / hop)) + 1) * hop, self.processor.feature_extractor.n_samples)

    def collate(self, encoded_clips: list[dict], labels=None) -> BatchFeature:
        """Left-pads token rows, pads audio features in time, concatenates media tensors. One modality set per batch."""
        modality_sets = {clip["modalities"] for clip in encoded_clips}
        if len(modality_sets) != 1:
            raise ValueError(f"a batch must use one set of modalities, got {sorted(modality_sets)}.")
        max_length = max(clip["input_ids"].shape[1] for clip in encoded_clips)
        input_ids = torch.full((len(encoded_clips), max_length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(encoded_clips), max_length), dtype=torch.long)
        for row, clip in enumerate(encoded_clips):
            length = clip["input_ids"].shape[1]
            input_ids[row, max_length - length :] = clip["input_ids"][0]
            attention_mask[row, max_length - length :] = clip["attention_mask"][0]
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}  # (batch, seq)
        if "input_features" in encoded_clips[0]:
            frames = max(clip["input_features"].shape[-1] for clip in encoded_clips)
            batch["input_features"] = torch.cat(
                [torch.nn.functional.pad(clip["input_features"], (0, frames - clip["input_features"].shape[-1]))
                 for clip in encoded_clips]
            )  # (batch, mel, frames)
            batch["feature_attention_mask"] = torch.cat(
                [torch.nn.functional.pad(clip["feature_attention_mask"], (0, frames - clip["feature_attention_mask"].shape[-1]))
                 for clip in encoded_clips]
            )  # (batch, frames)
        for key in ("pixel_values_videos", "video_grid_thw"):
            if key in encoded_clips[0]:
                batch[key] = torch.cat([clip[key] for clip in encoded_clips], dim=0)
        if "video_second_per_grid" in encoded_clips[0]:
            batch["video_second_per_grid"] = torch.cat(
                [torch.as_tensor(clip["video_second_per_grid"], dtype=torch.float) for clip in encoded_clips]
            )
        batch["use_audio_in_video"] = encoded_clips[0]["use_audio_in_video"]
        if labels is not None:
            batch["labels"] = torch.tensor(np.asarray(labels, dtype=np.float32))
        return BatchFeature(batch)

    def encode_batch(self, transcripts, media_paths, labels=None, modalities=None) -> BatchFeature:
        """Paths + transcripts -> one padded batch (decodes through the media cache)."""
        modalities = parse_modalities(modalities or self.settings.modalities)
        needs_media = ("audio" in modalities) or ("video" in modalities)
        encoded = [
            self.encode(transcript, self.decode(path) if needs_media else None, modalities)
            for transcript, path in zip(transcripts, media_paths)
        ]
        return self.collate(encoded, labels)

    def __call__(self, features: list[dict]) -> BatchFeature:
        """Trainer collator over dataset rows with `text`, `media_path` and `label`."""
        labels = [feature["label"] for feature in features] if "label" in features[0] else None
        return self.encode_batch(
            [feature["text"] for feature in features], [feature["media_path"] for feature in features], labels
        )


def model_inputs(batch, device=None) -> dict:
    """The batch as keyword arguments of the model's forward, tensors moved to `device`."""
    return {
        key: value.to(device) if isinstance(value, torch.Tensor) and device is not None else value
        for key, value in batch.items()
    }


class OmniRegressorProcessor:
    """The processor of a saved regressor folder: `AutoProcessor.from_pretrained(folder, trust_remote_code=True)`.

    `processor(videos, text)` turns a clip (a file path or a `DecodedClip`) and its transcript, or lists of them, into
    the model's batch with the folder's saved settings (`config.processing`, `score_range`), through the same
    `ClipEncoder` the pipeline and training use:

        processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
        model = AutoModel.from_pretrained(folder, trust_remote_code=True)
        score = model(**processor("clip.mp4", "I loved it")).logits   # (batch,) scores in label units

    Everything else (`tokenizer`, `apply_chat_template`, `save_pretrained`, ...) is the backbone's processor's.
    """

    def __init__(self, backbone_processor, encoder: ClipEncoder):
        self.backbone_processor = backbone_processor
        self.encoder = encoder

    @classmethod
    def register_for_auto_class(cls, auto_class="AutoProcessor"):
        """Called by `AutoProcessor` on remote code; the folder's processor_config.json already maps it."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, trust_remote_code=None, **kwargs):
        from transformers import PretrainedConfig, ProcessorMixin
        from transformers.models.auto.processing_auto import processor_class_from_name

        kwargs.pop("_from_auto", None)
        # The backbone's own class (processor_config.json's `processor_class`), not AutoProcessor: that maps to this.
        processor_dict, _ = ProcessorMixin.get_processor_dict(pretrained_model_name_or_path, **kwargs)
        backbone_class = processor_class_from_name(processor_dict["processor_class"])
        backbone_processor = backbone_class.from_pretrained(
            pretrained_model_name_or_path, trust_remote_code=trust_remote_code, **kwargs)
        hub_kwargs = {key: kwargs[key] for key in ("cache_dir", "revision", "token", "local_files_only", "subfolder")
                      if key in kwargs}
        config, _ = PretrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
        settings = ProcessingSettings.from_dict(config.get("processing"))
        return cls(backbone_processor, ClipEncoder(backbone_processor, settings, config.get("score_range", (-3.0, 3.0))))

    def __call__(self, videos=None, text=None, modalities=None) -> BatchFeature:
        """`videos`: a path or `DecodedClip` (or a list, or None for text-only models); `text`: the transcript(s)."""
        single = not isinstance(videos, (list, tuple)) and not isinstance(text, (list, tuple))
        videos = [videos] if single or videos is None else list(videos)
        texts = [text] if single or text is None or isinstance(text, str) else list(text)
        if len(videos) == 1 and len(texts) > 1:
            videos = videos * len(texts)
        texts = texts * len(videos) if len(texts) == 1 else texts
        modalities = parse_modalities(modalities or self.encoder.settings.modalities)
        needs_media = bool({"audio", "video"} & set(modalities))
        clips = [
            video if isinstance(video, DecodedClip) or video is None or not needs_media else self.encoder.decode(str(video))
            for video in videos
        ]
        return self.encoder.collate([self.encoder.encode(transcript, clip, modalities)
                                     for transcript, clip in zip(texts, clips)])

    def __getattr__(self, name):
        if name in ("backbone_processor", "encoder"):  # not yet set (unpickling)
            raise AttributeError(name)
        return getattr(self.backbone_processor, name)


__all__ = [
    "ClipEncoder", "OmniRegressorProcessor", "DecodedClip", "MediaError", "MediaSettings", "ProcessingSettings", "decode_clip",
    "build_conversation", "parse_modalities", "modality_tag", "model_inputs",
]
