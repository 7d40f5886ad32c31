"""The regression models on the real Qwen2.5-Omni and Qwen3-Omni Thinkers: readout, loss, loading, Hub export."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoProcessor, Qwen2_5OmniThinkerForConditionalGeneration

from configuration_omni_regressor import OmniRegressorConfig
from conftest import SMALL_PIXELS, TRANSCRIPTS, right_padded
from modeling_omni_regressor import Qwen2_5OmniForSentimentRegression, Qwen3OmniMoeForSentimentRegression
from omni_regressor.backbones import backbone_of
from omni_regressor.media import MediaCache
from processing_omni_regressor import ClipEncoder, ProcessingSettings

from omni_regressor.backbones import BACKBONES


@pytest.fixture(scope="module")
def regressor(tiny_backbone_dir):
    torch.manual_seed(0)
    return Qwen2_5OmniForSentimentRegression.from_pretrained(tiny_backbone_dir, head_hidden_size=16).eval()


@pytest.fixture(scope="module", params=list(BACKBONES))
def backbone_regressor_and_encoder(request, tiny_backbone_for):
    """(regressor, encoder) of each registered backbone, small frames."""
    backbone_dir = tiny_backbone_for(request.param)
    torch.manual_seed(0)
    model = backbone_of(backbone_dir).regressor_class.from_pretrained(backbone_dir, head_hidden_size=16).eval()
    encoder = ClipEncoder(AutoProcessor.from_pretrained(backbone_dir), ProcessingSettings(**SMALL_PIXELS), media_cache=MediaCache(None))
    return model, encoder


@pytest.fixture(scope="module")
def clip_encoder(tiny_processor):
    return ClipEncoder(tiny_processor, ProcessingSettings(**SMALL_PIXELS), media_cache=MediaCache(None))


@pytest.mark.parametrize("modalities", [("text",), ("text", "audio", "video")])
def test_logits_do_not_depend_on_batch_composition_or_padding_side(backbone_regressor_and_encoder, clip_paths, modalities):
    regressor, clip_encoder = backbone_regressor_and_encoder
    encoded = [
        clip_encoder.encode(text, clip_encoder.decode(path), modalities) for text, path in zip(TRANSCRIPTS, clip_paths)
    ]
    lengths = {clip["input_ids"].shape[1] for clip in encoded}
    assert len(lengths) == 3, "the clips must have mixed lengths for this test to mean anything"
    with torch.no_grad():
        alone = torch.cat([regressor(**clip_encoder.collate([clip])).logits for clip in encoded])
        left = regressor(**clip_encoder.collate(encoded)).logits
        right = regressor(**right_padded(clip_encoder.collate(encoded))).logits
        reordered = regressor(**clip_encoder.collate(encoded[::-1])).logits.flip(0)
    assert alone.shape == (3,)
    torch.testing.assert_close(left, alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(right, alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(reordered, alone, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(alone[0], alone[1]), "different clips should score differently"


def test_pooling_picks_the_last_non_padding_position_for_left_and_right_padding(regressor):
    hidden_states = torch.arange(2 * 5 * 3, dtype=torch.float).reshape(2, 5, 3)
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 1, 1]])
    torch.testing.assert_close(regressor.pool_last_non_padding(hidden_states, right), hidden_states[[0, 1], [2, 4]])
    torch.testing.assert_close(regressor.pool_last_non_padding(hidden_states, left), hidden_states[[0, 1], [4, 4]])


@pytest.mark.parametrize(
    "loss_type, expected",
    [
        # normalised errors: (logits - labels) / label_std
        ("l1", lambda error: error.abs().mean()),
        ("mse", lambda error: (error**2).mean()),
        ("huber", lambda error: torch.where(error.abs() < 0.5, 0.5 * error**2, 0.5 * (error.abs() - 0.25)).mean()),
    ],
)
def test_loss_matches_hand_computed_value_on_normalised_labels(tiny_backbone_dir, clip_encoder, loss_type, expected):
    torch.manual_seed(0)
    model = Qwen2_5OmniForSentimentRegression.from_pretrained(
        tiny_backbone_dir, head_hidden_size=16, loss_type=loss_type, huber_delta=0.5, label_mean=0.5, label_std=2.0
    ).eval()
    batch = clip_encoder.collate([clip_encoder.encode(text, None, ("text",)) for text in TRANSCRIPTS])
    labels = torch.tensor([2.5, -3.0, 0.0])
    with torch.no_grad():
        output = model(**batch, labels=labels)
    normalised_error = (output.logits - labels) / 2.0
    torch.testing.assert_close(output.loss, expected(normalised_error), atol=1e-5, rtol=1e-5)


def test_predictions_are_returned_in_label_units_and_clamped_only_when_asked(tiny_backbone_dir, clip_encoder):
    batch = clip_encoder.collate([clip_encoder.encode(text, None, ("text",)) for text in TRANSCRIPTS])
    torch.manual_seed(0)
    base = Qwen2_5OmniForSentimentRegression.from_pretrained(tiny_backbone_dir, head_hidden_size=16).eval()
    with torch.no_grad():
        normalised = base(**batch).logits
        base.config.label_mean, base.config.label_std = 1.0, 200.0
        scaled = base(**batch).logits
        base.config.clamp_predictions = True
        clamped = base(**batch).logits
    torch.testing.assert_close(scaled, normalised * 200.0 + 1.0)
    assert scaled.abs().max() > 3.0, "the scaled scores must leave the range for the clamp to be tested"
    torch.testing.assert_close(clamped, scaled.clamp(-3.0, 3.0))


def assert_thinker_equals_checkpoint(model, checkpoint_file):
    """Every Thinker tensor of an original-layout checkpoint is in the model, unchanged (experts included)."""
    state_dict = model.state_dict()
    checked = 0
    with safe_open(checkpoint_file, "pt") as source:
        for key in source.keys():
            name = key.removeprefix("thinker.")
            if name.startswith("lm_head") or not (key.startswith("thinker.") or name.split(".")[0] in ("model", "audio_tower", "visual")):
                continue
            target = "thinker." + name.replace("model.", "language_model.", 1) if name.startswith("model.") else "thinker." + name
            assert torch.equal(state_dict[target], source.get_tensor(key)), key
            checked += 1
    thinker_tensors = [key for key in state_dict if key.startswith("thinker.")]
    assert checked == len(thinker_tensors), "every Thinker tensor of the model must come from the checkpoint"


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_original_checkpoint_loads_every_thinker_tensor_and_says_the_head_is_new(backbone, tiny_backbone_for, caplog):
    backbone_dir = tiny_backbone_for(backbone)
    spec = backbone_of(backbone_dir)
    config = json.loads((backbone_dir / "config.json").read_text())
    assert config["model_type"] == spec.original_model_type
    with safe_open(backbone_dir / "model.safetensors", "pt") as source:
        keys = list(source.keys())
    assert {"thinker", *spec.speech_modules} <= {key.split(".")[0] for key in keys}
    assert any(key.startswith("thinker.model.") for key in keys)
    with caplog.at_level("WARNING"):
        model, info = spec.regressor_class.from_pretrained(
            backbone_dir, head_hidden_size=16, head_dropout=0.1, output_loading_info=True
        )
    assert_thinker_equals_checkpoint(model, backbone_dir / "model.safetensors")
    # The new head is one line, not a load report listing its weights; nothing else is missing or unexpected.
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set() and info["mismatched_keys"] == set()
    assert "a new regression head was initialised" in caplog.text and "LOAD REPORT" not in caplog.text
    assert model.config.head_hidden_size == 16 and model.config.head_dropout == 0.1
    assert model.head.dense.weight.shape == (16, 64)
    assert 0.0 < model.head.dense.weight.std() < 0.1 and torch.all(model.head.norm.weight == 1)


def test_qwen3_experts_load_as_per_expert_linears_in_the_released_key_layout(tiny_qwen3_backbone_dir):
    with safe_open(tiny_qwen3_backbone_dir / "model.safetensors", "pt") as source:
        expert_keys = [key for key in source.keys() if key.startswith("thinker.model.layers.0.mlp.experts.")]
    # The released layout: one tensor per expert and projection (transformers fuses them; this class does not).
    assert "thinker.model.layers.0.mlp.experts.3.down_proj.weight" in expert_keys and len(expert_keys) == 4 * 3
    model = Qwen3OmniMoeForSentimentRegression.from_pretrained(tiny_qwen3_backbone_dir)
    experts = model.thinker.language_model.layers[0].mlp.experts
    assert len(experts) == 4 and all(isinstance(expert.gate_proj, torch.nn.Linear) for expert in experts)


def test_a_checkpoint_of_the_other_backbone_is_refused_naming_the_right_class(tiny_qwen3_backbone_dir):
    with pytest.raises(ValueError, match="Qwen3OmniMoeForSentimentRegression"):
        Qwen2_5OmniForSentimentRegression.from_pretrained(tiny_qwen3_backbone_dir)


def test_thinker_only_checkpoints_load_every_thinker_tensor(tiny_backbone_dir, tmp_path):
    thinker = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(tiny_backbone_dir)
    thinker.save_pretrained(tmp_path / "v5")
    # Older Thinker-only copies keep the Thinker's own names without the `thinker.` prefix.
    (tmp_path / "unprefixed").mkdir()
    with safe_open(tmp_path / "v5" / "model.safetensors", "pt") as source:
        unprefixed = {key.removeprefix("thinker."): source.get_tensor(key) for key in source.keys()}
    save_file(unprefixed, tmp_path / "unprefixed" / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "unprefixed" / "config.json").write_text((tmp_path / "v5" / "config.json").read_text())
    for folder in ("v5", "unprefixed"):
        model, info = Qwen2_5OmniForSentimentRegression.from_pretrained(tmp_path / folder, output_loading_info=True)
        assert model.config.thinker_config.model_type == "qwen2_5_omni_thinker"
        assert_thinker_equals_checkpoint(model, tmp_path / folder / "model.safetensors")
        assert info["missing_keys"] == set() and info["unexpected_keys"] == set()


FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys, torch

    class BlockPackage(importlib.abc.MetaPathFinder):
        # The saved folder must be self-sufficient: the package that wrote it is not importable here.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"configuration_omni_regressor", "modeling_omni_regressor", "processing_omni_regressor",
                                      "pipeline_omni_regressor", "omni_regressor"}:
                raise ImportError(f"blocked: {name}")

    sys.meta_path.insert(0, BlockPackage())
    sys.path = [p for p in sys.path if p not in ("", ".")]
    from transformers import AutoModel, AutoModelForSequenceClassification

    folder, batch_file = sys.argv[1], sys.argv[2]
    batch = torch.load(batch_file)
    results = {}
    for auto_class in (AutoModel, AutoModelForSequenceClassification):
        model = auto_class.from_pretrained(folder, trust_remote_code=True).eval()
        with torch.no_grad():
            results[auto_class.__name__] = [type(model).__module__, model(**batch).logits.tolist()]
    print(json.dumps(results))
    """
)


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_saved_model_loads_in_a_fresh_process_with_trust_remote_code(backbone, tiny_backbone_for, clip_paths, tmp_path):
    backbone_dir = tiny_backbone_for(backbone)
    spec = backbone_of(backbone_dir)
    torch.manual_seed(0)
    regressor = spec.regressor_class.from_pretrained(backbone_dir, head_hidden_size=16).eval()
    clip_encoder = ClipEncoder(AutoProcessor.from_pretrained(backbone_dir), ProcessingSettings(**SMALL_PIXELS))
    folder = tmp_path / "exported"
    regressor.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    class_name = spec.regressor_class.__name__
    assert config["auto_map"] == {
        "AutoConfig": "configuration_omni_regressor.OmniRegressorConfig",
        "AutoModel": f"modeling_omni_regressor.{class_name}",
        "AutoModelForSequenceClassification": f"modeling_omni_regressor.{class_name}",
    }
    assert len(config["id2label"]) == 1
    assert config["problem_type"] == "regression"
    assert {"configuration_omni_regressor.py", "modeling_omni_regressor.py", "model.safetensors"} <= set(os.listdir(folder))
    batch = dict(
        clip_encoder.collate(
            [clip_encoder.encode(text, clip_encoder.decode(path)) for text, path in zip(TRANSCRIPTS, clip_paths)]
        )
    )
    torch.save(batch, tmp_path / "batch.pt")
    with torch.no_grad():
        expected = regressor(**batch).logits
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_SCRIPT, str(folder), str(tmp_path / "batch.pt")],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": "", "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    for module_name, logits in loaded.values():
        assert module_name.startswith("transformers_modules."), module_name
        torch.testing.assert_close(torch.tensor(logits), expected, atol=1e-5, rtol=1e-5)


