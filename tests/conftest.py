"""Shared fixtures, built once per session: tiny random released-layout checkpoints of both backbones (one with the
real Qwen vocabulary), their processors, a small dataset of real mp4 clips (and its test split), a trained run and its
export; for the hostile-input tests, a dataset with every hostile clip, the model trained on it with --skip_bad_clips
and a folder of hostile files. Helpers that several test files use: running a command as a user would, the scores
`predict` gives, a process that cannot import this package, an environment holding only a requirements file."""

import contextlib
import csv
import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import hostile_media as hm

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
def tiny_backbone_for(tmp_path_factory):
    """Registered backbone name -> a tiny random released-layout checkpoint of it (small-vocabulary tokenizer,
    released preprocessor settings), built once per name: tests over every backbone read the registry."""
    from omni_regressor.tiny_backbone import write_tiny_backbone

    folders = {"qwen2.5-omni": "tiny-omni", "qwen3-omni": "tiny-qwen3-omni"}
    built = {}

    def build(name: str) -> Path:
        if name not in built:
            built[name] = write_tiny_backbone(tmp_path_factory.mktemp(folders.get(name, f"tiny-{name}")), seed=0,
                                              backbone=name)
        return built[name]

    return build


@pytest.fixture(scope="session")
def tiny_backbone_dir(tiny_backbone_for) -> Path:
    """Qwen2.5-Omni, tiny shape."""
    return tiny_backbone_for("qwen2.5-omni")


@pytest.fixture(scope="session")
def tiny_qwen3_backbone_dir(tiny_backbone_for) -> Path:
    """Qwen3-Omni (MoE Thinker), tiny shape."""
    return tiny_backbone_for("qwen3-omni")


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


def small_run_flags(backbone, data, output_dir, *extra):
    """The training tests' flags, unquantised and for one epoch; the media cache sits beside `output_dir`."""
    return training_flags(backbone, data, output_dir, "--quantization", "none", "--num_train_epochs", "1", *extra)


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



@pytest.fixture(scope="session")
def test_split_records(demo_dataset_dir) -> list:
    """The demo dataset's test clips (`Record`s), in label.csv's order."""
    from omni_regressor.data import read_mmsa

    return [record for record in read_mmsa(demo_dataset_dir)[0] if record.split == "test"]


def predicted_scores(model_dir, records, tmp_path) -> list[float]:
    """The scores `omni-regressor predict` gives `records` (path and transcript) with the model in `model_dir`."""
    from omni_regressor.predict import main as predict_main

    table = tmp_path / "inputs.csv"
    table.write_text("path,text\n" + "".join(f'{record.media_path},"{record.text}"\n' for record in records), encoding="utf-8")
    output = tmp_path / "scores.jsonl"
    assert predict_main(["--model", str(model_dir), str(table), "--output", str(output), "--no_progress", "--overwrite"]) == 0
    return [json.loads(line)["score"] for line in output.read_text().splitlines()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]



SAMPLE_RATE = 16000


def speech_like_tone(seconds: float):
    import numpy as np

    time = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.2 * np.sin(2 * np.pi * 220 * time) * (1 + np.sin(2 * np.pi * 3 * time)) / 2).astype(np.float32)


