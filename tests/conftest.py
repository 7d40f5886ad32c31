"""Shared fixtures, built once per session: tiny random released-layout checkpoints of both backbones (one with the
real Qwen vocabulary), their processors, and a small dataset of real mp4 clips."""

import os
import sys
from pathlib import Path

import pytest

# trio (pulled in by selenium for the browser test) registers a Hypothesis plugin that fails to import when
# Hypothesis loads it first; the plugin only makes trio's scheduler deterministic, which no test here needs.
os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Small frames for tests that are not about the official sizes (those pass no pixel flags): 4..16 tokens per frame.
SMALL_PIXELS = {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 16}
SMALL_PIXEL_FLAGS = ["--min_pixels", str(28 * 28 * 4), "--max_pixels", str(28 * 28 * 16)]


@pytest.fixture(scope="session", autouse=True)
def isolated_caches(tmp_path_factory):
    """No test writes decoded media into the user's ~/.cache: the default media cache lives in the session's tmp."""
    cache = tmp_path_factory.mktemp("caches")
    previous = {name: os.environ.get(name) for name in ("OMNI_REGRESSOR_CACHE",)}
    os.environ["OMNI_REGRESSOR_CACHE"] = str(cache / "media")
    yield
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory) -> Path:
    """Qwen2.5-Omni, tiny shape, small-vocabulary tokenizer, released preprocessor settings."""
    from omni_regressor.tiny_backbone import write_tiny_backbone

    return write_tiny_backbone(tmp_path_factory.mktemp("tiny-omni"), seed=0)


@pytest.fixture(scope="session")
def tiny_qwen3_backbone_dir(tmp_path_factory) -> Path:
    """Qwen3-Omni (MoE Thinker), tiny shape, small-vocabulary tokenizer."""
    from omni_regressor.tiny_backbone import write_tiny_backbone

    return write_tiny_backbone(tmp_path_factory.mktemp("tiny-qwen3-omni"), seed=0, backbone="qwen3-omni")


@pytest.fixture(scope="session")
def real_tokenizer_backbone_dir(tmp_path_factory) -> Path:
    """Qwen2.5-Omni, tiny shape, the released Qwen vocabulary and special-token ids (dashscope's ranks)."""
    from omni_regressor.tiny_backbone import write_tiny_backbone

    return write_tiny_backbone(tmp_path_factory.mktemp("tiny-omni-qwen-vocab"), seed=0, tokenizer="qwen")


@pytest.fixture(scope="session")
def tiny_processor(tiny_backbone_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_backbone_dir)


@pytest.fixture(scope="session")
def demo_dataset_dir(tmp_path_factory) -> Path:
    """A small MMSA-layout dataset of real H.264 + AAC clips whose labels are learnable from each modality."""
    from omni_regressor.data import write_demo_dataset

    return write_demo_dataset(tmp_path_factory.mktemp("demo-data"), num_clips=24, seed=0)


def training_flags(backbone, data, output_dir, *extra):
    """Flags of a short, fast training run (small frames, small head); the media cache sits beside `output_dir`."""
    return [
        "--model_name_or_path", str(backbone),
        "--dataset_dir", str(data),
        "--output_dir", str(output_dir),
        "--head_hidden_size", "16",
        "--head_dropout", "0.0",
        "--num_train_epochs", "3",
        "--per_device_train_batch_size", "4",
        "--learning_rate", "2e-3",
        "--head_learning_rate", "3e-3",
        "--logging_steps", "1",
        *SMALL_PIXEL_FLAGS,
        "--media_cache_dir", str(Path(output_dir).parent / "media-cache"),
        "--disable_tqdm", "true",
        "--dataloader_num_workers", "0",
        "--seed", "7",
        *extra,
    ]


@pytest.fixture(scope="session")
def trained_run(tiny_backbone_dir, demo_dataset_dir, tmp_path_factory):
    """One 4-bit QLoRA run (paper preset, 5 epochs) on the demo data, shared by the training, prediction and
    evaluation tests: (output_dir, summary). The random tiny backbone needs the epochs and the head's higher rate to
    learn the demo labels within 24 clips."""
    import train_with_trainer

    output_dir = tmp_path_factory.mktemp("train") / "run"
    flags = training_flags(tiny_backbone_dir, demo_dataset_dir, output_dir, "--num_train_epochs", "5", "--head_learning_rate", "1e-2")
    summary = train_with_trainer.main(flags)
    return output_dir, summary


@pytest.fixture(scope="session")
def trained_export(trained_run) -> Path:
    """The merged, Hub-ready folder of `trained_run`."""
    return Path(trained_run[1]["export_dir"])


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster (2 CPUs, no dashboard) for every `--engine ray` test, shut down at the end of the session."""
    import ray  # in the `dev` extra: CI runs these tests
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_regressor_dir(tiny_backbone_dir, tmp_path_factory) -> Path:
    """A complete regressor folder without training (tiny backbone + a fresh head), as an export writes it (code
    files and processor included): for tests of loading and of the output rows, not of scores' quality."""
    import shutil

    from modeling_omni_regressor import Qwen2_5OmniForSentimentRegression

    folder = tmp_path_factory.mktemp("tiny-regressor") / "model"
    Qwen2_5OmniForSentimentRegression.from_pretrained(tiny_backbone_dir).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "processor_config.json", "chat_template.jinja"):
        if (tiny_backbone_dir / name).is_file():
            shutil.copyfile(tiny_backbone_dir / name, folder / name)
    return folder
