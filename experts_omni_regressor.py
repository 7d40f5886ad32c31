"""Qwen3-Omni's MoE experts as per-expert `nn.Linear` modules, for `Qwen3OmniMoeForSentimentRegression` (one of the
files that travel to the Hub, beside `modeling_omni_regressor.py`).

transformers fuses each MoE layer's experts into two 3-D parameters, which bitsandbytes does not quantise and LoRA
reaches only as raw parameters. Here they are `experts.{i}.gate_proj/up_proj/down_proj` linears, the released
checkpoint's own key layout, so 4-bit NF4 and LoRA treat them like every other projection.
"""

import torch
from torch import nn
from torch.nn import functional as F
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.models.qwen3_omni_moe.modeling_qwen3_omni_moe import (
    Qwen3OmniMoeAudioEncoder,
    Qwen3OmniMoePreTrainedModel,
    Qwen3OmniMoePreTrainedModelForConditionalGeneration,
    Qwen3OmniMoeTextRMSNorm,
    Qwen3OmniMoeThinkerModel,
    Qwen3OmniMoeThinkerTextAttention,
    Qwen3OmniMoeThinkerTextDecoderLayer,
    Qwen3OmniMoeThinkerTextMLP,
    Qwen3OmniMoeThinkerTextModel,
    Qwen3OmniMoeThinkerTextRMSNorm,
    Qwen3OmniMoeThinkerTextRotaryEmbedding,
    Qwen3OmniMoeThinkerTextTopKRouter,
    Qwen3OmniMoeVisionEncoder,
)


class Qwen3OmniMoeExpertMLP(nn.Module):
    """One expert: `down_proj(act(gate_proj(x)) * up_proj(x))`, the layout of the released checkpoint's experts."""

    def __init__(self, hidden_size: int, intermediate_size: int, hidden_act: str):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)
        self.act_fn = ACT2FN[hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(hidden_states)) * self.up_proj(hidden_states))


class Qwen3OmniMoeLinearExperts(nn.ModuleList):
    """The experts of one MoE layer as `nn.Linear` modules (`experts.{i}.gate_proj/up_proj/down_proj`).

    transformers fuses the experts into two 3-D parameters per layer, which bitsandbytes does not quantise (it
    replaces `nn.Linear` modules only) and LoRA reaches only as raw parameters. Kept as linears, in the released
    checkpoint's own key layout (so no weight conversion runs at load, or is reversed at save), they are quantised to
    4-bit and take LoRA like every other projection. Same computation as transformers' eager experts loop.
    """

    def __init__(self, config):
        super().__init__(
            Qwen3OmniMoeExpertMLP(config.hidden_size, config.moe_intermediate_size, config.hidden_act)
            for _ in range(config.num_experts)
        )

    def forward(self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor):
        # hidden_states (tokens, hidden); top_k_index, top_k_weights (tokens, top_k)
        final_hidden_states = torch.zeros_like(hidden_states)
        with torch.no_grad():
            expert_mask = F.one_hot(top_k_index, num_classes=len(self)).permute(2, 1, 0)  # (experts, top_k, tokens)
            expert_hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero()
        for expert_index in expert_hit.flatten().tolist():
            top_k_position, token_index = torch.where(expert_mask[expert_index])
            expert_output = self[expert_index](hidden_states[token_index])
            expert_output = expert_output * top_k_weights[token_index, top_k_position, None]
            final_hidden_states.index_add_(0, token_index, expert_output.to(final_hidden_states.dtype))
        return final_hidden_states