def write_test_clip(path, width: int, height: int, seconds: float, fps: float = 25.0):
    import numpy as np

    from omni_regressor.media import write_clip

    frames = np.zeros((int(seconds * fps), height, width, 3), dtype=np.uint8)
    frames[:, : height // 2] = 140
    frames[:, :, : width // 3] = 60
    return write_clip(path, frames, fps, speech_like_tone(seconds), SAMPLE_RATE)


@pytest.fixture(scope="session")
def clip_360p_8s(tmp_path_factory):
    """8 s of 640x360 at 25 fps with a speech-like tone: the official sizing's 364x644 frames."""
    return write_test_clip(tmp_path_factory.mktemp("clip-360p") / "clip_360p_8s.mp4", 640, 360, 8.0)

# --- exported folders away from this package: a fresh process that cannot import it, an environment holding only
# what a requirements file installs (test_hub_folder.py, test_export.py, test_space.py) ---------------------------------

BLOCK_PACKAGE = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockPackage(importlib.abc.MetaPathFinder):
        # Only the downloaded folder is here: the package that wrote it is not importable.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"omni_regressor", "configuration_omni_regressor", "modeling_omni_regressor",
                                      "processing_omni_regressor", "pipeline_omni_regressor", "train_with_trainer"}:
                raise ImportError(f"blocked: {name}")

    sys.meta_path.insert(0, BlockPackage())
    sys.path = [p for p in sys.path if p not in ("", ".")]
    """
)


def run_fresh(script: str, *args, cwd) -> str:
    """`python -c script args` in a process that cannot import this package (as on a user's machine) -> its last line."""
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_PACKAGE + script, *map(str, args)], capture_output=True, text=True, cwd=cwd,
        env={**os.environ, "PYTHONPATH": "", "HF_HUB_OFFLINE": "1"}, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout.strip().splitlines()[-1]


def requirement_closure(lines) -> set[str]:
    """The distributions pip installs for `lines`: each requirement and, recursively, what it requires (no extras)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen, todo = set(), [Requirement(line) for line in lines]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for line in importlib.metadata.distribution(name).requires or ():
            dependency = Requirement(line)
            if dependency.marker is None or dependency.marker.evaluate({"extra": ""}):
                todo.append(dependency)
    return seen


def requirements_only_site(lines, root: Path) -> Path:
    """A site folder holding (as links) exactly the installed files of `requirement_closure(lines)`: with `python -S`
    and this folder as PYTHONPATH, a process sees what a fresh `pip install -r requirements.txt` would give it."""
    site = root / "site-packages"
    site.mkdir(parents=True)
    for name in requirement_closure(lines):
        distribution = importlib.metadata.distribution(name)
        base = Path(distribution.locate_file(""))
        for entry in {Path(str(file)).parts[0] for file in distribution.files or ()}:
            if entry in ("..", "bin") or entry.endswith(".pth") or (site / entry).exists():
                continue
            if (base / entry).exists():
                (site / entry).symlink_to(base / entry)
    return site


def run_in_site(site: Path, script: str, *args, cwd, env=None, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "HF_"))}
    environment.update({"PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1", "HF_HUB_OFFLINE": "1",
                        "HF_HOME": str(cwd / "hf-home"), **(env or {})})
    command = [sys.executable, "-S", "-c", script, *map(str, args)]
    if popen:
        return subprocess.Popen(command, cwd=cwd, env=environment, stdin=subprocess.DEVNULL, **popen)
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environment, stdin=subprocess.DEVNULL)

# --- hostile inputs: helpers and shared fixtures --------------------------------------------------------------------
# The hostile cases (issue #13) are driven through the public entry points as a user would (`omni-regressor <command>`
# in this process or in a subprocess, `train_with_trainer.main`); they live beside the module each exercises
# (test_data_checks.py, test_run.py, test_predict_inputs.py, test_media_cache.py, ...) and share what follows.


def cli(*argv) -> tuple[int, str, str]:
    """`omni-regressor ARGV` in this process -> (exit status, stdout, stderr), as a shell sees them (argparse's
    usage errors raise SystemExit(2), which is the process's exit status)."""
    from omni_regressor.cli import main as cli_main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli_main([str(value) for value in argv])
        except SystemExit as exit_request:
            status = exit_request.code
    return status, out.getvalue(), err.getvalue()


def predict(model, *argv) -> tuple[int, str, str]:
    return cli("predict", "--model", model, "--device", "cpu", "--no_progress", *argv)


PROGRESS_BAR = re.compile(r"^[^:]*: +\d+%\|")


def one_error_line(stderr: str, *fragments) -> str:
    """The user error is the only line on stderr besides progress bars, names what it is about, and is no traceback."""
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip() and not PROGRESS_BAR.match(line)]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def problem_lines(stdout: str) -> dict[str, str]:
    """check-data's `clip_id<TAB>kind<TAB>detail` lines -> {clip_id: kind}."""
    return {line.split("\t")[0]: line.split("\t")[1] for line in stdout.splitlines() if line.count("\t") >= 2}


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def digests(folder) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path (to show that nothing was touched)."""
    folder = Path(folder)
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def rewrite_modes(root, mode_of) -> Path:
    """Rewrites label.csv's `mode` column with `mode_of(old_mode)`."""
    label_csv = Path(root) / "label.csv"
    with open(label_csv, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    fieldnames = list(rows[0])
    for row in rows:
        row["mode"] = mode_of(row["mode"])
    with open(label_csv, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return Path(root)


def dataset_view(source, destination, mode_of) -> Path:
    """A dataset sharing `source`'s clips (Raw/ is a link) with other modes."""
    destination = Path(destination)
    destination.mkdir(parents=True)
    shutil.copyfile(Path(source) / "label.csv", destination / "label.csv")
    os.symlink(Path(source).resolve() / "Raw", destination / "Raw", target_is_directory=True)
    return rewrite_modes(destination, mode_of)


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fails the test if any model weights load (every regressor/backbone load goes through this classmethod)."""
    from transformers import PreTrainedModel

    def refuse(cls, *args, **kwargs):
        raise AssertionError(f"{cls.__name__} was loaded before the error was found")

    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(refuse))


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can write into: mode 0o555, and for root (who ignores modes) the immutable attribute."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    (folder / "kept.txt").write_text("kept")
    folder.chmod(0o555)
    immutable = False
    if os.access(folder, os.W_OK):
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("this user can write into any folder and cannot set the immutable attribute")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def stale_and_fresh_temporaries(cache_dir: Path) -> tuple[Path, Path]:
    """A new cache folder holding the temporary file of a writer killed two hours ago and one that another process may
    still be writing: (stale, fresh)."""
    cache_dir.mkdir()
    stale, fresh = cache_dir / ".killed-writer.abc.tmp", cache_dir / ".live-writer.def.tmp"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(stale, (two_hours_ago, two_hours_ago))
    return stale, fresh


def hostile_training_flags(backbone, root, output_dir, *extra):
    return training_flags(backbone, root, output_dir, "--num_train_epochs", "1", "--quantization", "none", *extra)


TINY, CUT, TALL = "hostile/tiny", "hostile/cut", "hostile/tall"


@pytest.fixture(scope="session")
def hostile_root(demo_dataset_dir, tmp_path_factory):
    """The demo dataset plus a 1-frame + 5 ms clip (test split), a faststart mp4 cut at 60 % and a 2x600 video (train
    split), and special-token transcripts on the first four train clips. -> (root, {transcript: clip_id})."""
    root = tmp_path_factory.mktemp("hostile") / "data"
    shutil.copytree(demo_dataset_dir, root)
    hm.tiny_clip(root / "Raw" / "hostile" / "tiny.mp4")
    hm.truncated_faststart_clip(root / "Raw" / "hostile" / "cut.mp4", keep_fraction=0.6)
    hm.extreme_aspect_clip(root / "Raw" / "hostile" / "tall.mp4")
    with open(root / "label.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    fieldnames = list(rows[0])
    train_rows = [row for row in rows if row["mode"] == "train"]
    clip_of_transcript = {}
    for row, transcript in zip(train_rows, hm.SPECIAL_TOKEN_TRANSCRIPTS):
        row["text"] = transcript
        clip_of_transcript[transcript] = f"{row['video_id']}/{row['clip_id']}"
    for clip_id, mode in (("tiny", "test"), ("cut", "train"), ("tall", "train")):
        rows.append({**rows[0], "video_id": "hostile", "clip_id": clip_id, "text": "it was okay , fine and plain",
                     "label": "0.4", "label_T": "0.4", "label_A": "0.4", "label_V": "0.4", "annotation": "Neutral",
                     "mode": mode})
    with open(root / "label.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return root, clip_of_transcript


@pytest.fixture(scope="session")
def expected_problems(hostile_root) -> dict[str, str]:
    _, clip_of_transcript = hostile_root
    return {
        TINY: "too_short_audio",
        CUT: "corrupt_file",
        TALL: "unsupported_geometry",
        clip_of_transcript[hm.TRANSCRIPT_AUDIO_TOKEN_ONLY]: "empty_transcript",  # nothing left after cleaning
    }


@pytest.fixture(scope="session")
def hostile_cache(hostile_root):
    """The media cache the hostile runs share (beside the training run's output, as `training_flags` puts it)."""
    return hostile_root[0].parent / "media-cache"


@pytest.fixture(scope="session")
def skip_run(tiny_backbone_dir, hostile_root):
    """One epoch on the hostile dataset with --skip_bad_clips (special-token transcripts among the training clips)."""
    import train_with_trainer

    output_dir = hostile_root[0].parent / "run"
    summary = train_with_trainer.main(
        hostile_training_flags(tiny_backbone_dir, hostile_root[0], output_dir, "--skip_bad_clips", "true")
    )
    return output_dir, summary


@pytest.fixture(scope="session")
def regressor(skip_run) -> Path:
    """The exported model of `skip_run`: what predict, evaluate and inspect-inputs load here."""
    return skip_run[0] / "model"


@pytest.fixture(scope="session")
def clip_folder(demo_dataset_dir, tmp_path_factory) -> Path:
    """A folder of good, odd, damaged and non-media files (the names of test_predict_inputs.FOLDER_CASES)."""
    folder = tmp_path_factory.mktemp("predict-inputs") / "clips"
    folder.mkdir()
    shutil.copyfile(demo_dataset_dir / "Raw" / "demo_00" / "001.mp4", folder / "a_good.mp4")
    shutil.copyfile(demo_dataset_dir / "Raw" / "demo_00" / "002.mp4", folder / "b_good.mp4")
    for name, builder in [("tiny", hm.tiny_clip), ("cut", hm.truncated_faststart_clip), ("tall", hm.extreme_aspect_clip),
                          ("wide", hm.wide_extreme_aspect_clip), ("rotated", hm.rotated_clip),
                          ("variable_frame_rate", hm.variable_frame_rate_clip), ("audio_only", hm.audio_only_clip),
                          ("video_only", hm.video_only_clip), ("ultra_hd", hm.ultra_hd_clip),
                          ("ten_minutes", hm.ten_minute_clip), ("zero_byte", hm.zero_byte_file),
                          ("text", hm.text_file_named_mp4), ("random", hm.random_bytes_mp4)]:
        builder(folder / f"{name}.mp4")
    hm.non_ascii_name_clip(folder)
    os.symlink(folder / "missing_target.mp4", folder / "dangling.mp4")
    os.symlink("loop.mp4", folder / "loop.mp4")
    os.symlink(".", folder / "again", target_is_directory=True)  # a folder cycle: not followed, said so
    (folder / "notes.txt").write_text("not a clip")
    return folder


# --- batches of clips of different lengths (modeling and pooling tests) --------------------------------------------


@pytest.fixture(scope="session")
def clip_paths(tmp_path_factory):
    """Three real mp4 files (H.264 + AAC) of different lengths and sizes."""
    import numpy as np

    from omni_regressor.media import write_clip

    folder = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    paths = []
    for index, (seconds, height, width) in enumerate([(1.0, 48, 64), (2.0, 64, 48), (1.5, 56, 84)]):
        fps = 8
        frames = rng.integers(0, 255, size=(int(seconds * fps), height, width, 3), dtype=np.uint8)
        times = np.arange(int(seconds * 16000)) / 16000
        audio = (0.3 * np.sin(2 * np.pi * (220 + 110 * index) * times)).astype(np.float32)
        path = folder / f"clip_{index}.mp4"
        write_clip(path, frames, fps, audio, 16000)
        paths.append(path)
    return paths


TRANSCRIPTS = ["i really loved it", "it was terrible and boring, a waste of time", "okay"]


def right_padded(batch):
    """The same batch with its token rows moved from left to right padding."""
    import torch

    batch = dict(batch)
    input_ids, attention_mask = batch["input_ids"].clone(), batch["attention_mask"].clone()
    for row in range(input_ids.shape[0]):
        length = int(attention_mask[row].sum())
        input_ids[row] = torch.roll(input_ids[row], -(input_ids.shape[1] - length))
        attention_mask[row] = torch.roll(attention_mask[row], -(input_ids.shape[1] - length))
    batch["input_ids"], batch["attention_mask"] = input_ids, attention_mask
    return batch