def test_hub_files_import_only_torch_transformers_av_and_numpy():
    from transformers.dynamic_module_utils import get_imports

    repo_root = Path(__file__).resolve().parents[1]
    allowed = {
        "configuration_omni_regressor.py": {"transformers"},
        "modeling_omni_regressor.py": {"torch", "transformers"},
        "experts_omni_regressor.py": {"torch", "transformers"},
        "processing_omni_regressor.py": {"numpy", "torch", "transformers"},
        "decoding_omni_regressor.py": {"av", "numpy"},
        "pipeline_omni_regressor.py": {"numpy", "torch", "transformers"},
        "omni_regressor/denoise.py": {"numpy"},
    }
    for name, expected in allowed.items():
        third_party = set(get_imports(repo_root / name)) - set(sys.stdlib_module_names)
        assert third_party == expected, (name, third_party)


def test_gradients_reach_the_head_and_lora_weights(tiny_backbone_dir, clip_encoder):
    from peft import get_peft_model

    from omni_regressor.backbones import get_backbone
    from omni_regressor.model_setup import lora_config_for

    torch.manual_seed(0)
    model = Qwen2_5OmniForSentimentRegression.from_pretrained(tiny_backbone_dir, head_hidden_size=16)
    model = get_peft_model(model, lora_config_for(get_backbone("qwen2.5-omni"), "language-only", modules_to_save=["head"]))
    model.train()
    batch = clip_encoder.collate([clip_encoder.encode(text, None, ("text",)) for text in TRANSCRIPTS], labels=[1.0, -2.0, 0.5])
    model(**batch).loss.backward()
    grads = {name: parameter.grad for name, parameter in model.named_parameters() if parameter.requires_grad}
    lora_b = [name for name in grads if "lora_B" in name]
    head = [name for name in grads if "modules_to_save" in name and ".head." in name]
    assert lora_b and all("language_model" in name for name in lora_b)
    assert head and all(grads[name] is not None and grads[name].abs().sum() > 0 for name in head)
    # LoRA B starts at zero, so the first gradient reaches B (A's gradient is zero until B moves).
    assert all(grads[name] is not None and grads[name].abs().sum() > 0 for name in lora_b)
    frozen = [name for name, parameter in model.named_parameters() if not parameter.requires_grad]
    assert all(parameter.grad is None for name, parameter in model.named_parameters() if name in frozen)


