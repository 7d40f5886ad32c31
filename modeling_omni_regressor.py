"""Discriminative sentiment readout on the Thinker of Qwen2.5-Omni and Qwen3-Omni (one of the files that travel to the
Hub).

    Thinker (audio tower + vision tower + language model, no LM head; only its first `readout_layer` decoder layers
    when that is set, then the final RMSNorm)
        -> pooled over the sequence (batch, hidden): `last` non-padding token, masked `mean`, or learned `attention`
        -> head: Linear(hidden, h) -> LayerNorm -> ReLU -> Dropout -> Linear(h, 1)   (`head_type="mlp"`)
                 or Linear(hidden, 1)                                               (`head_type="linear"`)
        -> score in label units (batch,)

One class per backbone, as in transformers: `Qwen2_5OmniForSentimentRegression` holds transformers'
`Qwen2_5OmniThinkerModel`; `Qwen3OmniMoeForSentimentRegression` holds `Qwen3OmniMoeThinkerModel` with its MoE experts
as per-expert `nn.Linear` modules (`experts_omni_regressor.py`, beside this file). Both share pooling, head, loss and checkpoint
loading through `OmniSentimentRegressionPreTrainedModel`.
"""

import contextvars
import os
import re
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniThinkerModel
from transformers.utils import ModelOutput, logging

try:  # inside a Hub folder (transformers' dynamic modules)
    from .configuration_omni_regressor import OmniRegressorConfig
    from .experts_omni_regressor import Qwen3OmniMoeLinearExperts, Qwen3OmniMoeThinkerModelWithLinearExperts  # noqa: F401
except ImportError:  # installed as a top-level module of the omni-regressor package
    from configuration_omni_regressor import OmniRegressorConfig
    from experts_omni_regressor import Qwen3OmniMoeLinearExperts, Qwen3OmniMoeThinkerModelWithLinearExperts  # noqa: F401


logger = logging.get_logger(__name__)
# The base checkpoint an adapter folder stands for, while `from_pretrained` loads it (its head comes from peft).
_LOADING_ADAPTER_BASE = contextvars.ContextVar("loading_adapter_base", default=None)

# Original Qwen2.5-Omni / Qwen3-Omni checkpoints hold the Thinker's language model as `thinker.model.*` beside
# `thinker.audio_tower.*` and `thinker.visual.*` (Thinker-only checkpoints: `thinker.model.*` when written by
# transformers 5, `model.*` in older copies). These classes keep the backbone as `thinker` with its language model at
# `thinker.language_model`, and transformers reverses the load-time mapping on save, so the one mapping below serves
# every load: an original checkpoint, a Thinker-only one and a folder written by `save_pretrained`.
CHECKPOINT_KEY_MAPPING = {
    r"^thinker\.model\.": "thinker.language_model.",
    r"^model\.": "thinker.language_model.",
    r"^audio_tower\.": "thinker.audio_tower.",
    r"^visual\.": "thinker.visual.",
}
# Filled by `register_regressor` from each backbone's class (bottom of this file):
# `model_type` of an original checkpoint -> (its Thinker's model type, the key of `config.json` holding it or None),
# and Thinker `model_type` -> the regressor class that reads it.
ORIGINAL_MODEL_TYPES: dict[str, tuple[str, str | None]] = {}
REGRESSOR_CLASSES: dict[str, type] = {}


# How an exported config names a base that was a local folder on the training machine (no path travels).
LOCAL_BASE_PREFIX = "local:"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _has_weights(model_name_or_path, hub_kwargs) -> bool:
    """Whether a folder or Hub repository holds model weights (an adapter folder holds only a config)."""
    if os.path.isdir(model_name_or_path):
        subfolder = hub_kwargs.get("subfolder") or ""
        return any(os.path.isfile(os.path.join(model_name_or_path, subfolder, name)) for name in WEIGHT_FILES)
    from transformers.utils import cached_file

    lookup = {key: value for key, value in hub_kwargs.items() if key != "force_download"}
    return any(
        cached_file(model_name_or_path, name, _raise_exceptions_for_missing_entries=False, **lookup) is not None
        for name in WEIGHT_FILES
    )


