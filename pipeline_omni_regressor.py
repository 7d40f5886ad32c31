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

import logging
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import AutoProcessor, Pipeline

try:  # inside a Hub folder (transformers' dynamic modules)
    from .processing_omni_regressor import ClipEncoder, check_finite, media_duration, model_inputs
except ImportError:  # installed as a top-level module of the omni-regressor package
    from processing_omni_regressor import ClipEncoder, check_finite, media_duration, model_inputs

logger = logging.getLogger(__name__)
PIPELINE_TASK = "omni-sentiment-regression"
# A long video's windows are decoded and scored this many batches at a time (like `predict --window`'s stream).
WINDOW_CHUNK_BATCHES = 4


# --- long videos: windows and subtitles ----------------------------------------------------------------------------

SUBTITLE_SUFFIXES = (".srt", ".vtt")
_TIMESTAMP = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})")


@dataclass(frozen=True)
class Cue:
    """One subtitle cue: seconds from the start of the video, and its text."""

    start: float
    end: float
    text: str


def window_spans(duration: float, window: float, hop: float | None = None) -> list[tuple[float, float]]:
    """`[start, end]` windows of `window` seconds every `hop` (default: `window`) covering `[0, duration]`: starts at
    0, hop, 2 hop, ...; the last one ends at `duration`. A window longer than the video is an error."""
    hop = hop or window
    if window <= 0 or hop <= 0:
        raise ValueError(f"window ({window}) and hop ({hop}) must be positive.")
    if window > duration:
        raise ValueError(f"the window ({window:g} s) is longer than the video ({duration:.2f} s); score it whole instead.")
    count = int(math.ceil(round((duration - window) / hop, 6))) + 1
    return [(round(index * hop, 6), round(min(index * hop + window, duration), 6)) for index in range(count)]


def subtitle_path_for(media_path) -> str | None:
    """A subtitle file beside the video with the same name (`clip.srt` or `clip.vtt`), if there is one."""
    stem = os.path.splitext(str(media_path))[0]
    return next((stem + suffix for suffix in SUBTITLE_SUFFIXES if os.path.isfile(stem + suffix)), None)


def _seconds(match) -> float:
    hours, minutes, seconds, fraction = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(fraction.ljust(3, "0")) / 1000


def read_subtitles(path) -> list[Cue]:
    """Cues of an `.srt` or `.vtt` file (UTF-8 with or without BOM, else Latin-1). A file without a single valid
    `start --> end` cue raises `ValueError` naming it."""
    data = open(path, "rb").read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [line.strip() for line in block.strip().split("\n") if line.strip()]
        timing = next((index for index, line in enumerate(lines) if "-->" in line), None)
        if timing is None:
            continue
        times = list(_TIMESTAMP.finditer(lines[timing]))
        if len(times) < 2:
            continue
        start, end = _seconds(times[0]), _seconds(times[1])
        words = " ".join(re.sub(r"<[^>]+>", "", line) for line in lines[timing + 1 :]).strip()
        if end > start and words:
            cues.append(Cue(start, end, words))
    if not cues:
        raise ValueError(f"{path}: no subtitle cue could be read (expected SRT or WebVTT 'start --> end' blocks).")
    return sorted(cues, key=lambda cue: cue.start)


def transcript_for(cues: list[Cue], start: float, end: float) -> str:
    """The text of the cues that overlap `[start, end]`, in time order."""
    return " ".join(cue.text for cue in cues if cue.start < end and cue.end > start)


@dataclass
class ClipScore:
    """The result for one input clip: a score in label units, or the error that prevented it."""

    path: str
    score: float | None
    modalities: tuple[str, ...]
    error: str | None = None
    extras: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)  # modality the model reads -> why the clip could not provide it


@dataclass
class PreparedClip:
    """One clip encoded for the model (or the error that stopped it), with its position in the input.

    `variants` (with `explain`): the clip encoded once more without each of its modalities, by the one left out.
    `missing`: each modality asked for that the clip could not provide -> the reason (`check-data`'s problem name).
    """

    index: int
    path: str
    encoded: dict | None
    modalities: tuple[str, ...]
    error: str | None = None
    variants: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)
    truncated: bool = False  # the clip was longer than `max_audio_seconds`: only its beginning is scored

    @property
    def length(self) -> int:
        return int(self.encoded["input_ids"].shape[1]) if self.encoded is not None else 0


