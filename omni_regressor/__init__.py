"""omni-regressor: continuous multimodal sentiment regression on the Thinker of Qwen2.5-Omni and Qwen3-Omni."""

__version__ = "0.2.0"

from . import quiet

quiet.install()


def __getattr__(name):
    # Lazy, so that `import omni_regressor` stays cheap for the CLI and the tests.
    if name in ("SentimentScorer", "ClipScore"):
        from . import inference

        return getattr(inference, name)
    raise AttributeError(name)
