"""Discriminative sentiment readout on the Qwen2.5-Omni Thinker (one of the two files that travel to the Hub)."""

import os
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel
from transformers.models.qwen2_5_omni.configuration_qwen2_5_omni import Qwen2_5OmniThinkerConfig
from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniThinkerModel
from transformers.utils import ModelOutput

try:  # inside a Hub folder (transformers' dynamic modules)
    from .configuration_omni_regressor import OmniRegressorConfig
except ImportError:  # installed as a top-level module of this package
    from configuration_omni_regressor import OmniRegressorConfig


# Original Qwen2.5-Omni checkpoints hold the Thinker's language model as `thinker.model.*` (Thinker-only checkpoints:
# `thinker.model.*` when written by transformers 5, `model.*` in older copies) beside `thinker.audio_tower.*` and
# `thinker.visual.*`. This class keeps transformers' own `Qwen2_5OmniThinkerModel` as `thinker`, whose language model
# is `thinker.language_model`, and saves its weights back in the original layout (transformers reverses the load-time
# mapping on save). So the one mapping below is used for every load: an original checkpoint, a Thinker-only one and
# a folder written by `save_pretrained`, in this process or a fresh one.
CHECKPOINT_KEY_MAPPING = {
    r"^thinker\.model\.": "thinker.language_model.",
    r"^model\.": "thinker.language_model.",
    r"^audio_tower\.": "thinker.audio_tower.",
    r"^visual\.": "thinker.visual.",
}


@dataclass
class SentimentRegressionOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): regression loss on normalised labels.
        logits (`torch.FloatTensor` of shape `(batch,)`): predicted scores in label units.
        pooled_hidden_state (`torch.FloatTensor` of shape `(batch, hidden)`, *optional*): final-layer hidden state of
            the last non-padding token, returned when `output_pooled_hidden_state=True`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    pooled_hidden_state: torch.FloatTensor | None = None


