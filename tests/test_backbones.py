"""Qwen3-Omni as the second backbone: the same commands train, evaluate, export and reload it; QLoRA reaches its experts."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import AutoModel

import train_with_trainer
from conftest import training_flags
from omni_regressor.backbones import BACKBONES, backbone_of, get_backbone
from omni_regressor.cli import main as cli_main
from omni_regressor.data import read_mmsa


@pytest.fixture(scope="module")
def qwen3_run(tiny_qwen3_backbone_dir, demo_dataset_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("qwen3") / "run"
    summary = train_with_trainer.main(training_flags(tiny_qwen3_backbone_dir, demo_dataset_dir, output_dir, "--num_train_epochs", "2"))
    return output_dir, summary


def test_the_backbone_is_found_from_the_checkpoint_alone(tiny_backbone_dir, tiny_qwen3_backbone_dir, qwen3_run):
    assert backbone_of(tiny_backbone_dir).name == "qwen2.5-omni"
    assert backbone_of(tiny_qwen3_backbone_dir).name == "qwen3-omni"
    assert backbone_of(qwen3_run[0] / "model").name == "qwen3-omni"  # a saved regressor too


def test_tiny_backbone_command_writes_a_released_layout_qwen3_checkpoint(tmp_path, capsys):
    assert cli_main(["tiny-backbone", "--backbone", "qwen3-omni", "--output_dir", str(tmp_path / "q3")]) == 0
    config = json.loads((tmp_path / "q3" / "config.json").read_text())
    assert config["model_type"] == "qwen3_omni_moe" and config["thinker_config"]["text_config"]["num_experts"] == 4
    with safe_open(tmp_path / "q3" / "model.safetensors", "pt") as source:
        prefixes = {key.split(".")[0] for key in source.keys()}
    assert prefixes == {"thinker", "talker", "code2wav"}
    assert (tmp_path / "q3" / "tokenizer.json").is_file() and (tmp_path / "q3" / "processor_config.json").is_file()


def test_qwen3_trains_with_the_default_flags_and_exports_a_qwen3_regressor(qwen3_run):
    output_dir, summary = qwen3_run
    assert summary["backbone"] == "qwen3-omni" and np.isfinite(summary["test_metrics"]["MAE"])
    config = json.loads((output_dir / "model" / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_omni_regressor.Qwen3OmniMoeForSentimentRegression"
    assert config["thinker_config"]["model_type"] == "qwen3_omni_moe_thinker"
    assert config["processing"]["image_factor"] == 32  # patch 16 x merge 2
    assert summary["parameters"]["lora_params"] > 0


def test_automodel_loads_each_backbone_folder_as_its_own_class_in_one_process(trained_export, qwen3_run):
    # Both folders carry the same code, so transformers shares one config class between them and registers the
    # first folder's model class for it: the second load must still build its own backbone's class.
    classes = [type(AutoModel.from_pretrained(folder, trust_remote_code=True)).__name__
               for folder in (trained_export, qwen3_run[0] / "model", trained_export)]
    assert classes == ["Qwen2_5OmniForSentimentRegression", "Qwen3OmniMoeForSentimentRegression",
                       "Qwen2_5OmniForSentimentRegression"]


def test_qwen3_export_evaluates_and_scores_in_a_fresh_process_like_predict(qwen3_run, demo_dataset_dir, tmp_path):
    output_dir, summary = qwen3_run
    model_dir = output_dir / "model"
    assert cli_main(["evaluate", "--model", str(model_dir), "--dataset_dir", str(demo_dataset_dir), "--output_dir",
                     str(tmp_path / "eval"), "--media_cache_dir", str(output_dir.parent / "media-cache")]) == 0
    predictions = [float(line.split(",")[3]) for line in (tmp_path / "eval" / "predictions.csv").read_text().splitlines()[1:]]
    # The evaluation pass scores the merged export; training scored the 4-bit model with its adapter.
    assert np.abs(np.asarray(predictions) - np.asarray(summary["test_predictions"])).max() < 0.1
    record = next(record for record in read_mmsa(demo_dataset_dir)[0] if record.split == "test")
    script = (
        "import sys\nsys.path = [p for p in sys.path if p not in ('', '.')]\n"
        "import importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'omni_regressor', 'modeling_omni_regressor', 'configuration_omni_regressor',"
        " 'processing_omni_regressor', 'pipeline_omni_regressor'}:\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from transformers import pipeline\n"
        "scorer = pipeline('omni-sentiment-regression', model=sys.argv[1], trust_remote_code=True)\n"
        "print(scorer(sys.argv[2], transcript=sys.argv[3])['score'])\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(model_dir), record.media_path, record.text],
                            capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    test_records = [r for r in read_mmsa(demo_dataset_dir)[0] if r.split == "test"]
    expected = predictions[[r.clip_id for r in test_records].index(record.clip_id)]
    assert float(result.stdout.strip().splitlines()[-1]) == pytest.approx(expected, abs=1e-4)


def test_qwen3_qlora_quantises_the_experts_and_leaves_routers_and_towers_alone(tiny_qwen3_backbone_dir):
    import bitsandbytes as bnb

    from omni_regressor.recipes.discriminative import load_regressor_for_training

    model = load_regressor_for_training(tiny_qwen3_backbone_dir, get_backbone("qwen3-omni"), quantization="4bit",
                                        lora_preset="paper", head_hidden_size=16)
    modules = dict(model.named_modules())
    expert = modules["base_model.model.thinker.language_model.layers.0.mlp.experts.2.down_proj"]
    assert isinstance(expert.base_layer, bnb.nn.Linear4bit) and "default" in expert.lora_A
    router = modules["base_model.model.thinker.language_model.layers.0.mlp.gate"]
    assert router.weight.dtype == torch.bfloat16 and not router.weight.requires_grad
    assert not any(isinstance(module, bnb.nn.Linear4bit) for name, module in modules.items()
                   if ".audio_tower." in name or ".visual." in name or ".head." in name)


def test_params_of_the_released_qwen3_shape_on_the_meta_device(capsys):
    assert cli_main(["params", "--arch", "qwen3-omni-30b-a3b", "--lora_preset", "attention-only", "--memory"]) == 0
    report = json.loads(capsys.readouterr().out.strip())
    # The released Thinker without its LM head: 31.4 B parameters, of which 29.0 B are experts.
    assert 31.3e9 < report["total_params"] < 31.6e9 and report["backbone"] == "qwen3-omni"
    assert abs(report["lora_params"] - 26.74e6) < 0.1e6  # q/k/v/o of 48 layers at r=32
    # With the experts quantised to NF4 the weights fit in ~18.6 GB instead of ~63 GB in bf16.
    assert 17e9 < report["weight_bytes_total"] < 20e9 and "nf4" in report["memory"]["language_model"]["dtype"]


def test_every_backbone_declares_what_the_package_reads():
    for spec in BACKBONES.values():
        assert set(spec.token_id_fields) == {"audio_token", "image_token", "video_token", "audio_bos_token",
                                             "audio_eos_token", "vision_bos_token", "vision_eos_token"}
        assert {"paper", "language-only"} <= set(spec.lora_targets) and "tiny" in spec.architectures
        assert spec.regressor_class.thinker_model_type == spec.thinker_model_type


def test_only_the_talker_token_id_false_alarm_is_silenced():
    import logging

    from transformers.models.qwen2_5_omni.configuration_qwen2_5_omni import Qwen2_5OmniTalkerConfig

    import omni_regressor  # noqa: F401 - installs the filter

    config_logger = logging.getLogger("transformers.configuration_utils")
    records = []
    handler = logging.Handler()
    handler.emit = records.append  # sees what passes the logger's filters
    config_logger.addHandler(handler)
    try:
        logging.Logger.warning_once.cache_clear()  # transformers warns once per process: make this call warn again
        # transformers' own default Talker config (as in the released one): text-token ids beyond the codec vocabulary.
        talker = Qwen2_5OmniTalkerConfig()
        config_logger.warning("Model config: pad_token_id must be `None` or an integer within the vocabulary "
                              "(between 0 and 8447), got 9000.")
    finally:
        config_logger.removeHandler(handler)
    assert talker.tts_text_start_token_id >= talker.vocab_size
    messages = [record.getMessage() for record in records]
    assert not any("tts_text_start_token_id" in message or "vision_start_token_id" in message for message in messages)
    assert any("pad_token_id must be `None`" in message for message in messages)  # any other such id still warns