@dataclass
class SentimentRegressionOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): regression loss on normalised labels.
        logits (`torch.FloatTensor` of shape `(batch,)`): predicted scores in label units.
        pooled_hidden_state (`torch.FloatTensor` of shape `(batch, hidden)`, *optional*): the readout layer's hidden
            states pooled as `config.pooling` says, returned when `output_pooled_hidden_state=True`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    pooled_hidden_state: torch.FloatTensor | None = None


class LastTokenPooling(nn.Module):
    """The hidden state of the last position whose attention mask is 1 (left or right padding)."""

    def __init__(self, hidden_size: int | None = None):  # every pooler is built as `POOLERS[name](hidden_size)`
        super().__init__()

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        batch_size, seq_len = hidden_states.shape[:2]
        if attention_mask is None:
            last_position = torch.full((batch_size,), seq_len - 1, device=hidden_states.device)
        else:
            positions = torch.arange(seq_len, device=hidden_states.device)  # (seq,)
            last_position = (positions * attention_mask.to(hidden_states.device)).argmax(-1)  # (batch,)
        batch_index = torch.arange(batch_size, device=hidden_states.device)
        return hidden_states[batch_index, last_position]  # (batch, hidden)


class MeanPooling(nn.Module):
    """The mean of the hidden states over the positions whose attention mask is 1 (the prompt's tokens)."""

    def __init__(self, hidden_size: int | None = None):
        super().__init__()

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if attention_mask is None:
            return hidden_states.mean(dim=1)  # (batch, hidden)
        mask = attention_mask.to(hidden_states.device, hidden_states.dtype).unsqueeze(-1)  # (batch, seq, 1)
        return (hidden_states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)  # (batch, hidden)