def test_bf16_forward_with_all_modalities(tiny_backbone_dir, clip_encoder, clip_paths):
    model = Qwen2_5OmniForSentimentRegression.from_pretrained(tiny_backbone_dir, head_hidden_size=16, dtype=torch.bfloat16).eval()
    assert model.thinker.language_model.embed_tokens.weight.dtype == torch.bfloat16
    batch = clip_encoder.collate([clip_encoder.encode(TRANSCRIPTS[0], clip_encoder.decode(clip_paths[0]))], labels=[1.0])
    batch["input_features"] = batch["input_features"].to(torch.bfloat16)
    batch["pixel_values_videos"] = batch["pixel_values_videos"].to(torch.bfloat16)
    with torch.no_grad():
        output = model(**batch)
    assert output.logits.dtype == torch.float32 and torch.isfinite(output.logits).all() and torch.isfinite(output.loss)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_backbone_dir, clip_encoder, clip_paths):
    batch = clip_encoder.collate([clip_encoder.encode(TRANSCRIPTS[1], clip_encoder.decode(clip_paths[1]))], labels=[2.0])
    gradients = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = Qwen2_5OmniForSentimentRegression.from_pretrained(tiny_backbone_dir, head_hidden_size=16, head_dropout=0.0)
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        model(**batch).loss.backward()
        gradients.append(model.thinker.language_model.layers[0].self_attn.q_proj.weight.grad.clone())
    torch.testing.assert_close(gradients[0], gradients[1])


