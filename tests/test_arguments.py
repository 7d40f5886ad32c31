"""Every command refuses a bad value in one line naming the flag (exit status 2), before any model loads; one
spelling per flag; the package never imports the training script."""

import ast
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import cli, hostile_training_flags, one_error_line
from omni_regressor.cli import COMMANDS, main as cli_main

REPO_ROOT = Path(__file__).resolve().parents[1]


def bad_value_cases(dataset: Path, model: Path):
    train = ["train", "--model_name_or_path", str(model), "--dataset_dir", str(dataset), "--output_dir", "out"]
    predict = ["predict", "--model", str(model), str(dataset)]
    evaluate = ["evaluate", "--model", str(model), "--dataset_dir", str(dataset), "--output_dir", "out"]
    return [
        ([*train, "--readout", "regression"], "--readout"),
        ([*train, "--quantization", "8bit"], "--quantization"),
        ([*train, "--lora_preset", "all"], "--lora_preset"),
        ([*train, "--loss_type", "hinge"], "--loss_type"),
        ([*train, "--dataset_format", "csv"], "--dataset_format"),
        ([*train, "--fps", "0"], "--fps"),
        ([*train, "--max_frames", "0"], "--max_frames"),
        ([*train, "--min_pixels", "0"], "--min_pixels"),
        ([*train, "--modalities", "smell"], "--modalities"),
        ([*train, "--score_range", "3"], "--score_range"),
        ([*train, "--per_device_train_batch_size", "0"], "--per_device_train_batch_size"),
        ([*train, "--num_train_epochs", "0"], "--num_train_epochs"),
        ([*train, "--head_dropout", "1.5"], "--head_dropout"),
        ([*train, "--denoise", "magic"], "--denoise"),
        (["train", "--model_name_or_path", str(model), "--dataset_dir", str(dataset / "missing"), "--output_dir", "out"], "--dataset_dir"),
        ([*predict, "--batch_size", "0"], "--batch_size"),
        ([*predict, "--device", "cuda"], "--device"),
        ([*predict, "--output", "scores.txt"], "--output"),
        ([*evaluate, "--split", "dev"], "--split"),
        ([*evaluate, "--max_frames", "-1"], "--max_frames"),
        (["check-data", str(dataset), "--dataset_format", "csv"], "--dataset_format"),
        (["tiny-backbone", "--output_dir", "out", "--backbone", "llama"], "--backbone"),
        (["params", "--arch", "70b"], "--arch"),
        (["sweep", "--modality_sets", "T,smell", *train[1:]], "--modality_sets"),
        (["zero-shot", "--model_name_or_path", str(model), "--dataset_dir", str(dataset), "--output_dir", "out", "--split", "dev"], "--split"),
        (["benchmark", "--arch", "tiny", "--random_weights", "true", "--clip_size", "big"], "--clip_size"),
    ]


def run_cli(argv) -> int:
    try:
        return cli_main(argv)
    except SystemExit as exit_info:  # argparse's own exit
        return exit_info.code