class OmniRegressionHead(nn.Module):
    """`Linear(H, h) -> LayerNorm -> ReLU -> Dropout -> Linear(h, 1)`: predicts the normalised score."""

    def __init__(self, hidden_size: int, head_hidden_size: int, dropout: float):
        super().__init__()
        self.dense = nn.Linear(hidden_size, head_hidden_size)
        self.norm = nn.LayerNorm(head_hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(head_hidden_size, 1)

    def forward(self, pooled_hidden_state: torch.Tensor) -> torch.Tensor:
        hidden = self.dropout(F.relu(self.norm(self.dense(pooled_hidden_state))))  # (batch, head_hidden)
        return self.out_proj(hidden).squeeze(-1)  # (batch,)


class Qwen2_5OmniForSentimentRegression(PreTrainedModel):
    config_class = OmniRegressorConfig
    config: OmniRegressorConfig
    base_model_prefix = "thinker"
    main_input_name = "input_ids"
    input_modalities = ("image", "video", "audio", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["Qwen2_5OmniDecoderLayer", "Qwen2_5OmniVisionBlock", "Qwen2_5OmniAudioEncoderLayer"]
    _skip_keys_device_placement = ["past_key_values"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_attention_backend = True
    # The LM head, the talker and token2wav of an original checkpoint have no place in a discriminative readout.
    _keys_to_ignore_on_load_unexpected = [r"^thinker\.lm_head\.", r"^lm_head\.", r"^talker\.", r"^token2wav\."]

    def __init__(self, config: OmniRegressorConfig):
        super().__init__(config)
        self.thinker = Qwen2_5OmniThinkerModel._from_config(config.thinker_config)
        hidden_size = config.thinker_config.text_config.hidden_size
        self.head = OmniRegressionHead(hidden_size, config.head_hidden_size, config.head_dropout)
        self.post_init()

    def get_input_embeddings(self):
        return self.thinker.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.thinker.set_input_embeddings(value)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, **kwargs):
        """
        Loads a folder saved by this class, an original Qwen2.5-Omni checkpoint (`model_type: qwen2_5_omni`) or a
        Thinker-only checkpoint (`model_type: qwen2_5_omni_thinker`). For the latter two the readout settings
        (`head_hidden_size`, `loss_type`, ...) may be passed as keyword arguments and the head is freshly initialised.
        """
        key_mapping = kwargs.pop("key_mapping", None)
        if config is None or isinstance(config, (str, os.PathLike)):
            config_source = config if config is not None else pretrained_model_name_or_path
            hub_kwargs = {
                name: kwargs[name]
                for name in ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")
                if name in kwargs
            }
            config_dict, _ = PretrainedConfig.get_config_dict(config_source, **hub_kwargs)
            model_type = config_dict.get("model_type")
            if model_type in ("qwen2_5_omni", "qwen2_5_omni_thinker"):
                readout_kwargs = {
                    name: kwargs.pop(name)
                    for name in list(kwargs)
                    if name in OmniRegressorConfig.__dataclass_fields__ and name != "thinker_config"
                }
                if model_type == "qwen2_5_omni":
                    thinker_config = AutoConfig.from_pretrained(config_source, **hub_kwargs).thinker_config
                else:
                    thinker_config = Qwen2_5OmniThinkerConfig.from_pretrained(config_source, **hub_kwargs)
                config = OmniRegressorConfig(
                    thinker_config=thinker_config,
                    # A local folder is kept as an absolute path, so it still resolves from another directory.
                    base_model_name_or_path=(
                        os.path.abspath(pretrained_model_name_or_path)
                        if os.path.isdir(pretrained_model_name_or_path)
                        else str(pretrained_model_name_or_path)
                    ),
                    pad_token_id=thinker_config.text_config.pad_token_id,
                    **readout_kwargs,
                )
        return super().from_pretrained(
            pretrained_model_name_or_path,
            *model_args,
            config=config,
            key_mapping=key_mapping if key_mapping is not None else CHECKPOINT_KEY_MAPPING,
            **kwargs,
        )

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Also maps `AutoModelForSequenceClassification` to this class (`register_for_auto_class` keeps one)."""
        auto_map = dict(getattr(self.config, "auto_map", None) or {})
        auto_map["AutoModelForSequenceClassification"] = f"modeling_omni_regressor.{type(self).__name__}"
        self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)

    def pool_last_non_padding(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Final hidden state of the last position whose attention mask is 1, for left or right padding."""
        batch_size, seq_len = hidden_states.shape[:2]
        if attention_mask is None:
            last_position = torch.full((batch_size,), seq_len - 1, device=hidden_states.device)
        else:
            positions = torch.arange(seq_len, device=hidden_states.device)  # (seq,)
            last_position = (positions * attention_mask.to(hidden_states.device)).argmax(-1)  # (batch,)
        batch_index = torch.arange(batch_size, device=hidden_states.device)
        return hidden_states[batch_index, last_position]  # (batch, hidden)

    def compute_loss(self, normalised_predictions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = (labels.to(normalised_predictions.dtype) - self.config.label_mean) / self.config.label_std
        if self.config.loss_type == "l1":
            return F.l1_loss(normalised_predictions.float(), targets.float())
        if self.config.loss_type == "mse":
            return F.mse_loss(normalised_predictions.float(), targets.float())
        return F.huber_loss(normalised_predictions.float(), targets.float(), delta=self.config.huber_delta)

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
        Takes exactly what `Qwen2_5OmniProcessor` returns, plus:

        labels (`torch.FloatTensor` of shape `(batch,)`, *optional*):
            Scores in label units; the loss is computed on `(labels - label_mean) / label_std`.
        use_audio_in_video (`bool`, *optional*):
            Whether the processor interleaved each video's audio track with its frames. Defaults to
            `config.use_audio_in_video` when the batch holds both video and audio, else `False`.
        output_pooled_hidden_state (`bool`, *optional*, defaults to `False`):
            Also return the pooled final-layer hidden state.
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
        hidden_states = backbone_outputs.last_hidden_state  # (batch, seq, hidden)
        pooled_hidden_state = self.pool_last_non_padding(hidden_states, attention_mask)  # (batch, hidden)
        normalised_predictions = self.head(pooled_hidden_state.to(self.head.dense.weight.dtype))  # (batch,)

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


OmniRegressorConfig.register_for_auto_class("AutoConfig")
Qwen2_5OmniForSentimentRegression.register_for_auto_class("AutoModel")

__all__ = ["Qwen2_5OmniForSentimentRegression", "SentimentRegressionOutput", "OmniRegressionHead"]
