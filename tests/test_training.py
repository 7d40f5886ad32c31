"""QLoRA fine-tuning with the HF Trainer: trainable parameters, learning rates, resume, export, card, DDP, demo."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from transformers import TrainerCallback, TrainingArguments

import train_with_trainer
from conftest import SMALL_PIXELS, training_flags
from modeling_omni_regressor import Qwen2_5OmniForSentimentRegression
from omni_regressor.backbones import get_backbone
from omni_regressor.data import read_mmsa
from omni_regressor.recipes.discriminative import load_regressor_for_training
from omni_regressor.trainer import OmniRegressorTrainer

REPO_ROOT = Path(__file__).resolve().parents[1]
QWEN2_5 = get_backbone("qwen2.5-omni")


def test_qlora_paper_preset_trains_only_lora_and_head_with_towers_unquantised(tiny_backbone_dir):
    import bitsandbytes as bnb

    model = load_regressor_for_training(tiny_backbone_dir, QWEN2_5, quantization="4bit", lora_preset="paper", head_hidden_size=16)
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert trainable and all("lora_" in name or "modules_to_save.default" in name for name in trainable)
    assert any("modules_to_save.default" in name and ".head." in name for name in trainable)
    language_model_linears = [
        module for name, module in model.named_modules() if "language_model.layers" in name and name.endswith("q_proj.base_layer")
    ]
    assert language_model_linears and all(isinstance(module, bnb.nn.Linear4bit) for module in language_model_linears)
    for name, module in model.named_modules():
        if ".audio_tower." in name or ".visual." in name or ".head." in name:
            assert not isinstance(module, bnb.nn.Linear4bit), name
    # The paper preset matches module names across the whole Thinker, towers included.
    assert any(".audio_tower." in name and "lora_A" in name for name in trainable)


def test_head_and_lora_parameter_groups_get_their_own_learning_rates(tiny_backbone_dir, tmp_path):
    model = load_regressor_for_training(tiny_backbone_dir, QWEN2_5, quantization="none", lora_preset="paper", head_hidden_size=16)
    trainer = OmniRegressorTrainer(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path), learning_rate=2e-4, weight_decay=0.01, report_to="none"),
        head_learning_rate=1e-3,
    )
    optimizer = trainer.create_optimizer()
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    rates = {}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            rates[names[id(parameter)]] = group["lr"]
    assert set(rates) == {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert {rate for name, rate in rates.items() if ".head." in name} == {1e-3}
    assert {rate for name, rate in rates.items() if "lora_" in name} == {2e-4}


def test_training_decreases_the_loss_and_beats_the_mean_predictor(trained_run):
    _, summary = trained_run
    losses = [entry["loss"] for entry in summary["log_history"] if "loss" in entry]
    assert len(losses) >= 6
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert summary["test_metrics"]["MAE"] < summary["mean_predictor_test_MAE"]
    assert summary["parameters"]["trainable_params"] < summary["parameters"]["total_params"]
    assert summary["peak_memory_mb"] > 0 and summary["train_samples_per_second"] > 0
    assert {"MAE", "Corr", "Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Mult_acc_7"} <= set(summary["test_metrics"])


def test_label_statistics_and_processing_settings_are_stored_in_the_exported_config(trained_run, demo_dataset_dir):
    output_dir, summary = trained_run
    config = json.loads((output_dir / "model" / "config.json").read_text())
    train_labels = [record.label for record in read_mmsa(demo_dataset_dir)[0] if record.split == "train"]
    assert config["label_mean"] == pytest.approx(np.mean(train_labels))
    assert config["label_std"] == pytest.approx(np.std(train_labels))
    assert config["processing"]["modalities"] == ["text", "audio", "video"]
    assert config["processing"]["max_pixels"] == 28 * 28 * 16
    # Unset settings are saved resolved, as the numbers the model was trained with.
    assert config["processing"]["min_frames"] == 4 and config["processing"]["image_factor"] == 28
    assert config["processing"]["max_audio_seconds"] == 300.0 and config["processing"]["denoise"] == "none"
    assert "quantization_config" not in config


FRESH_PREDICT_SCRIPT = """
import json, sys
from omni_regressor.inference import SentimentScorer
scorer = SentimentScorer.from_pretrained(sys.argv[1])
paths, texts = json.loads(sys.argv[2])
print(json.dumps(scorer.score(paths, texts)))
"""


def test_exported_model_loads_in_a_fresh_process_and_matches_the_trained_predictions(trained_run, demo_dataset_dir):
    output_dir, summary = trained_run
    test_records = [record for record in read_mmsa(demo_dataset_dir)[0] if record.split == "test"]
    payload = json.dumps([[record.media_path for record in test_records], [record.text for record in test_records]])
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PREDICT_SCRIPT, str(output_dir / "model"), payload],
        capture_output=True, text=True, cwd=output_dir, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    exported = np.array(json.loads(result.stdout.strip().splitlines()[-1]))
    trained = np.array(summary["test_predictions"])  # the 4-bit model with its unmerged adapter
    # The export merges into the full-precision base, so the only gap is the precision the run trained in: NF4
    # language-model weights and bf16 towers and embeddings (test_adapter_reloads_onto_the_base_and_equals_the_merged_export
    # shows the merge itself is exact).
    assert np.abs(exported - trained).max() < 0.1


def test_adapter_reloads_onto_the_base_and_equals_the_merged_export(trained_run, tiny_backbone_dir, demo_dataset_dir):
    from transformers import AutoProcessor

    from configuration_omni_regressor import OmniRegressorConfig
    from omni_regressor.export import load_regressor_with_adapter
    from processing_omni_regressor import ClipEncoder

    output_dir, _ = trained_run
    adapter_config = json.loads((output_dir / "adapter" / "adapter_config.json").read_text())
    # The adapter folder is its own base: a regressor config naming the original checkpoint, no weights. A local base
    # is named by a placeholder (no path of the training machine is exported), so its folder is given here.
    assert adapter_config["base_model_name_or_path"] == f"local:{tiny_backbone_dir.name}"
    regressor_config = OmniRegressorConfig.from_pretrained(output_dir / "adapter")
    assert regressor_config.base_model_name_or_path == f"local:{tiny_backbone_dir.name}"
    merged = Qwen2_5OmniForSentimentRegression.from_pretrained(output_dir / "model").eval()
    with_adapter = load_regressor_with_adapter(output_dir / "adapter", base_model_name_or_path=tiny_backbone_dir).eval()
    encoder = ClipEncoder.for_config(regressor_config, AutoProcessor.from_pretrained(output_dir / "adapter"))
    records = [record for record in read_mmsa(demo_dataset_dir)[0] if record.split == "valid"][:4]
    batch = encoder.encode_batch([record.text for record in records], [record.media_path for record in records])
    with torch.no_grad():
        torch.testing.assert_close(with_adapter(**batch).logits, merged(**batch).logits, atol=1e-4, rtol=1e-4)


def test_model_card_is_valid_and_shows_the_runs_own_settings(trained_run, demo_dataset_dir):
    from omni_regressor.model_card import card_problems

    output_dir, summary = trained_run
    card = ModelCard.load(output_dir / "model" / "README.md")
    assert card_problems(card) == []
    data = card.data.to_dict()
    model_name = f"omni-regressor-qwen2.5-omni-{demo_dataset_dir.name}"
    assert data["model_name"] == model_name
    assert card.text.lstrip().startswith(f"# {model_name}")
    # A local base and a local dataset are not Hub ids: left out of the metadata (no model-index without a named
    # dataset), said in the text.
    assert "base_model" not in data and "datasets" not in data and "a local checkpoint" in card.text
    assert "model-index" not in data
    assert "pipeline_tag" not in data and data["inference"] is False
    assert data["license"] == "other" and "could not be read" in card.text  # the tiny base has no card to take it from
    # The results are the exported folder's, evaluated after export (test_export checks them against
    # `omni-regressor evaluate`); latency says what it includes.
    exported = summary["exported_test_metrics"]
    assert f"| MAE | {exported['MAE']:.4f} |" in card.text and f"| Corr | {exported['Corr']:.4f} |" in card.text
    assert f"End to end from the file (decode, prompt, forward" in card.text
    assert f"{exported['ms_per_clip']:.4f} ms per clip" in card.text
    # Settings shown are the run's own (trained_run: seed 7, 5 epochs, 4..16 tokens per frame).
    for expected in ("| seed | 7 |", "| LoRA r / alpha / dropout | 32 / 32 / 0.1 |", "q_proj, k_proj, v_proj, o_proj",
                     "| frame size | 4 to 16 tokens", f"| 5 ({summary['best_epoch']:g}) |", "up to 300 s",
                     "| learning rate (LoRA / head) | 0.002 / 0.01 |"):
        assert expected in card.text, expected
    snippets = card.text.split("```")
    assert snippets[1].strip().startswith('bash\npip install "torch>=') and '"torchvision>=' in snippets[1]
    assert 'pipeline("omni-sentiment-regression"' in snippets[3]
    exported_files = set(os.listdir(output_dir / "model"))
    assert {"configuration_omni_regressor.py", "modeling_omni_regressor.py", "processing_omni_regressor.py",
            "decoding_omni_regressor.py",
            "pipeline_omni_regressor.py", "model.safetensors", "README.md", "tokenizer.json", "processor_config.json"} <= exported_files


def test_adapter_folder_has_its_own_card(trained_run):
    output_dir, _ = trained_run
    card = ModelCard.load(output_dir / "adapter" / "README.md")
    assert card.data.library_name == "peft" and "AutoPeftModelForSequenceClassification" in card.text
    assert "PeftModel.from_pretrained" in card.text and "[More Information Needed]" not in card.text


def test_train_evaluate_train_again_under_4bit_on_cpu(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    from transformers import AutoProcessor

    from omni_regressor.data import records_to_dataset_dict
    from omni_regressor.media import MediaCache
    from processing_omni_regressor import ClipEncoder, ProcessingSettings

    splits = records_to_dataset_dict(read_mmsa(demo_dataset_dir)[0])
    model = load_regressor_for_training(tiny_backbone_dir, QWEN2_5, quantization="4bit", lora_preset="paper", head_hidden_size=16)
    encoder = ClipEncoder(
        AutoProcessor.from_pretrained(tiny_backbone_dir), ProcessingSettings(**SMALL_PIXELS),
        media_cache=MediaCache(tmp_path / "cache"),
    )
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2, report_to="none",
        remove_unused_columns=False, label_names=["labels"], dataloader_pin_memory=False, disable_tqdm=True,
    )
    trainer = OmniRegressorTrainer(model=model, args=args, train_dataset=splits["train"], eval_dataset=splits["valid"],
                                   data_collator=encoder, head_learning_rate=1e-3)
    first = trainer.train()
    metrics = trainer.evaluate()
    second = trainer.train()
    assert np.isfinite(first.training_loss) and np.isfinite(metrics["eval_loss"]) and np.isfinite(second.training_loss)


class CrashAfterFirstCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt("simulated kill right after the first checkpoint")


def test_resumed_run_ends_with_the_same_metrics_as_an_uninterrupted_run(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    extra = ("--quantization", "none", "--lora_dropout", "0.1", "--head_dropout", "0.1")
    uninterrupted = train_with_trainer.main(training_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "a", *extra))
    with pytest.raises(KeyboardInterrupt):
        train_with_trainer.main(
            training_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "b", *extra),
            callbacks=[CrashAfterFirstCheckpoint()],
        )
    checkpoints = sorted((tmp_path / "b").glob("checkpoint-*"))
    assert len(checkpoints) == 1 and not (tmp_path / "b" / "model").exists()
    resumed = train_with_trainer.main(
        training_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "b", *extra, "--resume_from_checkpoint", "last")
    )
    for key in ("MAE", "Corr", "Mult_acc_7"):
        assert resumed["test_metrics"][key] == pytest.approx(uninterrupted["test_metrics"][key], abs=1e-5)
    np.testing.assert_allclose(resumed["test_predictions"], uninterrupted["test_predictions"], atol=1e-5)


def test_training_stops_before_any_compute_on_data_problems_unless_told_to_skip(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    import shutil

    from omni_regressor.data import DataProblemsError

    broken = tmp_path / "broken"
    shutil.copytree(demo_dataset_dir, broken)
    record = next(record for record in read_mmsa(broken)[0] if record.split == "train")
    Path(record.media_path).unlink()
    with pytest.raises(DataProblemsError) as raised:
        train_with_trainer.main(training_flags(tiny_backbone_dir, broken, tmp_path / "stopped"))
    assert record.clip_id in str(raised.value) and "missing_file" in str(raised.value)
    assert not (tmp_path / "stopped").exists()

    summary = train_with_trainer.main(
        training_flags(tiny_backbone_dir, broken, tmp_path / "skipped", "--skip_bad_clips", "true", "--num_train_epochs", "1")
    )
    skipped = (tmp_path / "skipped" / "skipped_clips.csv").read_text()
    assert record.clip_id in skipped and "missing_file" in skipped
    assert summary["skipped_clips"] == 1


def test_arguments_read_from_a_yaml_file_with_command_line_overrides(tmp_path):
    from omni_regressor.arguments import parse_training_arguments

    (tmp_path / "data").mkdir()
    (tmp_path / "other-data").mkdir()
    config = tmp_path / "train.yaml"
    config.write_text(f"model_name_or_path: some/model\ndataset_dir: {tmp_path / 'data'}\noutput_dir: out\nlora_r: 8\n"
                      "modalities: T+A\nmax_frames: 8\n")
    model_args, data_args, processing_args, training_args = parse_training_arguments([str(config)])
    assert model_args.lora_r == 8 and processing_args.modalities == "T+A" and training_args.output_dir == "out"
    assert processing_args.max_frames == 8 and training_args.learning_rate == 2e-4 and model_args.head_learning_rate == 1e-3
    _, data_args, processing_args, _ = parse_training_arguments([str(config), "--dataset_dir", str(tmp_path / "other-data"),
                                                                 "--max_frames", "4"])
    assert data_args.dataset_dir == str(tmp_path / "other-data") and processing_args.max_frames == 4


@pytest.mark.parametrize("name", ["mosi", "mosei", "sims"])
def test_example_configs_parse_with_the_data_path_given_on_the_command_line(name, tmp_path):
    from omni_regressor.arguments import parse_training_arguments

    # bf16 (the configs' GPU setting) is switched off here: this machine has no GPU.
    model_args, data_args, processing_args, training_args = parse_training_arguments(
        [str(REPO_ROOT / "configs" / f"{name}.yaml"), "--dataset_dir", str(tmp_path), "--bf16", "false"]
    )
    assert data_args.dataset_dir == str(tmp_path) and model_args.lora_preset == "paper" and processing_args.max_frames == 16
    assert data_args.dataset_name and training_args.learning_rate == 2e-4


def test_two_rank_ddp_run_on_cpu_completes_and_exports(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    output_dir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
        str(REPO_ROOT / "train_with_trainer.py"),
        *training_flags(tiny_backbone_dir, demo_dataset_dir, output_dir, "--num_train_epochs", "1", "--ddp_backend", "gloo"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((output_dir / "training_summary.json").read_text())
    train_clips = sum(1 for record in read_mmsa(demo_dataset_dir)[0] if record.split == "train")
    steps = max(entry.get("step", 0) for entry in summary["log_history"])
    assert steps == -(-train_clips // (4 * 2)), "two ranks must share each epoch"
    model = Qwen2_5OmniForSentimentRegression.from_pretrained(output_dir / "model")
    assert model.config.label_std > 0


def test_demo_main_job_beats_the_mean_predictor(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "omni_regressor.cli", "demo", "--output_dir", str(tmp_path / "demo"), "--num_clips", "40", "--num_train_epochs", "6"],
        capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    # A quiet run: no library warning (e.g. about the default configs transformers builds while saving).
    noise = [line for line in result.stderr.splitlines() if "Warning" in line or line.startswith("[transformers]")]
    assert noise == []
    report = json.loads((tmp_path / "demo" / "demo_report.json").read_text())
    assert report["test_MAE"] < report["mean_predictor_test_MAE"]
    assert Path(report["model_card"]).exists()


def test_push_to_hub_uploads_the_export_folder_with_its_code(tiny_backbone_dir, demo_dataset_dir, tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    uploads = []
    # No network here: record what would be uploaded instead of sending it.
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: uploads.append(("create", repo_id)))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, repo_id, folder_path, **kwargs: uploads.append((repo_id, folder_path)) or "commit")
    summary = train_with_trainer.main(
        training_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "run", "--num_train_epochs", "1", "--quantization", "none",
                       "--push_to_hub", "true", "--hub_model_id", "someone/omni-regressor-demo")
    )
    # model/ to the repository named, adapter/ to its own repository (adapter_config.json names it as its base).
    adapter_dir = str(Path(summary["export_dir"]).parent / "adapter")
    assert uploads == [("create", "someone/omni-regressor-demo"), ("someone/omni-regressor-demo", summary["export_dir"]),
                       ("create", "someone/omni-regressor-demo-adapter"), ("someone/omni-regressor-demo-adapter", adapter_dir)]
    assert json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["base_model_name_or_path"] == (
        "someone/omni-regressor-demo-adapter")
    uploaded = set(os.listdir(summary["export_dir"]))
    assert {"configuration_omni_regressor.py", "modeling_omni_regressor.py", "model.safetensors", "config.json", "README.md",
            "tokenizer.json", "processor_config.json"} <= uploaded
    assert not any(name.startswith("checkpoint-") for name in uploaded)


def test_push_to_hub_without_a_repository_id_fails_before_training(tiny_backbone_dir, demo_dataset_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_with_trainer.main(training_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "run", "--push_to_hub", "true"))
    assert exit_info.value.code == 2 and "--hub_model_id" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_early_stopping_ends_training_when_valid_mae_stops_improving(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    summary = train_with_trainer.main(
        training_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "run", "--quantization", "none", "--num_train_epochs", "6",
                       "--learning_rate", "0", "--head_learning_rate", "0", "--early_stopping_patience", "1")
    )
    evaluated_epochs = [entry["epoch"] for entry in summary["log_history"] if "eval_MAE" in entry]
    assert evaluated_epochs == [1.0, 2.0], "a frozen model never improves, so patience 1 stops after the second evaluation"


def test_adapter_only_export_reloads_onto_its_base_with_the_trained_predictions(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    from transformers import AutoProcessor

    from omni_regressor.export import load_regressor_with_adapter
    from processing_omni_regressor import ClipEncoder

    summary = train_with_trainer.main(
        training_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "run", "--quantization", "none",
                       "--num_train_epochs", "1", "--save_adapter_only", "true")
    )
    adapter_dir = tmp_path / "run" / "adapter"
    assert summary["export_dir"] == str(adapter_dir) and not (tmp_path / "run" / "model").exists()
    assert {"adapter_model.safetensors", "adapter_config.json", "config.json", "tokenizer.json"} <= set(os.listdir(adapter_dir))
    model = load_regressor_with_adapter(adapter_dir, base_model_name_or_path=tiny_backbone_dir).eval()
    assert model.config.label_std == pytest.approx(summary["label_std"])
    encoder = ClipEncoder.for_config(model.config, AutoProcessor.from_pretrained(adapter_dir))
    test_records = [record for record in read_mmsa(demo_dataset_dir)[0] if record.split == "test"]
    batch = encoder.encode_batch([record.text for record in test_records], [record.media_path for record in test_records])
    with torch.no_grad():
        reloaded = model(**batch).logits.numpy()
    np.testing.assert_allclose(reloaded, summary["test_predictions"], atol=1e-5)


def test_full_fine_tuning_trains_every_weight_and_exports_a_loadable_model(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    summary = train_with_trainer.main(
        training_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "run", "--quantization", "none", "--lora_preset", "none",
                       "--num_train_epochs", "1")
    )
    assert summary["parameters"]["trainable_params"] == summary["parameters"]["total_params"]
    assert summary["parameters"]["lora_params"] == 0
    model = Qwen2_5OmniForSentimentRegression.from_pretrained(tmp_path / "run" / "model")
    assert model.config.label_std == pytest.approx(summary["label_std"])
    assert (tmp_path / "run" / "model" / "README.md").exists() and not (tmp_path / "run" / "adapter").exists()


def test_full_fine_tuning_of_a_4bit_model_is_refused(tiny_backbone_dir, demo_dataset_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_with_trainer.main(training_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "run", "--lora_preset", "none"))
    assert exit_info.value.code == 2 and "--quantization none" in capsys.readouterr().err


def test_training_reports_time_per_stage_with_the_dataloader_workers_asked_for(tiny_backbone_dir, demo_dataset_dir,
                                                                               tmp_path):
    output_dir = tmp_path / "run"
    summary = train_with_trainer.main(training_flags(tiny_backbone_dir, demo_dataset_dir, output_dir,
                                                     "--num_train_epochs", "1", "--dataloader_num_workers", "2"))
    stages = json.loads((output_dir / "training_summary.json").read_text())["stages"]
    assert stages == summary["stages"]
    assert stages["dataloader_num_workers"] == 2
    assert stages["data_wait_seconds"] >= 0 and stages["forward_backward_seconds"] > 0
    assert stages["evaluation_seconds"] > 0
    assert 0 <= stages["data_wait_fraction"] <= 1
    assert stages["data_wait_fraction"] == pytest.approx(
        stages["data_wait_seconds"] / (stages["data_wait_seconds"] + stages["forward_backward_seconds"]), rel=1e-9)
    cache = tmp_path / "media-cache"  # filled by the data check's workers, read by the training workers
    assert len(list(cache.glob("*.safetensors"))) == len(list((demo_dataset_dir / "Raw").rglob("*.mp4")))
    assert not list(cache.glob(".*.tmp"))


def test_default_workers_leave_one_core_with_a_gpu_and_the_cores_to_the_model_on_cpu(monkeypatch, tmp_path):
    import os

    import torch

    from omni_regressor.arguments import default_num_workers
    from omni_regressor.training_arguments import OmniTrainingArguments

    for cuda, cores, workers in [(True, 1, 0), (True, 2, 1), (True, 3, 2), (True, 16, 4),
                                 (False, 2, 0), (False, 4, 0), (False, 8, 2), (False, 32, 4)]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, cores=cores: set(range(cores)))
        assert default_num_workers() == workers, (cuda, cores)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    arguments = OmniTrainingArguments(output_dir=str(tmp_path))
    assert arguments.dataloader_num_workers == 2 and arguments.dataloader_persistent_workers
