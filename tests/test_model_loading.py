"""Loading a trained regressor (`omni_regressor.model_loading`): complete folders or one line naming the tensor, the
package's own classes, never code from the folder without `--trust_remote_code`."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from omni_regressor.cli import main as cli_main
from hostile_media import normal_clip

@pytest.fixture(scope="module")
def regressor_dir(tiny_regressor_dir) -> Path:
    return tiny_regressor_dir


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return normal_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def variant(regressor_dir, tmp_path, edit_weights=None, edit_config=None) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(regressor_dir, folder)
    if edit_weights is not None:
        weights = edit_weights(load_file(folder / "model.safetensors"))
        if weights is not None:
            save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    if edit_config is not None:
        config = json.loads((folder / "config.json").read_text())
        edit_config(config)
        (folder / "config.json").write_text(json.dumps(config))
    return folder


def predict(folder, clip, tmp_path, *flags) -> int:
    return cli_main(["predict", "--model", str(folder), str(clip), "--device", "cpu", "--no_progress",
                     "--output", str(tmp_path / "scores.csv"), *flags])


def assert_one_line_exit_2(status, capsys, *parts):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("omni-regressor")]
    assert status == 2, err[-2000:]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    for part in parts:
        assert part in lines[0], lines[0]


def test_a_complete_folder_scores(regressor_dir, clip, tmp_path):
    assert predict(regressor_dir, clip, tmp_path) == 0


def test_a_folder_without_the_head_tensors_is_refused_naming_the_tensor(regressor_dir, clip, tmp_path, capsys):
    folder = variant(regressor_dir, tmp_path, lambda weights: {k: v for k, v in weights.items() if not k.startswith("head.")})
    assert_one_line_exit_2(predict(folder, clip, tmp_path), capsys, str(folder), "tensor head.", "missing")
    assert not (tmp_path / "scores.csv").exists()


def test_a_folder_without_a_decoder_layer_is_refused(regressor_dir, clip, tmp_path, capsys):
    folder = variant(regressor_dir, tmp_path, lambda weights: {k: v for k, v in weights.items() if ".layers.1." not in k})
    assert_one_line_exit_2(predict(folder, clip, tmp_path), capsys, "tensor thinker.language_model.layers.1.", "missing")


def test_a_wrong_head_size_is_refused_naming_both_shapes(regressor_dir, clip, tmp_path, capsys):
    def wider(weights):
        weights["head.out_proj.weight"] = torch.zeros(2, weights["head.out_proj.weight"].shape[1])
        return weights

    folder = variant(regressor_dir, tmp_path, wider)
    assert_one_line_exit_2(predict(folder, clip, tmp_path), capsys, "tensor head.out_proj.weight has shape [2,")


def test_truncated_weights_are_one_line_naming_the_file(regressor_dir, clip, tmp_path, capsys):
    def truncate(weights):
        path = tmp_path / "model" / "model.safetensors"
        path.write_bytes(path.read_bytes()[:4096])

    folder = variant(regressor_dir, tmp_path, truncate)
    assert_one_line_exit_2(predict(folder, clip, tmp_path), capsys, f"{folder / 'model.safetensors'} is not a readable")


@pytest.mark.parametrize("edit, named", [
    (lambda config: config["processing"].update(max_frames=-1), "max_frames"),
    (lambda config: config["processing"].update(fps=0), "fps"),
    (lambda config: config.update(label_std=0), "label_std"),
    (lambda config: config.update(score_range=[3, -3]), "score_range"),
])
def test_a_nonsense_config_value_is_one_line_naming_it(regressor_dir, clip, tmp_path, capsys, edit, named):
    folder = variant(regressor_dir, tmp_path, edit_config=lambda config: (config.setdefault("processing", {}), edit(config)))
    assert_one_line_exit_2(predict(folder, clip, tmp_path), capsys, "config.json", named)


def test_code_in_the_model_folder_never_runs_without_consent(regressor_dir, clip, demo_dataset_dir, tmp_path, capsys):
    folder = variant(regressor_dir, tmp_path)
    marker = tmp_path / "code-ran"
    for name in ("configuration_omni_regressor.py", "modeling_omni_regressor.py"):
        code = (folder / name).read_text()
        (folder / name).write_text(f"open({str(marker)!r}, 'w').write('ran')\n" + code)
    assert predict(folder, clip, tmp_path) == 0
    assert cli_main(["inspect-inputs", "--model", str(folder), str(clip)]) in (0, 1)
    assert cli_main(["evaluate", "--model", str(folder), "--dataset_dir", str(demo_dataset_dir), "--output_dir",
                     str(tmp_path / "eval")]) == 0
    assert not marker.exists()
    assert predict(folder, clip, tmp_path, "--overwrite", "--trust_remote_code") == 0  # asked for: it runs
    assert marker.exists()


def test_a_complete_qwen3_folder_passes_the_check_and_a_missing_expert_does_not(tiny_qwen3_backbone_dir, tmp_path):
    from modeling_omni_regressor import Qwen3OmniMoeForSentimentRegression
    from omni_regressor.model_loading import ModelFolderError
    from omni_regressor.model_loading import load_regressor

    folder = tmp_path / "qwen3"
    Qwen3OmniMoeForSentimentRegression.from_pretrained(tiny_qwen3_backbone_dir).save_pretrained(folder)
    assert type(load_regressor(folder)).__name__ == "Qwen3OmniMoeForSentimentRegression"
    weights = load_file(folder / "model.safetensors")
    save_file({key: value for key, value in weights.items() if ".experts.1." not in key}, folder / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(ModelFolderError, match=r"tensor thinker\.language_model\.layers\.\d+\.mlp\.experts\.1\."):
        load_regressor(folder)