@pytest.mark.parametrize(
    "field, value",
    [("loss_type", "hinge"), ("head_dropout", 1.5), ("label_std", 0.0), ("score_range", (3.0, -3.0)), ("head_hidden_size", 0)],
)
def test_invalid_config_values_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        OmniRegressorConfig(**{field: value})


def test_params_report_at_7b_matches_the_reference_counts():
    from omni_regressor.parameters import params_report

    paper = params_report("7b", "paper")
    language_only = params_report("7b", "language-only")
    assert abs(paper["lora_params"] - 103.04e6) < 0.5e6
    assert abs(language_only["lora_params"] - 80.74e6) < 0.5e6
    assert abs(paper["head_params"] - 0.92e6) < 0.5e6
    assert abs(paper["trainable_params"] - (103.04e6 + 0.92e6)) < 0.5e6
    assert paper["trainable_percent"] == pytest.approx(100 * paper["trainable_params"] / paper["total_params"], abs=1e-3)


def test_device_map_and_sdpa_load_paths(tiny_backbone_dir, clip_encoder):
    model = Qwen2_5OmniForSentimentRegression.from_pretrained(
        tiny_backbone_dir, head_hidden_size=16, device_map="auto", attn_implementation="sdpa"
    ).eval()
    assert {parameter.device.type for parameter in model.parameters()} == {"cpu"}
    assert model.thinker.language_model.config._attn_implementation == "sdpa"
    batch = clip_encoder.collate([clip_encoder.encode(TRANSCRIPTS[0], None, ("text",))])
    with torch.no_grad():
        assert torch.isfinite(model(**batch).logits).all()


def test_params_command_prints_one_json_line(capsys):
    from omni_regressor.cli import main

    assert main(["params", "--arch", "tiny", "--lora_preset", "language-only"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["arch"] == "tiny" and report["lora_preset"] == "language-only"
    assert report["trainable_params"] == report["lora_params"] + report["head_params"]
    assert set(report) >= {"total_params", "trainable_params", "trainable_percent"}


def test_tiny_backbone_is_deterministic_for_a_seed(tmp_path):
    from omni_regressor.tiny_backbone import write_tiny_backbone

    first, second, other = (write_tiny_backbone(tmp_path / name, seed=seed) for name, seed in (("a", 3), ("b", 3), ("c", 4)))
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "model.safetensors").read_bytes() != (other / "model.safetensors").read_bytes()
