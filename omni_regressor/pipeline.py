"""The `omni-sentiment-regression` pipeline, shipped beside a saved regressor as `pipeline_omni_regressor.py`.

    from transformers import pipeline
    scorer = pipeline("omni-sentiment-regression", model="runs/demo/model", trust_remote_code=True)
    scorer("clip.mp4", transcript="I loved it")   # -> {"path": "clip.mp4", "score": 1.73, "label_bucket": 2, ...}
    scorer([{"path": "a.mp4", "transcript": "..."}, "b.mp4"], batch_size=8)   # -> a list, one dict per clip

`register_pipeline(export_dir)` copies this file into a saved model folder and declares it in `config.json`
(`custom_pipelines`), which is how transformers finds a pipeline in a model repository. The pipeline does no media or
prompt work of its own: it runs `omni_regressor.inference.SentimentScorer.score_clips`, the path of
`SentimentScorer.score` and `omni-regressor predict`, so all three give the same score for the same clip. That
needs the `omni-regressor` package installed where the pipeline runs (imported inside a `try`, which transformers'
import check skips; this file's own imports are the standard library and transformers only).
"""

import json
import shutil
from pathlib import Path

from transformers import Pipeline

PIPELINE_TASK = "omni-sentiment-regression"
PIPELINE_FILE = "pipeline_omni_regressor.py"


def _omni_regressor():
    """The package's scoring path: `SentimentScorer`, `ClipEncoder`, `MediaCache` and `prediction_record`."""
    try:
        from omni_regressor import inference, media, processing
    except ImportError as error:
        raise ImportError(
            f"The {PIPELINE_TASK} pipeline scores clips with the `omni-regressor` package (decoding, prompt and "
            "batching shared with its CLI and Python API). Install the omni-regressor package this model was "
            "trained with, then build the pipeline again."
        ) from error
    return inference, media, processing


class OmniSentimentRegressionPipeline(Pipeline):
    """Video clip (path, optionally with its transcript) -> sentiment score in label units.

    Inputs: a path, a dict `{"path": ..., "transcript": ...}`, or a list of them (scored together in batches of
    `batch_size`, grouped by modalities and sorted by length). `transcript=` sets the transcript of a single path.
    Each result is a dict: path, score, label_bucket (Acc-7 class), acc2, modalities. A clip that cannot be scored
    raises a `ValueError` naming it.
    """

    # The processor, prompt and media settings come from the model folder through `ClipEncoder.from_pretrained`.
    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, media_cache_dir=None, modalities=None, **kwargs):
        super().__init__(*args, **kwargs)
        inference, media, processing = _omni_regressor()
        encoder = processing.ClipEncoder.from_pretrained(
            self.model.name_or_path, media_cache=media.MediaCache(media_cache_dir), modalities=modalities
        )
        self.scorer = inference.SentimentScorer(self.model, encoder, self.device)
        self.prediction_record = inference.prediction_record

    def _sanitize_parameters(self, transcript=None, **kwargs):
        preprocess_params = {"transcript": transcript} if transcript is not None else {}
        return preprocess_params, {}, {}

    def __call__(self, inputs, batch_size=None, **kwargs):
        # One run for a list too: batching is SentimentScorer's (modalities, length), not the DataLoader's.
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
        results = self.scorer.score_clips(model_inputs["paths"], model_inputs["transcripts"], batch_size=batch_size)
        return {"results": results, "single": model_inputs["single"]}

    def postprocess(self, model_outputs):
        records = []
        for result in model_outputs["results"]:
            if result.error is not None:
                raise ValueError(f"{result.path}: {result.error}")
            record = self.prediction_record(result, self.scorer.encoder.score_range)
            record.pop("error")
            records.append(record)
        return records[0] if model_outputs["single"] else records


def register_pipeline(export_dir) -> Path:
    """Copies this file into a saved regressor folder and declares the task in its `config.json`."""
    export_dir = Path(export_dir)
    config_path = export_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{export_dir}: no config.json; register the pipeline after saving the model.")
    shutil.copyfile(Path(__file__), export_dir / PIPELINE_FILE)
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.setdefault("custom_pipelines", {})[PIPELINE_TASK] = {
        "impl": f"{Path(PIPELINE_FILE).stem}.{OmniSentimentRegressionPipeline.__name__}",
        "pt": ["AutoModel"],
        "type": "multimodal",
    }
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return export_dir / PIPELINE_FILE
