"""The one path from (transcript, clip, modalities) to model inputs, shared by training, evaluation and prediction.

A clip is decoded once (`omni_regressor.media`, through the media cache), turned into a chat prompt with the
modalities it should show the model, encoded by `Qwen2_5OmniProcessor` one clip at a time (so that a clip's tensors
never depend on the batch it lands in), then left-padded into a batch. Every setting that shapes the inputs
(modalities, fps, frames, pixels, prompts) lives in `OmniRegressorConfig.processing` and so travels with the model.
"""

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from transformers import BatchFeature, Qwen2_5OmniProcessor

from configuration_omni_regressor import DEFAULT_PROCESSING, MODALITIES

from .media import DecodedClip, MediaCache, MediaSettings

MODALITY_ALIASES = {"t": "text", "a": "audio", "v": "video", "text": "text", "audio": "audio", "video": "video"}


def parse_modalities(value) -> tuple[str, ...]:
    """`"text,audio,video"`, `"T+A+V"`, `"ta"`-free lists... -> canonical tuple in (text, audio, video) order."""
    if isinstance(value, str):
        parts = [part for part in value.replace("+", ",").replace(" ", ",").split(",") if part]
    else:
        parts = list(value)
    names = set()
    for part in parts:
        name = MODALITY_ALIASES.get(str(part).strip().lower())
        if name is None:
            raise ValueError(f"Unknown modality {part!r} in {value!r}: use text/audio/video (or T/A/V, e.g. T+A+V).")
        names.add(name)
    if not names:
        raise ValueError(f"`modalities` must name at least one of {MODALITIES}, got {value!r}.")
    return tuple(name for name in MODALITIES if name in names)


def modality_tag(modalities) -> str:
    """(text, audio) -> "T+A", as in MMSA-style ablation tables."""
    return "+".join(name[0].upper() for name in parse_modalities(modalities))


@dataclass(frozen=True)
class ProcessingSettings:
    """What the model sees; saved as `OmniRegressorConfig.processing`."""

    modalities: tuple[str, ...] = tuple(DEFAULT_PROCESSING["modalities"])
    fps: float = DEFAULT_PROCESSING["fps"]
    max_frames: int = DEFAULT_PROCESSING["max_frames"]
    min_pixels: int = DEFAULT_PROCESSING["min_pixels"]
    max_pixels: int = DEFAULT_PROCESSING["max_pixels"]
    audio_sampling_rate: int = DEFAULT_PROCESSING["audio_sampling_rate"]
    max_audio_seconds: float = DEFAULT_PROCESSING["max_audio_seconds"]
    system_prompt: str = DEFAULT_PROCESSING["system_prompt"]
    task_prompt: str = DEFAULT_PROCESSING["task_prompt"]

    def __post_init__(self):
        object.__setattr__(self, "modalities", parse_modalities(self.modalities))

    @classmethod
    def from_dict(cls, values: dict | None) -> "ProcessingSettings":
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in (values or {}).items() if key in known})

    @classmethod
    def from_config(cls, config, modalities=None) -> "ProcessingSettings":
        """The settings a regressor config was trained with, optionally with other modalities."""
        processing = dict(config.processing)
        if modalities is not None:
            processing["modalities"] = parse_modalities(modalities)
        return cls.from_dict(processing)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["modalities"] = list(self.modalities)
        return values

    def media_settings(self) -> MediaSettings:
        return MediaSettings(
            fps=self.fps,
            max_frames=self.max_frames,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
            audio_sampling_rate=self.audio_sampling_rate,
            max_audio_seconds=self.max_audio_seconds,
        )


def build_conversation(transcript: str | None, modalities, settings: ProcessingSettings, score_range) -> list[dict]:
    """System + user turn. Absent modalities are absent from the prompt (no placeholder, no zero-filled input)."""
    low, high = (f"{value:g}" for value in score_range)
    user_content = []
    if "video" in modalities:
        user_content.append({"type": "video"})
    elif "audio" in modalities:
        user_content.append({"type": "audio"})
    task = settings.task_prompt.format(low=low, high=high)
    if "text" in modalities:
        task = f'{task}\nTranscript: "{(transcript or "").strip()}"'
    user_content.append({"type": "text", "text": task})
    return [
        {"role": "system", "content": [{"type": "text", "text": settings.system_prompt}]},
        {"role": "user", "content": user_content},
    ]


