"""Scoring clips with a saved regressor: the Python API behind `omni-regressor predict` and `evaluate`.

    from omni_regressor import SentimentScorer
    scorer = SentimentScorer.from_pretrained("runs/demo/run/model")
    scorer.score(["clip.mp4"], transcripts=["I loved it"])   # -> [1.73]

The scoring itself is the exported pipeline's (`pipeline_omni_regressor.score_clips`): the CLI, this API and the
transformers pipeline give the same score for the same clip.
"""

import json
from pathlib import Path

from pipeline_omni_regressor import ClipScore, label_bucket, max_positions, polarity, prediction_record, score_clips
from processing_omni_regressor import ClipEncoder

from .media import MediaCache

PROCESSOR_FILES = ("tokenizer.json", "tokenizer_config.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


class ModelFolderError(ValueError):
    """A `--model` that is not a trained regressor folder, said in one line with what to pass instead."""


def check_model_folder(model_dir) -> None:
    """Refuses, in one line, a folder that is not a trained regressor with its processor (before anything loads).

    Hub ids are not checked here (transformers reports what is missing there).
    """
    folder = Path(model_dir)
    if not folder.exists():
        if "/" in str(model_dir) and not str(model_dir).startswith((".", "/", "~")):
            return  # a Hub id
        raise ModelFolderError(f"{model_dir}: no such folder.")
    if not folder.is_dir():
        raise ModelFolderError(f"{model_dir} is a file; pass the exported model folder (<run>/model).")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelFolderError(f"{model_dir} has no config.json: not a model folder; pass the exported model (<run>/model).")
    try:
        model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as error:
        raise ModelFolderError(f"{config_path} cannot be read ({error}).") from None
    has_weights = any((folder / name).is_file() for name in WEIGHT_FILES)
    if model_type != "omni_regressor":
        raise ModelFolderError(
            f"{model_dir} is a `{model_type}` checkpoint, not a trained sentiment regressor: fine-tune it with "
            f"`omni-regressor train --model_name_or_path {model_dir} ...`, or score it as it is with `omni-regressor zero-shot`."
        )
    if (folder / "adapter_config.json").is_file() and not has_weights:
        raise ModelFolderError(
            f"{model_dir} is an adapter folder (LoRA + head): pass the merged model folder beside it (<run>/model), "
            "or load it with peft (see its README.md)."
        )
    if not has_weights:
        raise ModelFolderError(f"{model_dir} has no weights (model.safetensors): the export is incomplete.")
    missing = [name for name in PROCESSOR_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(
            f"{model_dir} lacks {', '.join(missing)} (the processor files written with the model); copy them from the "
            "base checkpoint the model was trained on, or export the model again."
        )


class SentimentScorer:
    """A loaded regressor with the `ClipEncoder` it was trained with."""

    def __init__(self, model, encoder: ClipEncoder, device=None):
        self.model = model.eval()
        self.encoder = encoder
        self.device = device or next(model.parameters()).device

    @classmethod
    def from_pretrained(cls, model_dir, modalities=None, media_cache_dir=None, device=None, processing=None,
                        trust_remote_code: bool = False, **model_kwargs):
        """Loads a complete trained regressor with this package's classes (`omni_regressor.model_loading`): the
        folder's weights, never its code unless `trust_remote_code=True`.

        `processing`: a dict of processing settings overriding the saved ones (e.g. a lower pixel budget).
        """
        from .model_loading import load_regressor

        check_model_folder(model_dir)
        model = load_regressor(model_dir, trust_remote_code, **model_kwargs)
        if device is not None:
            model.to(device)
        return cls.from_model(model, media_cache_dir=media_cache_dir, device=device, modalities=modalities,
                              processing=processing, trust_remote_code=trust_remote_code)

    @classmethod
    def from_model(cls, model, processor=None, media_cache_dir=None, device=None, modalities=None, processing=None,
                   trust_remote_code: bool = False):
        """Wraps a regressor you already loaded (e.g. with `AutoModel`); the settings come from its config, the
        processor from `processor` or from the folder the model was loaded from."""
        from processing_omni_regressor import ProcessingSettings

        from .model_loading import load_processor

        processor = processor or load_processor(model.name_or_path, trust_remote_code)
        settings = ProcessingSettings.from_config(model.config, modalities)
        if processing:
            settings = ProcessingSettings.from_dict({**settings.to_dict(), **processing})
        encoder = ClipEncoder(processor, settings, model.config.score_range, MediaCache(media_cache_dir))
        encoder.max_positions = max_positions(model)  # an over-long transcript is cut to fit, with a warning
        return cls(model, encoder, device)

    def score_clips(self, paths, transcripts=None, batch_size: int = 8, allow_missing_modalities: bool = True,
                    modalities=None) -> list[ClipScore]:
        """Scores every path; a clip that cannot be scored gets `score=None` and its error, the others go on."""
        return score_clips(self.model, self.encoder, list(paths), transcripts, batch_size, allow_missing_modalities,
                           modalities, self.device)

    def explain(self, paths, transcripts=None, batch_size: int = 8) -> list[dict]:
        """Per clip, its output row (`prediction_record`) with the score with each of its modalities left out
        (`score_without_text`, ...) and the difference to the full score (`text_effect` = score - score without text).
        Modalities the clip does not have are absent, never zero-filled; one more forward per modality, batched."""
        results = score_clips(self.model, self.encoder, list(paths), transcripts, batch_size, device=self.device, explain=True)
        return [prediction_record(result, self.encoder.score_range) for result in results]

    def score(self, paths, transcripts=None, batch_size: int = 8) -> list[float]:
        """Scores in label units, one per path; raises on the first clip that cannot be scored."""
        results = self.score_clips(paths, transcripts, batch_size)
        for result in results:
            if result.error is not None:
                raise ValueError(f"{result.path}: {result.error}")
        return [result.score for result in results]


__all__ = ["ClipScore", "ModelFolderError", "SentimentScorer", "check_model_folder", "label_bucket", "polarity",
           "prediction_record"]
