"""omni-regressor: continuous multimodal sentiment regression on the Qwen2.5-Omni Thinker."""

__version__ = "0.1.0"