class Qwen3OmniMoeLinearExpertsBlock(nn.Module):
    """transformers' sparse MoE block with `Qwen3OmniMoeLinearExperts`. Not a subclass of it: transformers'
    `_init_weights` recognises that class and initialises its fused `experts.gate_up_proj`. The router is transformers'
    own (`mlp.gate`, a plain parameter: never quantised, frozen in fine-tuning)."""

    def __init__(self, config):
        super().__init__()
        self.experts = Qwen3OmniMoeLinearExperts(config)
        self.gate = Qwen3OmniMoeThinkerTextTopKRouter(config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch_size, sequence_length, hidden_dim = hidden_states.shape
        hidden_states = hidden_states.view(-1, hidden_dim)  # (tokens, hidden)
        _, routing_weights, selected_experts = self.gate(hidden_states)  # (tokens, top_k) each
        return self.experts(hidden_states, selected_experts, routing_weights).reshape(batch_size, sequence_length, hidden_dim)


class Qwen3OmniMoeDecoderLayerWithLinearExperts(Qwen3OmniMoeThinkerTextDecoderLayer):
    """transformers' decoder layer (same forward) whose MoE block is built with linear experts from the start, so no
    fused (experts, 2 x intermediate, hidden) tensor is ever allocated."""

    def __init__(self, config, layer_idx):
        GradientCheckpointingLayer.__init__(self)
        self.self_attn = Qwen3OmniMoeThinkerTextAttention(config, layer_idx)
        sparse = layer_idx not in config.mlp_only_layers and config.num_experts > 0
        if sparse and (layer_idx + 1) % config.decoder_sparse_step == 0:
            self.mlp = Qwen3OmniMoeLinearExpertsBlock(config)
        else:
            self.mlp = Qwen3OmniMoeThinkerTextMLP(config, intermediate_size=config.intermediate_size)
        self.input_layernorm = Qwen3OmniMoeThinkerTextRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = Qwen3OmniMoeThinkerTextRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.hidden_size = config.hidden_size


def _init_router(module, std: float):
    """What transformers' `_init_weights` no longer reaches once the block is ours: the router."""
    if isinstance(module, Qwen3OmniMoeThinkerTextTopKRouter):
        nn.init.normal_(module.weight, mean=0.0, std=std)


class Qwen3OmniMoeThinkerTextModelWithLinearExperts(Qwen3OmniMoeThinkerTextModel):
    """transformers' Qwen3-Omni language model with `Qwen3OmniMoeDecoderLayerWithLinearExperts` layers.

    Defined here (custom code), so transformers applies no fused-expert weight conversion to it at load.
    """

    _no_split_modules = ["Qwen3OmniMoeDecoderLayerWithLinearExperts"]

    def __init__(self, config):
        Qwen3OmniMoePreTrainedModel.__init__(self, config)
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.layers = nn.ModuleList(
            [Qwen3OmniMoeDecoderLayerWithLinearExperts(config, index) for index in range(config.num_hidden_layers)]
        )
        self.norm = Qwen3OmniMoeTextRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = Qwen3OmniMoeThinkerTextRotaryEmbedding(config)
        self.gradient_checkpointing = False
        self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        _init_router(module, self.config.initializer_range)


class Qwen3OmniMoeThinkerModelWithLinearExperts(Qwen3OmniMoeThinkerModel):
    """transformers' Qwen3-Omni Thinker (audio tower, vision tower, language model; no LM head) with linear experts.
    Forward, rope index, placeholder masks and DeepStack are inherited unchanged."""

    _no_split_modules = [
        "Qwen3OmniMoeAudioEncoder", "Qwen3OmniMoeVisionEncoder", "Qwen3OmniMoeDecoderLayerWithLinearExperts",
    ]

    def __init__(self, config):
        Qwen3OmniMoePreTrainedModelForConditionalGeneration.__init__(self, config)
        self.audio_tower = Qwen3OmniMoeAudioEncoder._from_config(config.audio_config)
        self.visual = Qwen3OmniMoeVisionEncoder._from_config(config.vision_config)
        self.language_model = Qwen3OmniMoeThinkerTextModelWithLinearExperts._from_config(config.text_config)
        self.spatial_merge_size = config.vision_config.spatial_merge_size
        self.rope_deltas = None
        self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        _init_router(module, self.config.get_text_config().initializer_range)
