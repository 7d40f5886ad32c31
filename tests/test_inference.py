"""Model folders that are not a regressor (omni_regressor/inference.py): a folder without its tokenizer, a base
checkpoint and an adapter folder are each one line saying what to pass, for predict and evaluate alike."""

import shutil
from pathlib import Path

import pytest

from conftest import cli, one_error_line, predict


@pytest.fixture(scope="module")
def model_without_tokenizer(regressor, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("incomplete") / "model"
    shutil.copytree(regressor, folder)
    (folder / "tokenizer.json").unlink()
    return folder


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize(
    ("which", "fragments"),
    [
        ("missing_tokenizer", ["lacks tokenizer.json", "export the model again"]),
        ("base_checkpoint", ["is a `qwen2_5_omni` checkpoint, not a trained sentiment regressor",
                             "omni-regressor train --model_name_or_path"]),
        ("adapter_folder", ["is an adapter folder", "pass the merged model folder"]),
    ],
)
def test_a_model_folder_that_is_not_a_regressor_is_one_line_saying_what_to_pass(
        command, which, fragments, model_without_tokenizer, tiny_backbone_dir, regressor, demo_dataset_dir,
        tmp_path, no_model_loads):
    model = {"missing_tokenizer": model_without_tokenizer, "base_checkpoint": tiny_backbone_dir,
             "adapter_folder": regressor.parent / "adapter"}[which]
    assert (model / "config.json").is_file()
    if command == "predict":
        status, _, err = predict(model, demo_dataset_dir / "Raw" / "demo_00" / "001.mp4")
    else:
        status, _, err = cli("evaluate", "--model", model, "--dataset_dir", demo_dataset_dir, "--output_dir",
                             tmp_path / "eval")
    assert status == 2
    one_error_line(err, f"omni-regressor {command}: error: {model}", *fragments)
