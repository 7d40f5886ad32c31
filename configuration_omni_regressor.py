"""Configuration of `Qwen2_5OmniForSentimentRegression` (one of the two files that travel to the Hub)."""

from transformers import PreTrainedConfig
from transformers.models.qwen2_5_omni.configuration_qwen2_5_omni import Qwen2_5OmniThinkerConfig


LOSS_TYPES = ("l1", "mse", "huber")
MODALITIES = ("text", "audio", "video")

# What the model saw in training, reused by every inference path (see `omni_regressor.processing`).
DEFAULT_PROCESSING = {
    "modalities": ["text", "audio", "video"],
    "fps": 2.0,
    "max_frames": 16,
    "min_pixels": 28 * 28 * 4,
    "max_pixels": 28 * 28 * 64,
    "audio_sampling_rate": 16000,
    "max_audio_seconds": 30.0,
    "system_prompt": (
        "You are a careful annotator of sentiment in video clips. Judge the speaker's sentiment from what is said, "
        "how it is said and what is shown."
    ),
    "task_prompt": (
        "Rate the sentiment of this clip on a continuous scale from {low} (strongly negative) to {high} "
        "(strongly positive). Answer with one number."
    ),
}


class OmniRegressorConfig(PreTrainedConfig):
    r"""
    Configuration of [`Qwen2_5OmniForSentimentRegression`]: a Qwen2.5-Omni Thinker backbone read out by a small MLP
    head on the final hidden state of the last non-padding token.

    Args:
        thinker_config (`Qwen2_5OmniThinkerConfig` or `dict`, *optional*):
            The full Thinker configuration (audio encoder, vision encoder, language model). Defaults to the 7B shape
            of `Qwen2_5OmniThinkerConfig` (note that its bare vision default is not the real checkpoint's; load the
            config from a checkpoint or use `omni_regressor.architectures` instead of bare defaults).
        head_hidden_size (`int`, *optional*, defaults to 256):
            Width of the hidden layer of the regression head `Linear(H, h) -> LayerNorm -> ReLU -> Dropout -> Linear(h, 1)`.
        head_dropout (`float`, *optional*, defaults to 0.2):
            Dropout probability inside the head, in `[0, 1)`.
        loss_type (`str`, *optional*, defaults to `"l1"`):
            Training loss on normalised labels: one of `"l1"`, `"mse"`, `"huber"`.
        huber_delta (`float`, *optional*, defaults to 1.0):
            Transition point of the Huber loss, in normalised label units. Must be positive.
        label_mean (`float`, *optional*, defaults to 0.0):
            Mean of the training labels. The head predicts `(label - label_mean) / label_std`; the model returns
            predictions in label units.
        label_std (`float`, *optional*, defaults to 1.0):
            Standard deviation of the training labels. Must be positive.
        score_range (`tuple[float, float]`, *optional*, defaults to `(-3.0, 3.0)`):
            The label scale of the dataset (`(-3, 3)` for MOSI/MOSEI, `(-1, 1)` for CH-SIMS). Used by prompts,
            metrics and, only when `clamp_predictions=True`, to clamp the returned scores.
        clamp_predictions (`bool`, *optional*, defaults to `False`):
            Clamp the returned scores to `score_range`. The loss always uses the unclamped output.
        use_audio_in_video (`bool`, *optional*, defaults to `True`):
            Whether the audio track of a video is interleaved with its frames (Qwen2.5-Omni's time-aligned
            positions). Passed to the Thinker in every forward unless given explicitly.
        processing (`dict`, *optional*):
            The settings the inputs were built with (modalities, fps, max_frames, pixel limits, prompts). Saved with
            the model so that inference reproduces training. Keys missing from the dict take the package defaults.
        base_model_name_or_path (`str`, *optional*):
            The original Qwen2.5-Omni checkpoint the backbone came from (used by the generative readout and the
            model card).
        pad_token_id (`int`, *optional*):
            Padding token id. Pooling uses the attention mask, so this is informative only.

    Example:

    ```python
    >>> from configuration_omni_regressor import OmniRegressorConfig
    >>> from modeling_omni_regressor import Qwen2_5OmniForSentimentRegression
    >>> from omni_regressor.architectures import thinker_config_for

    >>> config = OmniRegressorConfig(thinker_config=thinker_config_for("tiny"), head_hidden_size=32)
    >>> model = Qwen2_5OmniForSentimentRegression(config)
    >>> model.config.loss_type
    'l1'
    ```
    """

    model_type = "omni_regressor"
    sub_configs_defaults = {"thinker_config": Qwen2_5OmniThinkerConfig}

    thinker_config: dict | PreTrainedConfig | None = None
    head_hidden_size: int = 256
    head_dropout: float = 0.2
    loss_type: str = "l1"
    huber_delta: float = 1.0
    label_mean: float = 0.0
    label_std: float = 1.0
    score_range: list[float] | tuple[float, float] = (-3.0, 3.0)
    clamp_predictions: bool = False
    use_audio_in_video: bool = True
    processing: dict | None = None
    base_model_name_or_path: str | None = None
    pad_token_id: int | None = None

    def __post_init__(self, **kwargs):
        self.score_range = tuple(float(value) for value in self.score_range)
        self.processing = {**DEFAULT_PROCESSING, **(self.processing or {})}
        super().__post_init__(**kwargs)
        self.validate_readout()

    def validate_readout(self):
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"`loss_type` must be one of {LOSS_TYPES}, got {self.loss_type!r}.")
        if not isinstance(self.head_hidden_size, int) or self.head_hidden_size < 1:
            raise ValueError(f"`head_hidden_size` must be a positive integer, got {self.head_hidden_size!r}.")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ValueError(f"`head_dropout` must be in [0, 1), got {self.head_dropout!r}.")
        if not self.label_std > 0:
            raise ValueError(f"`label_std` must be positive, got {self.label_std!r}.")
        if not self.huber_delta > 0:
            raise ValueError(f"`huber_delta` must be positive, got {self.huber_delta!r}.")
        if len(self.score_range) != 2 or not self.score_range[0] < self.score_range[1]:
            raise ValueError(f"`score_range` must be (low, high) with low < high, got {self.score_range!r}.")
        modalities = self.processing["modalities"]
        if not modalities or any(modality not in MODALITIES for modality in modalities):
            raise ValueError(
                f"`processing['modalities']` must be a non-empty subset of {MODALITIES}, got {modalities!r}."
            )

    def get_text_config(self, *args, **kwargs):
        return self.thinker_config.get_text_config(*args, **kwargs)


__all__ = ["OmniRegressorConfig"]
