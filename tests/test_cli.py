"""The command line as users and scripts meet it: HF's flag habits, grouped help, flag files anywhere, light imports,
no network for local folders, Hub failures in one line, and every published command and flag still there."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from omni_regressor.cli import COMMANDS, main as cli_main

REPO_ROOT = Path(__file__).resolve().parents[1]

# Commands and flags that earlier issues published (beside the README's own): a rename must fail here.
PUBLISHED_INTERFACES = [
    "params --arch 7b --lora-preset paper --memory",
    "params --arch 7b --lora_preset paper --memory",
    "train --model_name_or_path M --dataset_dir D --output_dir O --readout generative --quantization 4bit "
    "--lora_preset paper --lora_r 32 --lora_alpha 32 --lora_dropout 0.1 --head_hidden_size 256 --head_dropout 0.2 "
    "--loss_type l1 --head_learning_rate 1e-3 --save_adapter_only --early_stopping_patience 2 --max_new_tokens 32 "
    "--license mit --dataset_format mmsa --labels_csv L --score_range -3,3 --dataset_name N --skip_bad_clips "
    "--modalities T+A+V --fps 2 --min_frames 4 --max_frames 16 --min_pixels 1 --max_pixels 1 --total_pixels 1 "
    "--max_audio_seconds 30 --denoise deepfilternet --media_cache_dir C --upcast_frozen_weights --results_dir R "
    "--overwrite --resume_from_checkpoint last --push_to_hub --hub_model_id H",
    "evaluate --model M --dataset_dir D --split test --output_dir O --explain --batch_size 8 --num_workers 0 "
    "--skip_bad_clips --metrics_dataset mosi --overwrite",
    "predict --model M --output O --transcript T --transcribe --resume --overwrite --explain --window 10 --hop 5 "
    "--timeline_dir T --batch_size 8 --num_workers 0 --device cpu --window_batches 4 --chunk_batches 4",
    "inspect-inputs --model M",
    "check-data --dataset_format mmsa",
    "zero-shot --model_name_or_path M --dataset_dir D --output_dir O --split test",
    "compare --modalities T+A+V",
    "sweep --modality_sets T,T+A --seeds 1 2",
    "benchmark --arch 7b --random_weights --quantization 4bit --train_step true --modalities text --num_clips 1 "
    "--repeats 1 --answer_tokens 2",
    "denoise --output OUT.wav",
    "analyze --model M --dataset_dir D --split test --output_dir O",
    "serve --model M",
    "tiny-backbone --output_dir D --backbone qwen3-omni --tokenizer qwen",
    "demo-data --output_dir D",
    "demo --output_dir D",
    "predict --model M --engine ray --ray_address A --num_scorers 2 --scorer_gpus 1 --decode_cpus 1 --trust_remote_code",
    "evaluate --model M --dataset_dir D --output_dir O --engine ray --num_scorers 2 --trust_remote_code",
    "probe --model M --dataset_dir D --output_dir O --poolings last,mean --layers all --export_best --overwrite "
    "--quantization 4bit --modalities T+A+V --max_pixels 1",
    "space --model M --output_dir S --model_id USER/NAME",
    "train --model_name_or_path M --dataset_dir D --output_dir O --pooling mean --readout_layer 1 --base_model_id U/N",
]


# Commands that pass every training flag on to `omni-regressor train` (their help says so).
TRAINING_FLAG_FORWARDERS = ("compare", "sweep")


def run_cli(argv) -> int:
    try:
        return cli_main(argv)
    except SystemExit as exit_info:
        return exit_info.code


def command_flags(command: str, capsys) -> set[str]:
    """The flags `command --help` lists (each also accepted with dashes), a flag's former names beside it."""
    assert run_cli([command, "--help"]) == 0, command
    help_text = capsys.readouterr().out
    return {flag for line in re.findall(r"^\s+--.*$", help_text, re.MULTILINE)
            for flag in re.findall(r"(?:^\s+|, )(--[A-Za-z0-9_]+)", line)}


def interfaces_in_readme() -> list[str]:
    """Every `omni-regressor <command> ...` line of the README's and docs/' code blocks."""
    lines = []
    for path in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        fenced = re.findall(r"^```([a-z]*)\n(.*?)^```", path.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE)
        for block in [block for language, block in fenced if language in ("", "bash", "sh", "console")]:
            for line in block.replace("\\\n", " ").splitlines():
                match = re.search(r"(?:^|\s)omni-regressor ([a-z][a-z-]*)(?=\s|$)(.*)", line)
                if match and match.group(1) in COMMANDS:
                    lines.append(f"{match.group(1)}{match.group(2)}")
    return lines


