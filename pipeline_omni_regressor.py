"""The `omni-sentiment-regression` pipeline and the scoring primitives it shares with the omni-regressor package (one
of the files that travel to the Hub).

    from transformers import pipeline
    sentiment = pipeline("omni-sentiment-regression", model="user/omni-regressor-mosi", trust_remote_code=True)
    sentiment("clip.mp4", transcript="I loved it")      # -> {"path": "clip.mp4", "score": 1.73, "label_bucket": 2, ...}
    sentiment([{"path": "a.mp4", "transcript": "..."}, "b.mp4"], batch_size=8)   # -> one dict per clip

Scoring a clip = `prepare_clip` (decode + encode, errors kept per clip) then `score_prepared` (batches of one
modality set, a failing batch retried clip by clip). `omni-regressor predict`, `evaluate` and `SentimentScorer` use
these same functions, so every entry point gives the same score for the same clip. Imports: torch, transformers,
numpy, av (through `processing_omni_regressor.py`).
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import AutoProcessor, Pipeline

try:  # inside a Hub folder (transformers' dynamic modules)
    from .processing_omni_regressor import ClipEncoder, model_inputs
except ImportError:  # installed as a top-level module of the omni-regressor package
    from processing_omni_regressor import ClipEncoder, model_inputs

PIPELINE_TASK = "omni-sentiment-regression"


@dataclass
class ClipScore:
    """The result for one input clip: a score in label units, or the error that prevented it."""

    path: str
    score: float | None
    modalities: tuple[str, ...]
    error: str | None = None
    extras: dict = field(default_factory=dict)


@dataclass
class PreparedClip:
    """One clip encoded for the model (or the error that stopped it), with its position in the input."""

    index: int
    path: str
    encoded: dict | None
    modalities: tuple[str, ...]
    error: str | None = None

    @property
    def length(self) -> int:
        return int(self.encoded["input_ids"].shape[1]) if self.encoded is not None else 0


def prepare_clip(encoder: ClipEncoder, index: int, path, transcript=None, allow_missing_modalities=True,
                 modalities=None) -> PreparedClip:
    """Decodes and encodes one clip on the modalities it can provide; any failure is the clip's error, never raised."""
    path = str(path)
    wanted = tuple(modalities or encoder.settings.modalities)
    try:
        clip = encoder.decode(path) if {"audio", "video"} & set(wanted) else None
        available = encoder.available_modalities(clip, transcript, wanted)
        if not available:
            return PreparedClip(index, path, None, (), "no usable modality (no transcript, audio or video)")
        if available != wanted and not allow_missing_modalities:
            missing = ", ".join(f"{name} ({encoder.missing_modality_reason(clip, name)})" for name in wanted if name not in available)
            return PreparedClip(index, path, None, available, f"missing modalities: {missing}")
        return PreparedClip(index, path, encoder.encode(transcript, clip, available), available)
    except Exception as error:  # noqa: BLE001 - one clip's failure is reported, the others are scored
        message = str(error) if path in str(error) else f"{type(error).__name__}: {error}"
        return PreparedClip(index, path, None, (), message)


@torch.no_grad()
def score_prepared(model, encoder: ClipEncoder, prepared: list[PreparedClip], device=None) -> list[ClipScore]:
    """Scores clips of one modality set in one forward; if the batch fails, each clip alone (its error kept)."""
    device = device or next(model.parameters()).device
    try:
        batch = encoder.collate([clip.encoded for clip in prepared])
        scores = model(**model_inputs(batch, device)).logits.float().cpu().tolist()
        return [ClipScore(clip.path, float(score), clip.modalities) for clip, score in zip(prepared, scores)]
    except Exception as error:  # noqa: BLE001
        if len(prepared) == 1:
            return [ClipScore(prepared[0].path, None, prepared[0].modalities, f"{type(error).__name__}: {error}")]
        return [result for clip in prepared for result in score_prepared(model, encoder, [clip], device)]


