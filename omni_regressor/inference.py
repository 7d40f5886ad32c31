"""Scoring clips with a saved regressor: the Python API behind `omni-regressor predict` and `evaluate`.

    from omni_regressor import SentimentScorer
    scorer = SentimentScorer.from_pretrained("runs/demo/run/model")
    scorer.score(["clip.mp4"], transcripts=["I loved it"])   # -> [1.73]

The scoring itself is the exported pipeline's (`pipeline_omni_regressor.score_clips`): the CLI, this API and the
transformers pipeline give the same score for the same clip.
"""

from pipeline_omni_regressor import ClipScore, label_bucket, max_positions, polarity, prediction_record, score_clips
from processing_omni_regressor import ClipEncoder

from .media import MediaCache
from .model_loading import ModelFolderError, check_model_folder  # noqa: F401  (their first home; still importable here)

class SentimentScorer:
    """A loaded regressor with the `ClipEncoder` it was trained with."""

    def __init__(self, model, encoder: ClipEncoder, device=None):
        self.model = model.eval()
        self.encoder = encoder
        self.device = device or next(model.parameters()).device

    @classmethod
    def from_pretrained(cls, model_dir, modalities=None, media_cache_dir=None, device=None, processing=None,
                        trust_remote_code: bool = False, processor=None, **model_kwargs):
        """Loads a complete trained regressor with this package's classes (`omni_regressor.model_loading`): the
        folder's weights, never its code unless `trust_remote_code=True`.

        `processing`: processing settings overriding the saved ones (e.g. a lower pixel budget): a dict of
        `ProcessingSettings` fields or a command's `ProcessingArguments`. `processor`: the folder's processor if the
        caller already loaded it.
        """
        from .model_loading import load_regressor

        check_model_folder(model_dir)
        model = load_regressor(model_dir, trust_remote_code, **model_kwargs)
        if device is not None:
            model.to(device)
        return cls.from_model(model, processor=processor, media_cache_dir=media_cache_dir, device=device,
                              modalities=modalities, processing=processing, trust_remote_code=trust_remote_code)

    @classmethod
    def from_model(cls, model, processor=None, media_cache_dir=None, device=None, modalities=None, processing=None,
                   trust_remote_code: bool = False):
        """Wraps a regressor you already loaded (e.g. with `AutoModel`); the settings are its config's with
        `processing` (a dict of `ProcessingSettings` fields, or a command's `ProcessingArguments`) and `modalities` on
        top (`omni_regressor.settings.resolve_settings`), the processor `processor` or the one saved beside the model."""
        from .settings import requested_settings, resolve_settings

        settings, processor = resolve_settings(requested_settings(processing, modalities), model.name_or_path, trust_remote_code, config=model.config,
                                               processor=processor)
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
