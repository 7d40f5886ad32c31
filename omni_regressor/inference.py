"""Scoring clips with a saved regressor: the Python API behind `omni-regressor predict` and `evaluate`.

    from omni_regressor import SentimentScorer
    scorer = SentimentScorer.from_pretrained("runs/demo/model")
    scorer.score(["clip.mp4"], transcripts=["I loved it"])   # -> [1.73]

`omni-regressor predict` and the `omni-sentiment-regression` pipeline call `score_clips` and format each result with
`prediction_record`, so the three give the same score for the same clip.
"""

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModel, Qwen2_5OmniProcessor

from .media import MediaCache
from .processing import ClipEncoder, model_inputs


@dataclass
class ClipScore:
    path: str
    score: float | None
    modalities: tuple[str, ...]
    error: str | None = None


class SentimentScorer:
    """A loaded regressor with the `ClipEncoder` it was trained with."""

    def __init__(self, model, encoder: ClipEncoder, device=None):
        self.model = model.eval()
        self.encoder = encoder
        self.device = device or next(model.parameters()).device

    @classmethod
    def from_pretrained(cls, model_dir, modalities=None, media_cache_dir=None, device=None, **model_kwargs):
        """Loads with `AutoModel(..., trust_remote_code=True)`: the saved folder's own code and weights."""
        model = AutoModel.from_pretrained(model_dir, trust_remote_code=True, **model_kwargs)
        encoder = ClipEncoder.from_pretrained(model_dir, media_cache=MediaCache(media_cache_dir), modalities=modalities)
        if device is not None:
            model.to(device)
        return cls(model, encoder, device)

    @classmethod
    def from_model(cls, model, processor=None, media_cache_dir=None, device=None):
        """Wraps a regressor you already loaded (e.g. with `AutoModel`); the settings come from its config, the
        processor from `processor` or from the folder the model was loaded from."""
        processor = processor or Qwen2_5OmniProcessor.from_pretrained(model.name_or_path, trust_remote_code=True)
        return cls(model, ClipEncoder.for_config(model.config, processor, MediaCache(media_cache_dir)), device)

    @torch.no_grad()
    def score_batch(self, transcripts, clips, modalities) -> list[float]:
        encoded = [self.encoder.encode(text, clip, modalities) for text, clip in zip(transcripts, clips)]
        batch = self.encoder.collate(encoded)
        return self.model(**model_inputs(batch, self.device)).logits.float().cpu().tolist()

    def score_clips(self, paths, transcripts=None, batch_size: int = 8, allow_missing_modalities: bool = True,
                    progress: bool = False) -> list[ClipScore]:
        """Scores every path; a clip that cannot be read gets `score=None` and its error, the others go on.

        Clips are decoded once, grouped by the modalities they can provide (a clip without transcript or audio
        runs on what it has when `allow_missing_modalities`), and batched by prompt length.
        """
        transcripts = list(transcripts) if transcripts is not None else [None] * len(paths)
        results: list[ClipScore | None] = [None] * len(paths)
        pending = {}
        needs_media = {"audio", "video"} & set(self.encoder.settings.modalities)
        for index, (path, transcript) in enumerate(zip(paths, transcripts)):
            try:
                clip = self.encoder.decode(path) if needs_media else None
            except Exception as error:  # unreadable input: reported, the others still run
                results[index] = ClipScore(str(path), None, (), f"{type(error).__name__}: {error}")
                continue
            modalities = self.encoder.available_modalities(clip, transcript)
            if modalities != self.encoder.settings.modalities and not allow_missing_modalities:
                missing = sorted(set(self.encoder.settings.modalities) - set(modalities))
                results[index] = ClipScore(str(path), None, modalities, f"missing modalities: {', '.join(missing)}")
                continue
            if not modalities:
                results[index] = ClipScore(str(path), None, (), "no usable modality (no transcript, audio or video)")
                continue
            pending.setdefault(modalities, []).append((index, transcript, clip))
        bar = tqdm(total=sum(len(items) for items in pending.values()), desc="scoring", disable=not progress)
        for modalities, items in pending.items():
            items.sort(key=lambda item: len(item[1] or "") + (item[2].duration if item[2] is not None else 0))
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                scores = self.score_batch([item[1] for item in chunk], [item[2] for item in chunk], modalities)
                for (index, _, _), score in zip(chunk, scores):
                    results[index] = ClipScore(str(paths[index]), float(score), modalities)
                bar.update(len(chunk))
        bar.close()
        return results

    def score(self, paths, transcripts=None, batch_size: int = 8) -> list[float]:
        """Scores in label units, one per path; raises on the first clip that cannot be scored."""
        results = self.score_clips(paths, transcripts, batch_size)
        for result in results:
            if result.error is not None:
                raise ValueError(f"{result.path}: {result.error}")
        return [result.score for result in results]


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
    }
