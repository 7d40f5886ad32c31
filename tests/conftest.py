"""Shared fixtures: one tiny random Qwen2.5-Omni checkpoint (original layout) and a few real mp4 clips per session."""

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory) -> Path:
    from omni_regressor.tiny_backbone import write_tiny_backbone

    return write_tiny_backbone(tmp_path_factory.mktemp("tiny-omni"), seed=0)


@pytest.fixture(scope="session")
def tiny_processor(tiny_backbone_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_backbone_dir)


@pytest.fixture(scope="session")
def demo_dataset_dir(tmp_path_factory) -> Path:
    """A small MMSA-layout dataset of real H.264 + AAC clips whose labels are learnable from each modality."""
    from omni_regressor.data import write_demo_dataset

    return write_demo_dataset(tmp_path_factory.mktemp("demo-data"), num_clips=24, seed=0)