def prepare_clip(encoder: ClipEncoder, index: int, path, transcript=None, allow_missing_modalities=True,
                 modalities=None, explain: bool = False, start: float = 0.0, end: float | None = None) -> PreparedClip:
    """Decodes (the window `[start, end]` of) one clip and encodes it on the modalities it can provide; any failure is
    the clip's error, never raised. With `explain`, also encodes it without each modality (leave-one-out)."""
    path = str(path)
    wanted = tuple(modalities or encoder.settings.modalities)
    try:
        clip = encoder.decode(path, start, end) if {"audio", "video"} & set(wanted) else None
        if clip is not None:
            check_finite(path, clip)
        available = encoder.available_modalities(clip, transcript, wanted)
        if not available:
            return PreparedClip(index, path, None, (), "no usable modality (no transcript, audio or video)")
        if available != wanted and not allow_missing_modalities:
            missing = ", ".join(f"{name} ({encoder.missing_modality_reason(clip, name)})" for name in wanted if name not in available)
            return PreparedClip(index, path, None, available, f"missing modalities: {missing}")
        encoded = encoder.encode(transcript, clip, available)
        if "text" in available and encoded["input_ids"].shape[1] > (getattr(encoder, "max_positions", None) or 1e18):
            transcript, encoded = _fit_transcript(encoder, path, transcript, clip, available, encoded)
        prepared = PreparedClip(index, path, encoded, available, truncated=bool(clip is not None and clip.truncated))
        prepared.missing = {name: encoder.missing_modality_reason(clip, name) for name in wanted if name not in available}
        if explain and len(available) > 1:
            prepared.variants = {
                left_out: encoder.encode(transcript, clip, tuple(name for name in available if name != left_out))
                for left_out in available
            }
        return prepared
    except Exception as error:  # noqa: BLE001 - one clip's failure is reported, the others are scored
        message = str(error) if path in str(error) else f"{type(error).__name__}: {error}"
        return PreparedClip(index, path, None, (), message)


def max_positions(model) -> int | None:
    """How many positions the model's language model reads (its `max_position_embeddings`)."""
    config = getattr(model.config, "thinker_config", model.config)
    return getattr(getattr(config, "text_config", config), "max_position_embeddings", None)


def _fit_transcript(encoder: ClipEncoder, path: str, transcript: str, clip, available, encoded):
    """A transcript cut (at a token) so that the whole prompt fits `encoder.max_positions`, with one warning naming the
    clip and the budget; a clip whose media alone fill the budget raises."""
    budget = encoder.max_positions
    tokenizer = encoder.processor.tokenizer
    ids = tokenizer(transcript, add_special_tokens=False)["input_ids"]
    length = encoded["input_ids"].shape[1]
    keep = len(ids)
    while length > budget:
        keep -= length - budget + 8  # a margin: the cut text may tokenise a little differently
        if keep <= 0:
            raise ValueError(f"{path}: the media alone take more than the model's {budget} positions; lower "
                             "--max_pixels / --max_frames / --max_audio_seconds.")
        transcript = tokenizer.decode(ids[:keep])
        encoded = encoder.encode(transcript, clip, available)
        length = encoded["input_ids"].shape[1]
    logger.warning("%s: the transcript (%d tokens) was cut to its first %d tokens so the prompt fits the model's %d "
                   "positions.", path, len(ids), keep, budget)
    return transcript, encoded


@torch.no_grad()
def score_prepared(model, encoder: ClipEncoder, prepared: list[PreparedClip], device=None) -> list[ClipScore]:
    """Scores clips of one modality set in one forward (plus one per left-out modality when they carry `variants`);
    if the batch fails, each clip alone (its error kept)."""
    device = device or next(model.parameters()).device
    try:
        results = [ClipScore(clip.path, score, clip.modalities, extras={"truncated": True} if clip.truncated else {},
                             missing=clip.missing)
                   for clip, score in zip(prepared, _forward(model, encoder, [clip.encoded for clip in prepared], device))]
        for left_out in prepared[0].variants:  # the clips of one batch share their modalities, so their variants
            scores = _forward(model, encoder, [clip.variants[left_out] for clip in prepared], device)
            for result, score in zip(results, scores):
                result.extras[f"score_without_{left_out}"] = score
                result.extras[f"{left_out}_effect"] = result.score - score  # how far this modality moved the score
        return results
    except Exception as error:  # noqa: BLE001
        if len(prepared) == 1:
            return [ClipScore(prepared[0].path, None, prepared[0].modalities, f"{type(error).__name__}: {error}")]
        return [result for clip in prepared for result in score_prepared(model, encoder, [clip], device)]