def test_every_published_command_and_flag_is_accepted(capsys):
    lines = PUBLISHED_INTERFACES + interfaces_in_readme()
    assert len(lines) > len(PUBLISHED_INTERFACES)  # the README's commands were found
    flags_of = {}
    for line in lines:
        command, *words = line.split()
        if command not in flags_of:
            flags_of[command] = command_flags(command, capsys)
            if command in TRAINING_FLAG_FORWARDERS:
                flags_of[command] |= command_flags("train", capsys)
        for word in words:
            if word.startswith("--"):
                flag = word.split("=", 1)[0].replace("-", "_").replace("__", "--", 1)
                assert flag in flags_of[command], (line, flag)


def test_dashed_and_underscored_flags_give_the_same_result(capsys):
    outputs = []
    for spelling in ("--lora-preset", "--lora_preset"):
        assert run_cli(["params", "--arch", "7b", spelling, "paper"]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1] and outputs[0]


def test_the_former_window_batches_flag_sets_chunk_batches_in_every_spelling(capsys):
    from omni_regressor.predict import parse_arguments

    values = {spelling: parse_arguments(["--model", "M", spelling, "3", "clip.mp4"])[0].chunk_batches
              for spelling in ("--chunk_batches", "--chunk-batches", "--window_batches", "--window-batches")}
    assert set(values.values()) == {3} and parse_arguments(["--model", "M", "clip.mp4"])[0].chunk_batches == 4
    assert run_cli(["predict", "--model", "M", "--window_batches", "0", "clip.mp4"]) == 2
    assert "--chunk_batches must be at least 1, got 0." in capsys.readouterr().err
    assert run_cli(["predict", "--help"]) == 0
    assert re.search(r"^\s+--chunk_batches CHUNK_BATCHES, --window_batches", capsys.readouterr().out, re.MULTILINE)


def test_train_help_has_a_heading_per_argument_group_and_the_common_flags_first(capsys):
    assert run_cli(["train", "--help"]) == 0
    help_text = capsys.readouterr().out
    headings = [line[:-1] for line in help_text.splitlines() if line and not line.startswith(" ") and line.endswith(":")]
    order = ["model", "data", "processing", "training (the common flags)", "training (every other"]
    positions = [next(i for i, heading in enumerate(headings) if heading.startswith(name)) for name in order]
    assert positions == sorted(positions), headings
    common, rest = help_text.split("training (every other")
    assert "--learning_rate" in common and "--num_train_epochs" in common and "--output_dir" in common
    assert "--adam_beta1" in rest and "--adam_beta1" not in common
    assert len(help_text.split("options:")[0].splitlines()) < 5  # a short usage line, not every flag


def test_a_flag_file_anywhere_on_the_command_line_and_later_flags_override_it(tmp_path, demo_dataset_dir):
    from omni_regressor.arguments import parse_training_arguments

    flags = tmp_path / "flags.yaml"
    flags.write_text(f"dataset_dir: {demo_dataset_dir}\nlora_r: 8\nseed: 11\nfps: 1.5\n")
    model_args, data_args, processing_args, training_args = parse_training_arguments(
        ["--model_name_or_path", "M", "--seed", "5", str(flags), "--output_dir", str(tmp_path / "out"), "--lora-r", "4"])
    assert model_args.lora_r == 4  # after the file: overrides it
    assert training_args.seed == 11  # before the file: the file overrides it
    assert processing_args.fps == 1.5 and data_args.dataset_dir == str(demo_dataset_dir)


def test_a_json_value_of_a_flag_stays_that_flags_value(tmp_path):
    from omni_regressor.arguments import training_parser

    parser = training_parser()
    argv = ["--deepspeed", "ds.json", "--model_name_or_path", "M"]
    assert parser.expand_flag_files(argv) == argv


def _probe_imports(argv: list[str], cwd: Path) -> dict:
    """Runs the CLI in a fresh process; -> exit status, stderr and whether peft / bitsandbytes were imported."""
    code = (
        "import json, sys\n"
        "from omni_regressor.cli import main\n"
        "try:\n    status = main(sys.argv[1:])\nexcept SystemExit as exit_info:\n    status = exit_info.code\n"
        "print(json.dumps({'status': status, 'peft': 'peft' in sys.modules, 'bnb': 'bitsandbytes' in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=cwd,
                            stdin=subprocess.DEVNULL, timeout=600)
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "stderr": result.stderr}