def score_clips(model, encoder: ClipEncoder, paths, transcripts=None, batch_size: int = 8,
                allow_missing_modalities: bool = True, modalities=None, device=None) -> list[ClipScore]:
    """Scores every path, in input order; a clip that cannot be scored gets `score=None` and its error.

    Clips are grouped by the modalities they provide and batched by prompt length.
    """
    transcripts = list(transcripts) if transcripts is not None else [None] * len(paths)
    results: list[ClipScore | None] = [None] * len(paths)
    groups = {}
    for index, (path, transcript) in enumerate(zip(paths, transcripts)):
        clip = prepare_clip(encoder, index, path, transcript, allow_missing_modalities, modalities)
        if clip.error is not None:
            results[index] = ClipScore(clip.path, None, clip.modalities, clip.error)
        else:
            groups.setdefault(clip.modalities, []).append(clip)
    for clips in groups.values():
        clips.sort(key=lambda clip: clip.length)
        for start in range(0, len(clips), batch_size):
            chunk = clips[start : start + batch_size]
            for clip, result in zip(chunk, score_prepared(model, encoder, chunk, device)):
                results[clip.index] = result
    return results


def label_bucket(score: float, score_range) -> int:
    """The Acc-7 class of a score (-3..3 for MOSI/MOSEI): clipped to the label scale, rounded half to even."""
    low, high = score_range
    return int(np.round(np.clip(score, low, high)))


def polarity(score: float) -> str:
    """The Acc-2 class (MMSA's `Has0_acc_2` convention: zero counts as positive)."""
    return "positive" if score >= 0 else "negative"


def prediction_record(result: ClipScore, score_range) -> dict:
    """One output row: path, score, label_bucket, acc2, modalities ("text+audio+video") and error ("" if none)."""
    scored = result.score is not None
    return {
        "path": result.path,
        "score": result.score,
        "label_bucket": label_bucket(result.score, score_range) if scored else None,
        "acc2": polarity(result.score) if scored else None,
        "modalities": "+".join(result.modalities),
        "error": result.error or "",
        **result.extras,
    }


class OmniSentimentRegressionPipeline(Pipeline):
    """Video clip (path, optionally with its transcript) -> sentiment score in label units.

    Inputs: a path, a dict `{"path": ..., "transcript": ...}`, or a list of them (scored together in batches of
    `batch_size`, grouped by modalities and sorted by length). `transcript=` sets the transcript of a single path.
    Each result is a dict: path, score, label_bucket (Acc-7 class), acc2, modalities. A clip that cannot be scored
    raises a `ValueError` naming it.
    """

    # The processor and the processing settings come from the model folder (`config.processing`).
    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, modalities=None, media_cache=None, **kwargs):
        super().__init__(*args, **kwargs)
        processor = AutoProcessor.from_pretrained(self.model.name_or_path, trust_remote_code=True)
        self.encoder = ClipEncoder.for_config(self.model.config, processor, media_cache=media_cache, modalities=modalities)

    def _sanitize_parameters(self, transcript=None, **kwargs):
        preprocess_params = {"transcript": transcript} if transcript is not None else {}
        return preprocess_params, {}, {}

    def __call__(self, inputs, batch_size=None, **kwargs):
        # One run for a list too: batching is by modality set and length, not the DataLoader's.
        preprocess_params, forward_params, postprocess_params = self._sanitize_parameters(**kwargs)
        forward_params["batch_size"] = batch_size or self._batch_size or 8
        return self.run_single(inputs, preprocess_params, forward_params, postprocess_params)

    def preprocess(self, inputs, transcript=None):
        single = not isinstance(inputs, (list, tuple))
        items = [inputs] if single else list(inputs)
        if transcript is not None and not single:
            raise ValueError("`transcript=` is for a single clip; pass a list of {'path': ..., 'transcript': ...}.")
        paths, transcripts = [], []
        for item in items:
            if isinstance(item, dict):
                paths.append(str(item["path"]))
                transcripts.append(item.get("transcript"))
            else:
                paths.append(str(item))
                transcripts.append(transcript)
        return {"paths": paths, "transcripts": transcripts, "single": single}

    def _forward(self, model_inputs, batch_size=8):
        results = score_clips(self.model, self.encoder, model_inputs["paths"], model_inputs["transcripts"],
                              batch_size=batch_size, device=self.device)
        return {"results": results, "single": model_inputs["single"]}

    def postprocess(self, model_outputs):
        records = []
        for result in model_outputs["results"]:
            if result.error is not None:
                raise ValueError(f"{result.path}: {result.error}")
            record = prediction_record(result, self.encoder.score_range)
            record.pop("error")
            records.append(record)
        return records[0] if model_outputs["single"] else records


__all__ = [
    "ClipScore", "OmniSentimentRegressionPipeline", "PIPELINE_TASK", "PreparedClip", "label_bucket", "polarity",
    "prediction_record", "prepare_clip", "score_clips", "score_prepared",
]