class NonFiniteScore(ValueError):
    """The model returned NaN or infinity for a clip: never written as a score."""


def _forward(model, encoder: ClipEncoder, encoded: list[dict], device) -> list[float]:
    batch = encoder.collate(encoded)
    scores = [float(score) for score in model(**model_inputs(batch, device)).logits.float().cpu().tolist()]
    if not all(np.isfinite(scores)):  # the failing batch is retried clip by clip: each clip gets its own error
        raise NonFiniteScore("the model returned a non-finite score (NaN or infinity): check the model's weights "
                             "(`omni-regressor inspect-inputs`) and the clip's media.")
    return scores


def score_clips(model, encoder: ClipEncoder, paths, transcripts=None, batch_size: int = 8,
                allow_missing_modalities: bool = True, modalities=None, device=None, explain: bool = False,
                windows=None) -> list[ClipScore]:
    """Scores every path (or, with `windows`, the `(start, end)` window given for each), in input order; a clip that
    cannot be scored gets `score=None` and its error. Clips are grouped by the modalities they provide and batched by
    prompt length; `explain` adds the leave-one-out scores (`score_without_<modality>`, `<modality>_effect`)."""
    transcripts = list(transcripts) if transcripts is not None else [None] * len(paths)
    windows = list(windows) if windows is not None else [(0.0, None)] * len(paths)
    results: list[ClipScore | None] = [None] * len(paths)
    prepared = []
    for index, (path, transcript, (start, end)) in enumerate(zip(paths, transcripts, windows)):
        clip = prepare_clip(encoder, index, path, transcript, allow_missing_modalities, modalities, explain, start, end)
        if clip.error is not None:
            results[index] = ClipScore(clip.path, None, clip.modalities, clip.error)
        else:
            prepared.append(clip)
    for clip, result in zip(prepared, score_in_length_order(model, encoder, prepared, batch_size, device)):
        results[clip.index] = result
    return results


def score_in_length_order(model, encoder: ClipEncoder, clips: list[PreparedClip], batch_size: int, device=None,
                          score_batch=score_prepared) -> list[ClipScore]:
    """Scores prepared clips in batches of one modality set sorted by length (little padding); results in the order of
    `clips`. `score_batch(model, encoder, clips, device) -> results` scores one batch (default: `score_prepared`)."""
    results = {}
    groups = {}
    for clip in clips:
        groups.setdefault(clip.modalities, []).append(clip)
    for group in groups.values():
        group.sort(key=lambda clip: clip.length)
        for begin in range(0, len(group), batch_size):
            chunk = group[begin : begin + batch_size]
            for clip, result in zip(chunk, score_batch(model, encoder, chunk, device)):
                results[id(clip)] = result
    return [results[id(clip)] for clip in clips]


def score_video_windows(model, encoder: ClipEncoder, path, window: float, hop: float | None = None, transcript=None,
                        batch_size: int = 8, explain: bool = False, device=None) -> tuple[list[ClipScore], dict]:
    """A long video scored in windows -> (one ClipScore per window, with `start`, `end`, `transcript` in its extras;
    a summary dict with the duration-weighted mean). Each window's transcript comes from the subtitle file beside
    the video (`.srt`/`.vtt`, cues assigned by time), else from `transcript` if given for the whole video."""
    duration, spans, texts = video_windows(path, window, hop, transcript)
    results = []
    chunk = max(1, batch_size) * WINDOW_CHUNK_BATCHES  # decoded windows held at once: memory flat in the video's length
    for begin in range(0, len(spans), chunk):
        results += score_clips(model, encoder, [str(path)] * len(spans[begin : begin + chunk]),
                               texts[begin : begin + chunk], batch_size, explain=explain, device=device,
                               windows=spans[begin : begin + chunk])
    for result, (start, end), text in zip(results, spans, texts):
        result.extras.update(start=start, end=end, transcript=text or "")
    return results, window_summary(str(path), results, duration)