def test_commands_that_neither_train_nor_quantise_import_neither_peft_nor_bitsandbytes(trained_export, demo_dataset_dir,
                                                                                       tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    clip = next((demo_dataset_dir / "Raw").rglob("*.mp4"))
    commands = (
        ["check-data", "--help"],
        ["predict", "--help"],
        ["evaluate", "--help"],
        ["inspect-inputs", "--model", str(trained_export), str(clip)],
        ["predict", "--model", str(trained_export), str(clip), "--output", str(tmp_path / "scores.csv"), "--no_progress"],
        ["evaluate", "--model", str(trained_export), "--dataset_dir", str(demo_dataset_dir), "--output_dir",
         str(tmp_path / "eval")],
    )
    with ThreadPoolExecutor(max_workers=2) as pool:  # fresh processes, two at a time (one per core)
        probes = list(pool.map(lambda argv: _probe_imports(argv, tmp_path), commands))
    for argv, probe in zip(commands, probes):
        assert probe["status"] == 0, (argv, probe["stderr"][-3000:])
        assert not probe["peft"] and not probe["bnb"], argv


def test_bitsandbytes_loads_without_a_hub_kernel_look_up_or_a_line():
    """`kernels.get_kernel` is replaced by a recorder; importing bitsandbytes through the package calls it never (on
    CPUs with AVX512-BF16 bitsandbytes would fetch a kernel from the Hub with it) and prints nothing."""
    code = (
        "import kernels, omni_regressor\n"
        "calls = []\n"
        "def get_kernel(*args, **kwargs):\n    calls.append(args)\n    raise RuntimeError('no Hub here')\n"
        "kernels.get_kernel = get_kernel\n"
        "import bitsandbytes, peft\n"
        "from transformers import TrainingArguments\n"
        "print(len(calls))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                            stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "0" and result.stderr == ""


def test_the_hub_kernel_line_is_dropped_by_exact_text_and_other_lines_stay():
    import logging

    from omni_regressor.quiet import BITSANDBYTES_CPU_BACKEND, HUB_KERNEL_MESSAGE, HubKernelFilter

    def record(message):
        return logging.LogRecord(BITSANDBYTES_CPU_BACKEND, logging.WARNING, __file__, 1, message, None, None)

    assert not HubKernelFilter().filter(record(f"{HUB_KERNEL_MESSAGE}: no network. Please make sure ..."))
    assert HubKernelFilter().filter(record("Failed to load something else"))


class SilentProxy:
    """A local proxy that accepts connections and never answers (what hangs a Hub look-up); counts connections."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.server.settimeout(0.2)
        self.connections, self.held, self.running = 0, [], True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def _accept(self):
        while self.running:
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.connections += 1
            self.held.append(connection)

    def close(self):
        self.running = False
        self.thread.join()
        for connection in self.held:
            connection.close()
        self.server.close()


def test_commands_on_local_folders_make_no_connection_behind_a_proxy_that_never_answers(trained_export,
                                                                                      demo_dataset_dir, tmp_path):
    clip = next((demo_dataset_dir / "Raw").rglob("*.mp4"))
    proxy = SilentProxy()
    environment = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "NO_PROXY", "no_proxy")}
    environment.update({name: proxy.url for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY")})
    executable = shutil.which("omni-regressor") or sys.executable
    prefix = [executable] if executable.endswith("omni-regressor") else [sys.executable, "-m", "omni_regressor.cli"]
    try:
        for argv in (["check-data", "--help"],
                     ["predict", "--model", str(trained_export), str(clip), "--output", str(tmp_path / "s.csv")]):
            started = time.perf_counter()
            result = subprocess.run([*prefix, *argv], capture_output=True, text=True, env=environment, cwd=tmp_path,
                                    stdin=subprocess.DEVNULL, timeout=300)
            assert result.returncode == 0, (argv, result.stderr[-3000:])
            # Only the command's own lines and progress bars (the model's loading included); no library warning.
            own = re.compile(r"^(scoring|Loading weights|\d+ of \d+ clips|\d+ clips scored on fewer modalities|\s*$)")
            assert all(own.match(line) for line in result.stderr.splitlines()), result.stderr[-3000:]
            assert time.perf_counter() - started < 240
        assert proxy.connections == 0
    finally:
        proxy.close()


def test_a_hub_id_that_cannot_be_fetched_is_one_line_naming_it(tmp_path, demo_dataset_dir):
    clip = next((demo_dataset_dir / "Raw").rglob("*.mp4"))
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    commands = (["predict", "--model", "someone/not-cached-anywhere", str(clip)],
                ["train", "--model_name_or_path", "someone/not-cached-anywhere", "--dataset_dir", str(demo_dataset_dir),
                 "--output_dir", str(tmp_path / "out")])
    started = [subprocess.Popen([sys.executable, "-m", "omni_regressor.cli", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=environment, cwd=tmp_path,
                                stdin=subprocess.DEVNULL) for argv in commands]  # both at once, one per core
    for argv, process in zip(commands, started):
        _, stderr = process.communicate(timeout=300)
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert process.returncode == 2 and len(lines) == 1, (argv, stderr[-3000:])
        assert "'someone/not-cached-anywhere'" in lines[0] and "HF_HUB_OFFLINE" in lines[0] and "local folder" in lines[0]