class ClipEncoder:
    """Turns clips into `Qwen2_5OmniForSentimentRegression` inputs; also the Trainer's data collator.

    Args:
        processor: a `Qwen2_5OmniProcessor`.
        settings: the `ProcessingSettings` the model was (or will be) trained with.
        score_range: the label scale named in the prompt.
        media_cache: where decoded clips are kept; `MediaCache(None)` decodes every time.
    """

    def __init__(self, processor, settings: ProcessingSettings, score_range=(-3.0, 3.0), media_cache=None):
        self.processor = processor
        self.settings = settings
        self.score_range = tuple(score_range)
        self.media_cache = media_cache if media_cache is not None else MediaCache(None)
        self.pad_token_id = processor.tokenizer.pad_token_id

    @classmethod
    def for_config(cls, config, processor, media_cache=None, modalities=None) -> "ClipEncoder":
        """The encoder described by a regressor config (`processing`, `score_range`), around `processor`."""
        settings = ProcessingSettings.from_config(config, modalities)
        return cls(processor, settings, config.score_range, media_cache)

    @classmethod
    def from_pretrained(cls, model_dir, media_cache=None, modalities=None) -> "ClipEncoder":
        """The encoder a saved model was trained with: its processor files and `config.processing`."""
        from configuration_omni_regressor import OmniRegressorConfig

        # The folder's config names this package's own model code; the processor itself is a stock class.
        processor = Qwen2_5OmniProcessor.from_pretrained(model_dir, trust_remote_code=True)
        return cls.for_config(OmniRegressorConfig.from_pretrained(model_dir), processor, media_cache, modalities)

    def save_pretrained(self, output_dir):
        self.processor.save_pretrained(output_dir)

    def decode(self, media_path) -> DecodedClip:
        return self.media_cache.load(media_path, self.settings.media_settings())

    def available_modalities(self, clip: DecodedClip | None, transcript: str | None) -> tuple[str, ...]:
        """The model's modalities that this clip can actually provide."""
        present = []
        for name in self.settings.modalities:
            if name == "text" and transcript is not None and transcript.strip():
                present.append(name)
            elif name == "audio" and clip is not None and clip.audio is not None:
                present.append(name)
            elif name == "video" and clip is not None and clip.frames is not None:
                present.append(name)
        return tuple(present)

    def encode(
        self,
        transcript: str | None,
        clip: DecodedClip | None,
        modalities=None,
        answer: str | None = None,
    ) -> dict:
        """One clip -> processor outputs with a batch dimension of 1, plus `use_audio_in_video` and `modalities`.

        `modalities` defaults to the settings'; a modality that the clip cannot provide raises a `ValueError`
        (callers that accept partial clips pass `available_modalities(...)`). `answer` appends an assistant turn
        (used by the generative readout's fine-tuning).
        """
        modalities = parse_modalities(modalities or self.settings.modalities)
        needs_media = ("audio" in modalities) or ("video" in modalities)
        if needs_media and clip is None:
            raise ValueError(f"Modalities {modalities} need a decoded clip, got none.")
        if "audio" in modalities and clip.audio is None:
            raise ValueError("The clip has no audio track but `audio` is among the modalities.")
        if "video" in modalities and clip.frames is None:
            raise ValueError("The clip has no video stream but `video` is among the modalities.")
        if "text" in modalities and not (transcript or "").strip():
            raise ValueError("The clip has an empty transcript but `text` is among the modalities.")

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
            }
        if "audio" in modalities:
            processor_kwargs["audio"] = [clip.audio]
            processor_kwargs["audio_kwargs"] = {"sampling_rate": self.settings.audio_sampling_rate}
        if use_audio_in_video:
            processor_kwargs["load_audio_from_video"] = True
            processor_kwargs["audio_from_video_indices"] = [0]
        encoded = dict(self.processor(**processor_kwargs))
        encoded["use_audio_in_video"] = use_audio_in_video
        encoded["modalities"] = modalities
        return encoded

    def collate(self, encoded_clips: list[dict], labels=None) -> BatchFeature:
        """Left-pads token rows and concatenates media tensors. All clips must share their modalities."""
        modality_sets = {clip["modalities"] for clip in encoded_clips}
        if len(modality_sets) != 1:
            raise ValueError(f"A batch must use one set of modalities, got {sorted(modality_sets)}.")
        max_length = max(clip["input_ids"].shape[1] for clip in encoded_clips)
        input_ids = torch.full((len(encoded_clips), max_length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(encoded_clips), max_length), dtype=torch.long)
        for row, clip in enumerate(encoded_clips):
            length = clip["input_ids"].shape[1]
            input_ids[row, max_length - length :] = clip["input_ids"][0]
            attention_mask[row, max_length - length :] = clip["attention_mask"][0]
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}  # (batch, seq)
        for key in ("input_features", "feature_attention_mask", "pixel_values_videos", "video_grid_thw"):
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


def model_inputs(batch: BatchFeature | dict, device=None) -> dict:
    """The batch as keyword arguments of the model's forward, moved to `device`."""
    inputs = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and device is not None:
            value = value.to(device)
        inputs[key] = value
    return inputs