def video_windows(path, window: float, hop: float | None = None, transcript=None):
    """A long video's windows -> (duration, [(start, end)] seconds, each window's transcript: from the subtitle file
    beside the video (`.srt`/`.vtt`, cues assigned by time), else `transcript`)."""
    duration = media_duration(path)
    spans = window_spans(duration, window, hop)
    subtitles = subtitle_path_for(path)
    cues = read_subtitles(subtitles) if subtitles else None
    texts = [transcript_for(cues, start, end) if cues else transcript for start, end in spans]
    return duration, spans, texts


def duration_weighted_score(windows) -> float | None:
    """[(start, end, score)] of the windows that were scored -> their mean score weighted by window length."""
    if not windows:
        return None
    return float(np.average([score for _, _, score in windows], weights=[end - start for start, end, _ in windows]))


def window_summary(path: str, results: list[ClipScore], duration: float) -> dict:
    """The whole-video row: the duration-weighted mean of the windows that could be scored."""
    scored = [result for result in results if result.score is not None]
    score = duration_weighted_score([(result.extras["start"], result.extras["end"], result.score) for result in scored])
    return {"path": path, "start": 0.0, "end": duration, "score": score, "windows": len(results),
            "windows_failed": len(results) - len(scored)}


def label_bucket(score: float, score_range) -> int | None:
    """The Acc-7 class of a score (-3..3 for MOSI/MOSEI): clipped to the label scale, rounded half to even; None for
    a missing or non-finite score."""
    if score is None or not np.isfinite(score):
        return None
    low, high = score_range
    return int(np.round(np.clip(score, low, high)))


def polarity(score: float) -> str | None:
    """The Acc-2 class (MMSA's `Has0_acc_2` convention: zero counts as positive); None for a missing or NaN score."""
    if score is None or np.isnan(score):
        return None
    return "positive" if score >= 0 else "negative"


def prediction_record(result: ClipScore, score_range) -> dict:
    """One output row: path, score, label_bucket, acc2, modalities ("text+audio+video") and error ("" if none).
    A non-finite score is never written as a score: the row is an error row that says so."""
    if result.score is not None and not np.isfinite(result.score):
        result = ClipScore(result.path, None, result.modalities,
                           result.error or f"the model returned a non-finite score ({result.score}).")
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
    Each result is a dict: path, score, label_bucket (Acc-7 class), acc2, modalities; with `explain=True` also the
    score without each modality the clip has and the difference (`score_without_audio`, `audio_effect`, ...).
    `window=SECONDS` (and `hop=`) scores one long video in windows: `{"windows": [...], "summary": {...}}`, each
    window with `start`, `end` and its transcript from a subtitle file beside the video. A clip that cannot be scored
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
        self.encoder.max_positions = max_positions(self.model)  # an over-long transcript is cut to fit, with a warning

    def _sanitize_parameters(self, transcript=None, explain=None, window=None, hop=None, **kwargs):
        preprocess_params = {"transcript": transcript} if transcript is not None else {}
        forward_params = {"explain": bool(explain), "window": window, "hop": hop}
        return preprocess_params, forward_params, {}

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

    def _forward(self, model_inputs, batch_size=8, explain=False, window=None, hop=None):
        if window is not None:
            if not model_inputs["single"]:
                raise ValueError("`window=` scores one long video at a time.")
            results, summary = score_video_windows(self.model, self.encoder, model_inputs["paths"][0], window, hop,
                                                   model_inputs["transcripts"][0], batch_size, explain, self.device)
            return {"results": results, "single": False, "summary": summary}
        results = score_clips(self.model, self.encoder, model_inputs["paths"], model_inputs["transcripts"],
                              batch_size=batch_size, device=self.device, explain=explain)
        return {"results": results, "single": model_inputs["single"]}

    def postprocess(self, model_outputs):
        records = []
        for result in model_outputs["results"]:
            if result.error is not None and "summary" not in model_outputs:
                raise ValueError(f"{result.path}: {result.error}")
            record = prediction_record(result, self.encoder.score_range)
            if not record["error"]:
                record.pop("error")
            records.append(record)
        if "summary" in model_outputs:
            return {"windows": records, "summary": model_outputs["summary"]}
        return records[0] if model_outputs["single"] else records


__all__ = [
    "ClipScore", "OmniSentimentRegressionPipeline", "PIPELINE_TASK", "PreparedClip", "label_bucket", "polarity",
    "prediction_record", "prepare_clip", "score_clips", "score_prepared", "score_video_windows", "window_summary",
]