class AttentionPooling(nn.Module):
    """A learned query attends over the non-padding positions: `softmax(h q / sqrt(H)) h`. The query starts at zero,
    that is at the masked mean."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        query = self.query.to(hidden_states.dtype)
        scores = hidden_states @ query / hidden_states.shape[-1] ** 0.5  # (batch, seq)
        if attention_mask is not None:
            padding = attention_mask.to(hidden_states.device) == 0
            scores = scores.float().masked_fill(padding, torch.finfo(torch.float32).min)
        weights = scores.float().softmax(dim=-1).to(hidden_states.dtype)  # (batch, seq)
        return (weights.unsqueeze(-1) * hidden_states).sum(dim=1)  # (batch, hidden)


# `config.pooling` -> the module that turns (batch, seq, hidden) into (batch, hidden). It lives at `head.pooler`, so
# a learned pooling's weights (`head.pooler.query`) travel with the head: trained in full, saved with the adapter.
# A new pooling is one entry here: `name: module class`, built as `cls(hidden_size)`, with forward
# `(hidden_states (batch, seq, hidden), attention_mask (batch, seq) or None) -> (batch, hidden)`.
POOLERS = {"last": LastTokenPooling, "mean": MeanPooling, "attention": AttentionPooling}
OmniRegressorConfig.poolings = POOLERS  # the config accepts exactly the poolings of this table


class OmniRegressionHead(nn.Module):
    """Pooling (`pooler`), then `Linear(H, h) -> LayerNorm -> ReLU -> Dropout -> Linear(h, 1)` (`head_type="mlp"`) or
    `Linear(H, 1)` (`head_type="linear"`, e.g. a ridge probe's weights): predicts the normalised score."""

    def __init__(self, hidden_size: int, head_hidden_size: int, dropout: float, head_type: str = "mlp",
                 pooling: str = "last"):
        super().__init__()
        self.pooler = POOLERS[pooling](hidden_size)
        self.head_type = head_type
        if head_type == "linear":
            self.out_proj = nn.Linear(hidden_size, 1)
            return
        self.dense = nn.Linear(hidden_size, head_hidden_size)
        self.norm = nn.LayerNorm(head_hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(head_hidden_size, 1)

    def forward(self, pooled_hidden_state: torch.Tensor) -> torch.Tensor:
        if self.head_type == "linear":
            return self.out_proj(pooled_hidden_state).squeeze(-1)  # (batch,)
        hidden = self.dropout(F.relu(self.norm(self.dense(pooled_hidden_state))))  # (batch, head_hidden)
        return self.out_proj(hidden).squeeze(-1)  # (batch,)


class OmniSentimentRegressionPreTrainedModel(PreTrainedModel):
    """Pooling, head, loss and checkpoint loading shared by the backbone classes below.

    A subclass names its backbone (`thinker_model_class`) and the Thinker `model_type` it takes.
    """

    config_class = OmniRegressorConfig
    config: OmniRegressorConfig
    base_model_prefix = "thinker"
    main_input_name = "input_ids"
    input_modalities = ("image", "video", "audio", "text")
    supports_gradient_checkpointing = True
    _skip_keys_device_placement = ["past_key_values"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_attention_backend = True
    # The LM head and the speech generator of an original checkpoint have no place in a discriminative readout.
    _keys_to_ignore_on_load_unexpected = [
        r"^thinker\.lm_head\.", r"^lm_head\.", r"^talker\.", r"^token2wav\.", r"^code2wav\.",
    ]
    thinker_model_class: type[PreTrainedModel] = None
    thinker_model_type: str = None
    # `model_type` of the original checkpoints this class loads -> the key of their config holding the Thinker's
    # config (None: a Thinker-only checkpoint).
    original_model_types: dict[str, str | None] = {}
    # Checkpoint key -> this class's key (regexes), for every load; transformers reverses it on save.
    checkpoint_key_mapping: dict[str, str] = CHECKPOINT_KEY_MAPPING

    def __init__(self, config: OmniRegressorConfig):
        super().__init__(config)
        if config.thinker_config.model_type != self.thinker_model_type:
            raise ValueError(
                f"{type(self).__name__} reads a `{self.thinker_model_type}` Thinker, got "
                f"`{config.thinker_config.model_type}`: use {regressor_class_name(config.thinker_config.model_type)}."
            )
        self.thinker = self.thinker_model_class._from_config(config.thinker_config)
        if config.readout_layer != -1:  # the later decoder layers are not built, loaded or run
            language_model = self.thinker.language_model
            language_model.layers = language_model.layers[: config.readout_layer]
        hidden_size = config.thinker_config.text_config.hidden_size
        self.head = OmniRegressionHead(
            hidden_size, config.head_hidden_size, config.head_dropout, config.head_type, config.pooling
        )
        self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, AttentionPooling):
            init.zeros_(module.query)

    @property
    def is_gradient_checkpointing(self) -> bool:
        """peft still reads this name, which transformers 5 deprecated (with a warning) for the one returned here."""
        return self.is_activation_checkpointing

    def get_input_embeddings(self):
        return self.thinker.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.thinker.set_input_embeddings(value)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, **kwargs):
        """
        Loads
        - a folder saved by this class (weights and config);
        - a regressor config without weights (an adapter folder): the base checkpoint it names
          (`base_model_name_or_path`) with its readout settings, the head newly initialised for peft to restore;
        - an original checkpoint of this class's backbone (`qwen2_5_omni` / `qwen3_omni_moe`, full or Thinker-only):
          readout settings (`head_hidden_size`, `loss_type`, `processing`, ...) may be passed as keyword arguments.
        """
        requested_mapping = kwargs.pop("key_mapping", None)
        key_mapping = requested_mapping if requested_mapping is not None else cls.checkpoint_key_mapping
        hub_kwargs = {
            name: kwargs[name]
            for name in ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")
            if name in kwargs
        }
        if config is None or isinstance(config, (str, os.PathLike)):
            config_source = config if config is not None else pretrained_model_name_or_path
            config_dict, _ = PretrainedConfig.get_config_dict(config_source, **hub_kwargs)
            model_type = config_dict.get("model_type")
            if model_type in ORIGINAL_MODEL_TYPES:
                config = cls._config_for_original(pretrained_model_name_or_path, config_source, model_type, hub_kwargs, kwargs)
            elif model_type == OmniRegressorConfig.model_type:
                config = OmniRegressorConfig.from_pretrained(config_source, **hub_kwargs)
        # By `model_type`, not `isinstance`: with remote code, AutoModel's config class may come from another copy of
        # this folder's configuration module.
        is_regressor_config = getattr(config, "model_type", None) == OmniRegressorConfig.model_type
        backbone_class = REGRESSOR_CLASSES.get(config.thinker_config.model_type) if is_regressor_config else None
        if backbone_class is not None and not issubclass(cls, backbone_class):
            # A regressor folder names its backbone. `AutoModel` keeps one model class per config class in a process
            # (the first folder's), and folders with the same code share a config class, so a later folder of the
            # other backbone arrives here: it goes to its own class.
            return backbone_class.from_pretrained(
                pretrained_model_name_or_path, *model_args, config=config, key_mapping=requested_mapping, **kwargs
            )
        if is_regressor_config and not _has_weights(pretrained_model_name_or_path, hub_kwargs):
            if kwargs.get("base_model_name_or_path"):  # where the base is on this machine (a local base's folder)
                config.base_model_name_or_path = kwargs.pop("base_model_name_or_path")
            if not config.base_model_name_or_path:
                raise ValueError(f"{pretrained_model_name_or_path} holds no weights and names no base checkpoint.")
            if config.base_model_name_or_path.startswith(LOCAL_BASE_PREFIX):
                raise ValueError(
                    f"{pretrained_model_name_or_path} was trained on a local base checkpoint "
                    f"({config.base_model_name_or_path.removeprefix(LOCAL_BASE_PREFIX)!r}), not a Hub id: pass "
                    "`base_model_name_or_path=<its folder or Hub id>` or set it in this folder's config.json."
                )
            # An adapter folder is the *base* regressor for peft (its base's weights, this head size): peft's
            # `PeftModel.from_pretrained` / `AutoPeftModel...` then apply the adapter, so transformers must not.
            pretrained_model_name_or_path = config.base_model_name_or_path
            adapter_kwargs = dict(kwargs.pop("adapter_kwargs", None) or {})
            adapter_kwargs.pop("_adapter_model_path", None)
            kwargs["adapter_kwargs"] = adapter_kwargs
            token = _LOADING_ADAPTER_BASE.set(pretrained_model_name_or_path)
            try:
                return super().from_pretrained(
                    pretrained_model_name_or_path, *model_args, config=config, key_mapping=key_mapping, **kwargs
                )
            finally:
                _LOADING_ADAPTER_BASE.reset(token)
        return super().from_pretrained(
            pretrained_model_name_or_path, *model_args, config=config, key_mapping=key_mapping, **kwargs
        )

    @classmethod
    def _config_for_original(cls, path, config_source, model_type, hub_kwargs, kwargs) -> OmniRegressorConfig:
        """The regressor config around an original checkpoint's Thinker config; takes the readout settings out of
        `kwargs`."""
        thinker_model_type, thinker_key = ORIGINAL_MODEL_TYPES[model_type]
        if thinker_model_type != cls.thinker_model_type:
            raise ValueError(
                f"{path} is a `{model_type}` checkpoint: load it with {regressor_class_name(thinker_model_type)}, "
                f"not {cls.__name__}."
            )
        readout_kwargs = {
            name: kwargs.pop(name)
            for name in list(kwargs)
            if name in OmniRegressorConfig.__dataclass_fields__ and name != "thinker_config"
        }
        original_config = AutoConfig.from_pretrained(config_source, **hub_kwargs)
        thinker_config = getattr(original_config, thinker_key) if thinker_key else original_config
        return OmniRegressorConfig(
            thinker_config=thinker_config,
            # A local folder is kept as an absolute path, so it still resolves from another directory.
            base_model_name_or_path=os.path.abspath(path) if os.path.isdir(path) else str(path),
            pad_token_id=thinker_config.text_config.pad_token_id,
            **readout_kwargs,
        )

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Also maps `AutoModelForSequenceClassification` to this class (`register_for_auto_class` keeps one)."""
        auto_map = dict(getattr(self.config, "auto_map", None) or {})
        auto_map["AutoModelForSequenceClassification"] = f"modeling_omni_regressor.{type(self).__name__}"
        self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)

    def _adjust_missing_and_unexpected_keys(self, loading_info) -> None:
        """A checkpoint that holds the backbone but no head (an original checkpoint, or an adapter folder before peft
        restores its head) gets one line instead of a load report listing every head weight."""
        super()._adjust_missing_and_unexpected_keys(loading_info)
        if self.config.readout_layer != -1:  # the checkpoint's layers after the readout layer are not built
            later_layer = re.compile(r"language_model\.layers\.(\d+)\.")
            loading_info.unexpected_keys = {
                key for key in loading_info.unexpected_keys
                if not ((match := later_layer.search(key)) and int(match.group(1)) >= self.config.readout_layer)
            }
        head_keys = {name for name in self.state_dict() if name.startswith("head.")}
        if head_keys and loading_info.missing_keys == head_keys:
            loading_info.missing_keys = set()
            adapter_base = _LOADING_ADAPTER_BASE.get()
            if adapter_base is not None:  # expected: peft restores the trained head with the LoRA weights
                logger.info("%s: loaded the base weights of %s; peft restores the head and LoRA weights from the "
                            "adapter.", type(self).__name__, adapter_base)
                return
            logger.warning("%s: a new regression head was initialised (the checkpoint holds the backbone only).",
                           type(self).__name__)

    def pool_last_non_padding(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Hidden state of the last position whose attention mask is 1, for left or right padding."""
        return LastTokenPooling()(hidden_states, attention_mask)

    def compute_loss(self, normalised_predictions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = (labels.float() - self.config.label_mean) / self.config.label_std
        predictions = normalised_predictions.float()
        if self.config.loss_type == "l1":
            return F.l1_loss(predictions, targets)
        if self.config.loss_type == "mse":
            return F.mse_loss(predictions, targets)
        return F.huber_loss(predictions, targets, delta=self.config.huber_delta)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.FloatTensor | None = None,
        feature_attention_mask: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        video_second_per_grid: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        labels: torch.FloatTensor | None = None,
        use_audio_in_video: bool | None = None,
        output_pooled_hidden_state: bool = False,
        inputs_embeds: torch.FloatTensor | None = None,
        **kwargs,
    ) -> SentimentRegressionOutput:
        r"""
        Takes what the backbone's processor returns (`ClipEncoder.collate` in `processing_omni_regressor.py`), plus:

        labels (`torch.FloatTensor` of shape `(batch,)`, *optional*):
            Scores in label units; the loss is computed on `(labels - label_mean) / label_std`.
        use_audio_in_video (`bool`, *optional*):
            Whether the processor interleaved each video's audio track with its frames. Defaults to
            `config.use_audio_in_video` when the batch holds both video and audio, else `False`.
        output_pooled_hidden_state (`bool`, *optional*, defaults to `False`):
            Also return the pooled hidden state (of the readout layer, with the configured pooling).
        """
        if use_audio_in_video is None:
            use_audio_in_video = bool(
                self.config.use_audio_in_video and pixel_values_videos is not None and input_features is not None
            )
        backbone_outputs = self.thinker(
            input_ids=input_ids,
            attention_mask=attention_mask,
            input_features=input_features,
            feature_attention_mask=feature_attention_mask,
            pixel_values_videos=pixel_values_videos,
            video_grid_thw=video_grid_thw,
            video_second_per_grid=video_second_per_grid,
            pixel_values=pixel_values,
            image_grid_thw=image_grid_thw,
            inputs_embeds=inputs_embeds,
            use_audio_in_video=use_audio_in_video,
            use_cache=False,
            **kwargs,
        )
        hidden_states = backbone_outputs.last_hidden_state  # (batch, seq, hidden), after `readout_layer` layers
        pooled_hidden_state = self.head.pooler(hidden_states, attention_mask)  # (batch, hidden)
        normalised_predictions = self.head(pooled_hidden_state.to(self.head.out_proj.weight.dtype))  # (batch,)

        loss = None
        if labels is not None:
            loss = self.compute_loss(normalised_predictions, labels.to(normalised_predictions.device))

        scores = normalised_predictions.float() * self.config.label_std + self.config.label_mean  # (batch,)
        if self.config.clamp_predictions:
            scores = scores.clamp(*self.config.score_range)
        return SentimentRegressionOutput(
            loss=loss,
            logits=scores,
            pooled_hidden_state=pooled_hidden_state if output_pooled_hidden_state else None,
        )


class Qwen2_5OmniForSentimentRegression(OmniSentimentRegressionPreTrainedModel):
    """The regressor on the Thinker of Qwen2.5-Omni (3B, 7B): transformers' `Qwen2_5OmniThinkerModel`."""

    thinker_model_class = Qwen2_5OmniThinkerModel
    thinker_model_type = "qwen2_5_omni_thinker"
    original_model_types = {"qwen2_5_omni": "thinker_config", "qwen2_5_omni_thinker": None}
    _no_split_modules = ["Qwen2_5OmniDecoderLayer", "Qwen2_5OmniVisionBlock", "Qwen2_5OmniAudioEncoderLayer"]


class Qwen3OmniMoeForSentimentRegression(OmniSentimentRegressionPreTrainedModel):
    """The regressor on the Thinker of Qwen3-Omni (30B-A3B Instruct/Thinking), experts as linears (see above)."""

    thinker_model_class = Qwen3OmniMoeThinkerModelWithLinearExperts
    thinker_model_type = "qwen3_omni_moe_thinker"
    original_model_types = {"qwen3_omni_moe": "thinker_config", "qwen3_omni_moe_thinker": None}
    _no_split_modules = ["Qwen3OmniMoeAudioEncoder", "Qwen3OmniMoeVisionEncoder", "Qwen3OmniMoeDecoderLayerWithLinearExperts"]


def register_regressor(regressor_class):
    """Adds a backbone's regressor class to the tables above (and its Thinker `model_type` to the config's): a new
    backbone is its class here (or anywhere, registered like this) plus its spec in `omni_regressor/backbones/`."""
    REGRESSOR_CLASSES[regressor_class.thinker_model_type] = regressor_class
    for model_type, thinker_key in regressor_class.original_model_types.items():
        ORIGINAL_MODEL_TYPES[model_type] = (regressor_class.thinker_model_type, thinker_key)
    OmniRegressorConfig.register_thinker_model_type(regressor_class.thinker_model_type)
    return regressor_class


register_regressor(Qwen2_5OmniForSentimentRegression)
register_regressor(Qwen3OmniMoeForSentimentRegression)


def regressor_class_name(thinker_model_type: str) -> str:
    regressor_class = REGRESSOR_CLASSES.get(thinker_model_type)
    return regressor_class.__name__ if regressor_class else f"a regressor for `{thinker_model_type}` (none exists)"


OmniRegressorConfig.register_for_auto_class("AutoConfig")
Qwen2_5OmniForSentimentRegression.register_for_auto_class("AutoModel")
Qwen3OmniMoeForSentimentRegression.register_for_auto_class("AutoModel")

__all__ = [
    "Qwen2_5OmniForSentimentRegression",
    "Qwen3OmniMoeForSentimentRegression",
    "OmniSentimentRegressionPreTrainedModel",
    "SentimentRegressionOutput",
    "OmniRegressionHead",
    "POOLERS",
]
