"""docs/extending.md, proved: a new backbone is one spec (what would be `omni_regressor/backbones/<name>.py`) plus its
regressor class, and the public commands train it with nothing else changed."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import pytest
from transformers import AutoConfig, Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

import modeling_omni_regressor
from configuration_omni_regressor import OmniRegressorConfig
from modeling_omni_regressor import Qwen2_5OmniForSentimentRegression, register_regressor
from omni_regressor import backbones
from omni_regressor.backbones import QWEN2_5_OMNI, register_backbone
from omni_regressor.cli import main as cli_main

from conftest import training_flags


# --- what a contributor writes: the backbone's transformers classes (here a renamed Qwen2.5-Omni Thinker, standing
# for a new family), its regressor class, and its spec ---------------------------------------------------------------
class ToyOmniThinkerConfig(Qwen2_5OmniThinkerConfig):
    model_type = "toy_omni_thinker"


class ToyOmniThinkerForConditionalGeneration(Qwen2_5OmniThinkerForConditionalGeneration):
    config_class = ToyOmniThinkerConfig


class ToyOmniForSentimentRegression(Qwen2_5OmniForSentimentRegression):
    thinker_model_type = "toy_omni_thinker"
    original_model_types = {"toy_omni_thinker": None}  # its checkpoints are Thinker-only
    # transformers saves a Thinker of an unknown model type in its module layout (no conversion of its own).
    checkpoint_key_mapping = {r"^model\.": "thinker.", r"^lm_head\.": "lm_head."}


TOY_OMNI = dataclasses.replace(
    QWEN2_5_OMNI,
    name="toy-omni",
    original_model_type="toy_omni",
    thinker_model_type="toy_omni_thinker",
    regressor_class=ToyOmniForSentimentRegression,
    generative_class=ToyOmniThinkerForConditionalGeneration,
    architectures={"tiny": QWEN2_5_OMNI.architectures["tiny"]},
    display_title="Toy-Omni",
    aliases=("toy_omni",),
)


@pytest.fixture
def toy_backbone():
    """Registers the toy backbone for one test, then restores every registry as it was."""
    registries = [backbones.BACKBONES, backbones.ARCHITECTURES, modeling_omni_regressor.REGRESSOR_CLASSES,
                  modeling_omni_regressor.ORIGINAL_MODEL_TYPES]
    saved = [dict(registry) for registry in registries]
    saved_types = list(OmniRegressorConfig.thinker_model_types)
    AutoConfig.register(ToyOmniThinkerConfig.model_type, ToyOmniThinkerConfig, exist_ok=True)
    register_regressor(ToyOmniForSentimentRegression)
    register_backbone(TOY_OMNI)
    yield TOY_OMNI
    for registry, content in zip(registries, saved):
        registry.clear()
        registry.update(content)
    OmniRegressorConfig.thinker_model_types[:] = saved_types


def test_a_registered_backbone_is_found_by_name_alias_arch_and_model_type(toy_backbone):
    assert backbones.get_backbone("toy-omni") is backbones.get_backbone("toy_omni") is toy_backbone
    assert backbones.architecture("toy-omni-tiny") == (toy_backbone, "tiny")
    assert backbones.backbone_for_model_type("toy_omni_thinker") is toy_backbone
    assert modeling_omni_regressor.REGRESSOR_CLASSES["toy_omni_thinker"] is ToyOmniForSentimentRegression


def test_a_new_backbone_trains_through_the_public_commands(toy_backbone, demo_dataset_dir, tmp_path, capsys):
    from omni_regressor.tiny_backbone import write_random_thinker

    checkpoint = write_random_thinker("toy-omni-tiny", tmp_path / "toy-omni", dtype=None)
    assert json.loads((checkpoint / "config.json").read_text())["model_type"] == "toy_omni_thinker"
    output_dir = tmp_path / "run"
    status = cli_main(["train", *training_flags(checkpoint, demo_dataset_dir, output_dir, "--num_train_epochs", "1",
                                                "--results_dir", "none")])
    assert status == 0, capsys.readouterr().err[-3000:]
    summary = json.loads((output_dir / "training_summary.json").read_text())
    assert summary["backbone"] == "toy-omni" and np.isfinite(summary["test_metrics"]["MAE"])
    exported = json.loads((Path(summary["export_dir"]) / "config.json").read_text())
    assert exported["thinker_config"]["model_type"] == "toy_omni_thinker"
    assert exported["auto_map"]["AutoModel"].endswith("ToyOmniForSentimentRegression")


class MaxPooling(torch.nn.Module):
    """A contributor's pooling: the element-wise maximum over the non-padding positions."""

    def __init__(self, hidden_size: int):
        super().__init__()

    def forward(self, hidden_states, attention_mask):
        if attention_mask is not None:
            padding = attention_mask.to(hidden_states.device).unsqueeze(-1) == 0  # (batch, seq, 1)
            hidden_states = hidden_states.masked_fill(padding, torch.finfo(hidden_states.dtype).min)
        return hidden_states.max(dim=1).values  # (batch, hidden)


def test_a_new_pooling_is_one_entry_in_the_pooler_table(tiny_backbone_dir, demo_dataset_dir, tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.setitem(modeling_omni_regressor.POOLERS, "max", MaxPooling)
    output_dir = tmp_path / "run"
    status = cli_main(["train", *training_flags(tiny_backbone_dir, demo_dataset_dir, output_dir, "--num_train_epochs", "1",
                                                "--pooling", "max", "--results_dir", "none")])
    assert status == 0, capsys.readouterr().err[-3000:]
    summary = json.loads((output_dir / "training_summary.json").read_text())
    assert np.isfinite(summary["test_metrics"]["MAE"])
    assert json.loads((Path(summary["export_dir"]) / "config.json").read_text())["pooling"] == "max"
