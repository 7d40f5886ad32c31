"""The web page: upload a clip (and its transcript or subtitles), see its sentiment score, Acc-7 class and polarity,
how much each modality moved the score, and for long clips the score over time.

    omni-regressor serve --model runs/demo/run/model          # this file, from the package
    omni-regressor space --model USER/NAME --output_dir S     # this file as a Gradio Space's app.py
    python app.py                                             # in a Space folder (or on the Hub)


It scores through the model folder's own pipeline (`pipeline_omni_regressor.py`, loaded with `trust_remote_code`),
the path of `omni-regressor predict`, so it runs without the omni-regressor package. The scoring function is the
page's named API endpoint `/score`, inputs `(clip, transcript, subtitles)` (transcript and subtitles optional):

    from gradio_client import Client, handle_file
    Client("http://127.0.0.1:7860/").predict(handle_file("clip.mp4"), "I loved it", api_name="/score")

Imports: gradio, transformers, matplotlib (and, through the model folder's code, torch, torchvision, av, numpy).
"""

import os
import shutil
import sys
import tempfile

import gradio as gr
from transformers import pipeline

# The model a Space serves: `omni-regressor space` writes a Hub id here, or "model" for a copy bundled beside this
# file. `OMNI_REGRESSOR_MODEL` overrides it.
SPACE_MODEL = None

# Clips longer than this are also scored in windows of `WINDOW_SECONDS` (the timeline).
LONG_CLIP_SECONDS = 20.0
WINDOW_SECONDS = 10.0
MODALITY_NAMES = ("text", "audio", "video")


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def attribution_plot(result: dict):
    """Bars: how far each modality moved the score (score minus the score without it)."""
    names = [name for name in MODALITY_NAMES if f"{name}_effect" in result]
    if not names:
        return None
    figure = _figure()
    axes = figure.add_subplot()
    effects = [result[f"{name}_effect"] for name in names]
    axes.bar(names, effects, color=["tab:green" if effect >= 0 else "tab:red" for effect in effects])
    axes.axhline(0.0, color="grey", linewidth=1)
    axes.set_ylabel("score - score without it")
    axes.set_title("What each modality added to the score")
    return figure


def timeline_plot(windows: list[dict], score_range):
    """The score of each window over time, the label range shaded."""
    scored = [window for window in windows if window.get("score") is not None]
    if not scored:
        return None
    figure = _figure()
    axes = figure.add_subplot()
    low, high = score_range
    axes.axhspan(low, high, color="tab:blue", alpha=0.06)
    axes.plot([(w["start"] + w["end"]) / 2 for w in scored], [w["score"] for w in scored], marker="o")
    axes.axhline(0.0, color="grey", linewidth=1)
    axes.set_ylim(low - 0.2, high + 0.2)
    axes.set_xlabel("seconds")
    axes.set_ylabel("score")
    axes.set_title("Sentiment over time")
    return figure


def space_model() -> str:
    """The model this app serves: `OMNI_REGRESSOR_MODEL`, else `SPACE_MODEL` (a folder beside this file, or a Hub id)."""
    model = os.environ.get("OMNI_REGRESSOR_MODEL") or SPACE_MODEL
    if not model:
        raise SystemExit("No model to serve: set OMNI_REGRESSOR_MODEL (a model folder or Hub id).")
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), model)
    return bundled if os.path.isdir(bundled) else model


def build_app(model_dir: str, sentiment=None) -> gr.Blocks:
    """The page of `model_dir`, scoring with `sentiment` (default: the folder's own pipeline, its code trusted)."""
    if sentiment is None:
        sentiment = pipeline("omni-sentiment-regression", model=model_dir, trust_remote_code=True)
    score_range = tuple(sentiment.encoder.score_range)
    media_duration = sys.modules[type(sentiment).__module__].media_duration  # the model folder's own code

    def score(clip, transcript=None, subtitles=None):
        """Scores one uploaded clip -> (score, Acc-7 class, polarity, attribution plot, timeline plot, message)."""
        empty = (None, "", "", None, None)
        if not clip:
            return (*empty, "Upload a video (or audio) file first.")
        path = clip if isinstance(clip, str) else getattr(clip, "name", str(clip))
        try:
            with tempfile.TemporaryDirectory() as workdir:
                if subtitles:  # beside a copy of the clip, under its name: the windows take their text from it
                    local = os.path.join(workdir, "clip" + os.path.splitext(path)[1])
                    shutil.copyfile(path, local)
                    subtitle_path = subtitles if isinstance(subtitles, str) else subtitles.name
                    shutil.copyfile(subtitle_path, os.path.join(workdir, "clip" + os.path.splitext(subtitle_path)[1]))
                    path = local
                result = sentiment(path, transcript=(transcript or "").strip() or None, explain=True)
                timeline, message = None, f"Scored on {result['modalities'].replace('+', ', ')}."
                if result.get("truncated"):  # the score covers the beginning only: say which part
                    limit = sentiment.encoder.media_settings.max_audio_seconds
                    message += (f" The score covers the first {limit:g} s of {media_duration(path):.0f} s"
                                " (the model's limit); the timeline covers the whole upload.")
                if sentiment.encoder.needs_media and media_duration(path) >= LONG_CLIP_SECONDS:
                    windows = sentiment(path, window=WINDOW_SECONDS, transcript=(transcript or "").strip() or None)
                    timeline = timeline_plot(windows["windows"], score_range)
                    message += f" Timeline: {len(windows['windows'])} windows of {WINDOW_SECONDS:g} s."
        except Exception as error:  # noqa: BLE001 - shown on the page, never as a stack trace
            text = str(error).splitlines()[0] if str(error) else type(error).__name__
            return (*empty, f"Could not score this file: {text}")
        return (result["score"], str(result["label_bucket"]), result["acc2"], attribution_plot(result), timeline, message)

    with gr.Blocks(title="omni-regressor: sentiment of a video clip") as app:
        gr.Markdown(
            "# Sentiment of a video clip\n"
            f"A score from {score_range[0]:g} (strongly negative) to {score_range[1]:g} (strongly positive), read from "
            "what is said, how it is said and what is shown. Give the transcript for the text modality; for a long "
            "video, subtitles (.srt/.vtt) give each window its text."
        )
        with gr.Row():
            with gr.Column():
                clip = gr.File(label="Clip (video or audio)", file_types=["video", "audio", ".mp4", ".mkv", ".mov", ".webm"])
                transcript = gr.Textbox(label="Transcript (optional)", lines=2, elem_id="transcript")
                subtitles = gr.File(label="Subtitles (optional, .srt or .vtt)", file_types=[".srt", ".vtt"])
                button = gr.Button("Score", variant="primary", elem_id="score-button")
            with gr.Column():
                score_box = gr.Number(label="Score", precision=4, elem_id="score")
                bucket_box = gr.Textbox(label="Acc-7 class (rounded score)", elem_id="bucket")
                polarity_box = gr.Textbox(label="Polarity", elem_id="polarity")
                message_box = gr.Markdown(elem_id="message")
        attribution = gr.Plot(label="Modality attribution")
        timeline = gr.Plot(label="Timeline (long clips)")
        button.click(
            score,
            inputs=[clip, transcript, subtitles],
            outputs=[score_box, bucket_box, polarity_box, attribution, timeline, message_box],
            api_name="score",
        )
    return app


if __name__ == "__main__":  # a Hub Space, or `python app.py` in a Space folder
    build_app(space_model()).launch()