def test_bad_values_are_one_line_naming_the_flag_with_exit_status_2(demo_dataset_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "model"
    model.mkdir()
    for argv, flag in bad_value_cases(demo_dataset_dir, model):
        status = run_cli(argv)
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert status == 2, (argv, err[-2000:])
        assert len(lines) == 1 and flag in lines[0] and "Traceback" not in err, (argv, err[-2000:])
        assert lines[0].startswith(f"omni-regressor {argv[0]}: error:"), lines[0]
        assert not (tmp_path / "out").exists()


def test_a_bad_value_in_a_real_process_is_one_line_and_fast(demo_dataset_dir, tmp_path):
    """The same through the installed entry point: nothing heavy loads before the flags are checked."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "omni_regressor.cli", "train", "--model_name_or_path", str(tmp_path), "--dataset_dir",
         str(demo_dataset_dir), "--output_dir", str(tmp_path / "out"), "--max_frames", "0"],
        capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--max_frames" in result.stderr
    assert "Traceback" not in result.stderr and time.perf_counter() - started < 60
    assert not (tmp_path / "out").exists()


def test_usage_lines_name_the_subcommand_and_flags_have_one_spelling(capsys):
    for name in ("train", "predict", "evaluate", "check-data", "inspect-inputs", "params", "tiny-backbone", "compare", "sweep"):
        assert run_cli([name, "--help"]) == 0
        help_text = capsys.readouterr().out
        assert help_text.startswith(f"usage: omni-regressor {name}"), name
        # The options as argparse lists them (lines "  --flag VALUE, ..."), not mentions in descriptions.
        flags = {line.split()[0].rstrip(",") for line in help_text.splitlines() if line.startswith("  --")}
        assert flags, name
        assert not any("-" in flag[2:] for flag in flags), (name, sorted(flag for flag in flags if "-" in flag[2:]))


def test_compare_and_sweep_help_say_which_training_flags_they_pass_on(capsys):
    for name in ("compare", "sweep"):
        assert run_cli([name, "--help"]) == 0
        assert "omni-regressor train" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys):
    assert cli_main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_every_command_has_a_summary_in_the_top_level_help(capsys):
    assert cli_main(["--help"]) == 0
    help_text = capsys.readouterr().out
    assert all(f"  {name}" in help_text for name in COMMANDS)


def test_no_package_module_imports_the_training_script():
    for path in (REPO_ROOT / "omni_regressor").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert "train_with_trainer" not in imported, path
        assert not any(name == "eval" or name.startswith("eval.") for name in imported), path


def test_the_training_script_is_short_and_calls_the_run():
    source = (REPO_ROOT / "train_with_trainer.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    assert main.end_lineno - main.lineno + 1 <= 40 and "run_training" in ast.unparse(main)


def test_every_processing_flag_is_a_setting_and_reaches_the_settings():
    """The processing flags are derived from the `ProcessingSettings` fields that carry a help text (same name, help
    and choices), and given on the command line each is applied."""
    from dataclasses import fields

    from omni_regressor.arguments import SETTINGS_FLAGS, ProcessingArguments
    from omni_regressor.settings import resolve_settings
    from processing_omni_regressor import ProcessingSettings

    documented = {item.name: item.metadata for item in fields(ProcessingSettings) if "help" in item.metadata}
    flags = {item.name: item.metadata for item in fields(ProcessingArguments)}
    assert set(SETTINGS_FLAGS) == set(documented) == set(flags) - {"media_cache_dir"}
    for name, metadata in documented.items():
        assert flags[name]["help"] == metadata["help"]
        assert flags[name].get("choices") == (list(metadata["choices"]) if "choices" in metadata else None)
    values = {"modalities": "T+V", "fps": 1.5, "min_frames": 2, "max_frames": 6, "min_pixels": 28 * 28 * 4,
              "max_pixels": 28 * 28 * 8, "total_pixels": 28 * 28 * 64, "max_audio_seconds": 12.0, "denoise": "none"}
    assert set(values) == set(SETTINGS_FLAGS)
    settings, _ = resolve_settings(ProcessingArguments(**values))
    assert settings.modalities == ("text", "video")
    assert all(getattr(settings, name) == value for name, value in values.items() if name != "modalities")


# --- invalid flag values of each command (hostile inputs, issue #13) --------------------------------------------------


def _no_cuda():
    import torch

    return not torch.cuda.is_available()


FLAG_CASES = [
    ("predict", ["--max_frames", "0"], "--max_frames must be at least 2"),
    ("predict", ["--fps", "0"], "--fps must be a positive number"),
    ("predict", ["--modalities", "smell"], "--modalities: unknown modality 'smell'"),
    ("predict", ["--batch_size", "0"], "--batch_size must be at least 1"),
    pytest.param("predict", ["--device", "cuda"], "--device cuda: no CUDA device",
                 marks=pytest.mark.skipif(not _no_cuda(), reason="a CUDA device is present")),
    ("train", ["--max_frames", "0"], "--max_frames must be at least 2"),
    ("train", ["--fps", "0"], "--fps must be a positive number"),
    ("train", ["--modalities", "smell"], "--modalities: unknown modality 'smell'"),
    ("train", ["--score_range", "3"], "--score_range must be 'low,high'"),
    ("train", ["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be at least 1"),
    ("train", ["--num_train_epochs", "0"], "--num_train_epochs must be positive"),
    ("train", ["--device", "cuda"], "unrecognized arguments: --device"),
    ("evaluate", ["--fps", "0"], "--fps must be a positive number"),
    ("evaluate", ["--modalities", "smell"], "--modalities: unknown modality 'smell'"),
    ("check-data", ["--score_range", "3"], "--score_range must be 'low,high'"),
    ("check-data", ["--max_frames", "0"], "--max_frames must be at least 2"),
]


@pytest.mark.parametrize(("command", "flags", "message"), FLAG_CASES)
def test_an_invalid_flag_value_is_one_line_naming_it_with_exit_status_2_before_any_model_loads(
        command, flags, message, regressor, tiny_backbone_dir, demo_dataset_dir, tmp_path, no_model_loads):
    required = {
        "predict": ["predict", "--model", regressor, demo_dataset_dir / "Raw" / "demo_00" / "001.mp4"],
        "train": ["train", *hostile_training_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "run")],
        "evaluate": ["evaluate", "--model", regressor, "--dataset_dir", demo_dataset_dir, "--output_dir",
                     tmp_path / "eval"],
        "check-data": ["check-data", demo_dataset_dir],
    }[command]
    started = time.perf_counter()
    status, out, err = cli(*required, *flags)
    assert time.perf_counter() - started < 5
    assert status == 2
    one_error_line(err, f"omni-regressor {command}: error:", message)
    assert out == "" and not (tmp_path / "run").exists() and not (tmp_path / "eval").exists()


def test_an_invalid_flag_value_exits_2_from_a_real_process(regressor, demo_dataset_dir):
    command = [sys.executable, "-m", "omni_regressor.cli", "predict", "--model", str(regressor),
               str(demo_dataset_dir / "Raw" / "demo_00" / "001.mp4"), "--max_frames", "0"]
    finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2
    one_error_line(finished.stderr, "omni-regressor predict: error: --max_frames must be at least 2")
