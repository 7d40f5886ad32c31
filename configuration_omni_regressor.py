"""Configuration of the omni-regressor models (one of the files that travel to the Hub)."""

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec


LOSS_TYPES = ("l1", "mse", "huber")
POOLINGS = ("last", "mean", "attention")
HEAD_TYPES = ("mlp", "linear")
MODALITIES = ("text", "audio", "video")
# The Thinker configurations a regressor can be built on (`thinker_config.model_type`).
THINKER_MODEL_TYPES = ("qwen2_5_omni_thinker", "qwen3_omni_moe_thinker")


class OmniRegressorConfig(PreTrainedConfig):
    r"""
    Configuration of [`Qwen2_5OmniForSentimentRegression`] and [`Qwen3OmniMoeForSentimentRegression`]: the Thinker of
    Qwen2.5-Omni or Qwen3-Omni, read out by a small MLP head on the final hidden state of the last non-padding token
    (by default; `pooling`, `readout_layer` and `head_type` choose otherwise).

    Args:
        thinker_config (`Qwen2_5OmniThinkerConfig`, `Qwen3OmniMoeThinkerConfig` or `dict`, *optional*):
            The Thinker configuration (audio encoder, vision encoder, language model); a dict is read by its
            `model_type` (`"qwen2_5_omni_thinker"` or `"qwen3_omni_moe_thinker"`). Defaults to the bare
            `Qwen2_5OmniThinkerConfig`, whose vision width is not the released checkpoint's: load the config from a
            checkpoint or use `omni_regressor.backbones` presets instead of bare defaults.
        head_hidden_size (`int`, *optional*, defaults to 256):
            Width of the head `Linear(H, h) -> LayerNorm -> ReLU -> Dropout -> Linear(h, 1)`.
        head_dropout (`float`, *optional*, defaults to 0.2):
            Dropout probability inside the head, in `[0, 1)`.
        head_type (`str`, *optional*, defaults to `"mlp"`):
            `"mlp"`: the head above; `"linear"`: one `Linear(H, 1)` (a linear probe's weights, e.g. the ridge of
            `omni-regressor probe --export_best`); `head_hidden_size` and `head_dropout` are then unused.
        pooling (`str`, *optional*, defaults to `"last"`):
            How the hidden states `(batch, seq, hidden)` become one vector per clip: `"last"` (the last non-padding
            token, the paper's readout), `"mean"` (masked mean over the prompt's tokens) or `"attention"` (a learned
            query over all non-padding positions; its weights are `head.pooler.query`). Padding-side invariant.
        readout_layer (`int`, *optional*, defaults to -1):
            The hidden state read out: `-1` the final layer; `k` in `[0, num_hidden_layers]` the state after the
            first `k` decoder layers of the language model (`0`: the embeddings), through the final RMSNorm. The
            later layers are neither built, loaded nor run.
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
            The label scale (`(-3, 3)` for MOSI/MOSEI, `(-1, 1)` for CH-SIMS). Used by prompts, metrics and, only
            when `clamp_predictions=True`, to clamp the returned scores.
        clamp_predictions (`bool`, *optional*, defaults to `False`):
            Clamp the returned scores to `score_range`. The loss always uses the unclamped output.
        use_audio_in_video (`bool`, *optional*, defaults to `True`):
            Whether the audio track of a video is interleaved with its frames (time-aligned positions). Passed to
            the Thinker in every forward that has both audio and video unless given explicitly.
        processing (`dict`, *optional*):
            The settings the inputs were built with (modalities, fps, frames, pixel limits, audio window, denoising,
            prompts): see `ProcessingSettings` in `processing_omni_regressor.py`. Saved with the model so that
            inference reproduces training; missing keys take that class's defaults.
        base_model_name_or_path (`str`, *optional*):
            The original checkpoint the backbone came from (a Hub id, or an absolute local path).
        pad_token_id (`int`, *optional*):
            Padding token id. Pooling uses the attention mask, so this is informative only.

    The model is a regressor: `num_labels` is 1 and `problem_type` is `"regression"`.

    Example:

    ```python
    >>> from configuration_omni_regressor import OmniRegressorConfig
    >>> from modeling_omni_regressor import Qwen2_5OmniForSentimentRegression
    >>> from omni_regressor.backbones import thinker_config_for

    >>> config = OmniRegressorConfig(thinker_config=thinker_config_for("tiny"), head_hidden_size=32)
    >>> model = Qwen2_5OmniForSentimentRegression(config)
    >>> model.config.loss_type, model.config.num_labels, model.config.problem_type
    ('l1', 1, 'regression')
    ```
    """

    model_type = "omni_regressor"
    # Thinker `model_type`s a regressor can be built on (`register_thinker_model_type` adds one).
    thinker_model_types = list(THINKER_MODEL_TYPES)
    # Pooling names: `POOLINGS`, and once the modeling file is imported its pooler table itself (`POOLERS`).
    poolings = POOLINGS
    sub_configs_defaults = {
        "thinker_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2_5_omni_thinker"),
    }

    thinker_config: dict | PreTrainedConfig | None = None
    head_hidden_size: int = 256
    head_dropout: float = 0.2
    head_type: str = "mlp"
    pooling: str = "last"
    readout_layer: int = -1
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
        self.processing = dict(self.processing or {})
        kwargs.pop("num_labels", None)
        super().__post_init__(**kwargs)
        self.num_labels = 1
        self.id2label, self.label2id = {0: "sentiment"}, {"sentiment": 0}
        self.problem_type = "regression"
        self.validate_readout()

    def validate_readout(self):
        if self.thinker_config.model_type not in self.thinker_model_types:
            raise ValueError(
                f"`thinker_config.model_type` must be one of {tuple(self.thinker_model_types)}, got "
                f"{self.thinker_config.model_type!r}."
            )
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"`loss_type` must be one of {LOSS_TYPES}, got {self.loss_type!r}.")
        if not isinstance(self.head_hidden_size, int) or self.head_hidden_size < 1:
            raise ValueError(f"`head_hidden_size` must be a positive integer, got {self.head_hidden_size!r}.")
        if self.head_type not in HEAD_TYPES:
            raise ValueError(f"`head_type` must be one of {HEAD_TYPES}, got {self.head_type!r}.")
        if self.pooling not in self.poolings:
            raise ValueError(f"`pooling` must be one of {tuple(self.poolings)}, got {self.pooling!r}.")
        num_layers = self.thinker_config.get_text_config().num_hidden_layers
        if not isinstance(self.readout_layer, int) or not -1 <= self.readout_layer <= num_layers:
            raise ValueError(
                f"`readout_layer` must be -1 (the final layer) or an integer in [0, {num_layers}] (0: the embeddings), "
                f"got {self.readout_layer!r}."
            )
        if not 0.0 <= self.head_dropout < 1.0:
            raise ValueError(f"`head_dropout` must be in [0, 1), got {self.head_dropout!r}.")
        if not self.label_std > 0:
            raise ValueError(f"`label_std` must be positive, got {self.label_std!r}.")
        if not self.huber_delta > 0:
            raise ValueError(f"`huber_delta` must be positive, got {self.huber_delta!r}.")
        if len(self.score_range) != 2 or not self.score_range[0] < self.score_range[1]:
            raise ValueError(f"`score_range` must be (low, high) with low < high, got {self.score_range!r}.")
        modalities = self.processing.get("modalities", MODALITIES)
        if not modalities or any(modality not in MODALITIES for modality in modalities):
            raise ValueError(
                f"`processing['modalities']` must be a non-empty subset of {MODALITIES}, got {modalities!r}."
            )

    @classmethod
    def register_thinker_model_type(cls, model_type: str) -> None:
        """Accepts Thinkers of `model_type` (called by `register_regressor` for each backbone's regressor class)."""
        if model_type not in cls.thinker_model_types:
            cls.thinker_model_types.append(model_type)

    def get_text_config(self, *args, **kwargs):
        return self.thinker_config.get_text_config(*args, **kwargs)


__all__ = ["OmniRegressorConfig"]
