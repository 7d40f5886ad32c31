"""Exporting a run (omni_regressor/export.py, requirements.py, model_card.py): a model folder that scores from a copy
in an environment holding only its `requirements.txt`, no path of the training machine and no pickle in any exported
file, an adapter that loads after a copy or an upload, card results that are the exported folder's own, the push.

The Hub here is a local fake: uploads land in a Hugging Face cache layout that fresh processes read offline
(`HF_HUB_CACHE`, `HF_HUB_OFFLINE=1`), exactly as they read a downloaded repository."""

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import BLOCK_PACKAGE, REPO_ROOT, predicted_scores, requirements_only_site, run_in_site, training_flags

BASE_ID, MODEL_ID, DATASET_ID = "omni-tests/tiny-omni", "omni-tests/sentiment", "omni-tests/demo-sentiment"
PACKAGE_MODULES = ("omni_regressor", "configuration_omni_regressor", "modeling_omni_regressor",
                   "processing_omni_regressor", "pipeline_omni_regressor", "train_with_trainer")


class FakeHub:
    """`HfApi.create_repo` / `upload_folder` writing into a Hugging Face cache layout (one snapshot per upload)."""

    def __init__(self, cache_dir: Path):
        self.cache_dir = cache_dir
        self.uploads = []

    def add(self, repo_id: str, folder) -> str:
        repo = self.cache_dir / f"models--{repo_id.replace('/', '--')}"
        commit = f"{len(self.uploads) + 1:040x}"
        shutil.copytree(folder, repo / "snapshots" / commit, dirs_exist_ok=True)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        self.uploads.append((repo_id, sorted(path.name for path in Path(folder).iterdir())))
        return commit

    def patch(self, monkeypatch):
        import huggingface_hub

        hub = self

        def create_repo(api, repo_id, private=None, exist_ok=False, **kwargs):
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(api, repo_id, folder_path, commit_message=None, **kwargs):
            commit = hub.add(repo_id, folder_path)
            return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/{commit}"})()

        monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
        monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)


@pytest.fixture(scope="module")
def hub_run(tiny_backbone_dir, demo_dataset_dir, tmp_path_factory):
    """A run that names its local base by a Hub id, its dataset, its licence, and pushes to the (fake) Hub, where the
    base was uploaded before: (output_dir, summary, hub)."""
    import train_with_trainer

    hub = FakeHub(tmp_path_factory.mktemp("fake-hub"))
    hub.add(BASE_ID, tiny_backbone_dir)
    output_dir = tmp_path_factory.mktemp("hub-train") / "run"
    flags = training_flags(tiny_backbone_dir, demo_dataset_dir, output_dir, "--num_train_epochs", "1",
                           "--base_model_id", BASE_ID, "--hub_model_id", MODEL_ID, "--push_to_hub", "true",
                           "--dataset_name", DATASET_ID, "--license", "apache-2.0", "--results_dir", "none")
    with pytest.MonkeyPatch.context() as monkeypatch:
        hub.patch(monkeypatch)
        summary = train_with_trainer.main(flags)
    return output_dir, summary, hub


SCORE_FROM_A_COPY = textwrap.dedent(
    """
    import importlib.util, json, sys
    missing = [name for name in ("omni_regressor", "peft", "bitsandbytes", "datasets", "pandas")
               if importlib.util.find_spec(name) is not None]
    assert not missing, f"importable without being required: {missing}"
    import torch
    from transformers import AutoModel, AutoProcessor, pipeline

    folder, clip, transcript = sys.argv[1:4]
    sentiment = pipeline("omni-sentiment-regression", model=folder, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        by_processor = model(**processor(clip, transcript)).logits.tolist()
    print(json.dumps({"pipeline": sentiment(clip, transcript=transcript)["score"], "processor": by_processor,
                      "processor_class": type(processor).__name__}))
    """
)


def test_requirements_carry_the_ranges_of_setup_py_and_the_card_installs_them(trained_export):
    setup = ast.parse((REPO_ROOT / "setup.py").read_text(encoding="utf-8"))
    call = next(node for node in ast.walk(setup) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup")
    install_requires = ast.literal_eval(next(keyword.value for keyword in call.keywords if keyword.arg == "install_requires"))
    ranges = {canonicalize_name(Requirement(line).name): Requirement(line).specifier for line in install_requires}
    lines = (trained_export / "requirements.txt").read_text(encoding="utf-8").split()
    names = [canonicalize_name(Requirement(line).name) for line in lines]
    assert names == ["torch", "torchvision", "transformers", "av", "numpy"]
    for line in lines:
        requirement = Requirement(line)
        assert requirement.specifier == ranges[canonicalize_name(requirement.name)], line  # setup.py's own range
        assert importlib.metadata.version(requirement.name) in requirement.specifier  # what is tested satisfies it
    card = (trained_export / "README.md").read_text(encoding="utf-8")
    install = re.search(r"```bash\n(pip install .*)\n```", card).group(1)
    assert [word.strip('"') for word in install.split()[2:]] == lines
    # Every top-level import of the folder's code is the standard library's or a required distribution's.
    provided = {module for module, dists in importlib.metadata.packages_distributions().items()
                if any(canonicalize_name(dist) in names for dist in dists)}
    for code in trained_export.glob("*.py"):
        tree = ast.parse(code.read_text(encoding="utf-8"))
        for node in tree.body:
            modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                       else [node.module] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for module in modules:
                top = module.split(".")[0]
                assert top in sys.stdlib_module_names or top in provided or top in PACKAGE_MODULES[1:], (code.name, top)
    assert not (trained_export / "app.py").exists()


def test_a_copied_folder_scores_with_only_its_requirements_installed_like_predict(trained_export, test_split_records, tmp_path):
    lines = (trained_export / "requirements.txt").read_text(encoding="utf-8").split()
    site = requirements_only_site(lines, tmp_path / "env")
    copy = shutil.copytree(trained_export, tmp_path / "elsewhere" / "sentiment-model")
    record = test_split_records[0]
    result = run_in_site(site, SCORE_FROM_A_COPY, copy, record.media_path, record.text, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    expected = predicted_scores(trained_export, [record], tmp_path)[0]
    assert scores["processor_class"] == "OmniRegressorProcessor"
    assert scores["pipeline"] == pytest.approx(expected, abs=1e-4)
    assert scores["processor"][0] == pytest.approx(expected, abs=1e-4)


def test_no_exported_file_holds_a_path_of_the_training_machine_or_a_pickle(trained_run, hub_run, tiny_backbone_dir,
                                                                             demo_dataset_dir, tmp_path_factory):
    from safetensors import safe_open

    machine_paths = {str(tmp_path_factory.getbasetemp()), str(REPO_ROOT), str(Path(tiny_backbone_dir).resolve()),
                     str(Path(demo_dataset_dir).resolve()), os.path.expanduser("~") + os.sep}
    for output_dir in (trained_run[0], hub_run[0]):
        for folder in ("model", "adapter"):
            files = [path for path in (output_dir / folder).rglob("*") if path.is_file()]
            assert files and not any(path.suffix in (".bin", ".pt", ".pkl", ".pth") for path in files)
            for path in files:
                data = path.read_bytes()
                if path.suffix == ".safetensors":
                    with safe_open(str(path), "pt") as weights:
                        assert weights.keys()
                    continue
                assert not data.startswith((b"\x80", b"PK\x03\x04")), f"{path} looks like a pickle"
                text = data.decode("utf-8")
                for machine_path in machine_paths:
                    assert machine_path not in text, f"{path} names {machine_path}"
        assert not (output_dir / "adapter" / "app.py").exists() and not (output_dir / "adapter" / "requirements.txt").exists()
    # How each file names the base instead: the Hub id the user gave, or the placeholder the card explains.
    local_config = json.loads((trained_run[0] / "model" / "config.json").read_text())
    assert local_config["base_model_name_or_path"] == f"local:{Path(tiny_backbone_dir).name}"
    assert "`local:" in (trained_run[0] / "model" / "README.md").read_text() and "--base_model_id" in (
        trained_run[0] / "model" / "README.md").read_text()
    hub_output = hub_run[0]
    assert json.loads((hub_output / "model" / "config.json").read_text())["base_model_name_or_path"] == BASE_ID
    assert json.loads((hub_output / "adapter" / "config.json").read_text())["base_model_name_or_path"] == BASE_ID
    assert json.loads((hub_output / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] == f"{MODEL_ID}-adapter"


def test_push_uploads_the_model_and_the_adapter_to_their_repositories(hub_run):
    _, summary, hub = hub_run
    uploaded = dict(hub.uploads)
    assert set(uploaded) == {BASE_ID, MODEL_ID, f"{MODEL_ID}-adapter"}
    assert {"model.safetensors", "README.md", "requirements.txt", "processing_omni_regressor.py"} <= set(uploaded[MODEL_ID])
    assert {"adapter_model.safetensors", "adapter_config.json", "config.json"} <= set(uploaded[f"{MODEL_ID}-adapter"])
    assert set(summary["hub_commits"]) == {"model", "adapter"}


ADAPTER_FROM_ANYWHERE = textwrap.dedent(
    """
    import json, sys, torch
    from peft import AutoPeftModelForSequenceClassification, PeftModel
    from transformers import AutoModel

    source, batch_file = sys.argv[1], sys.argv[2]
    batch = torch.load(batch_file)
    outputs = {}
    base = AutoModel.from_pretrained(source, trust_remote_code=True)
    with torch.no_grad():
        outputs["peft_model"] = PeftModel.from_pretrained(base, source).eval()(**batch).logits.tolist()
        if not source.startswith("/"):  # a Hub id: peft's auto class loads the base the adapter config names
            auto = AutoPeftModelForSequenceClassification.from_pretrained(source, trust_remote_code=True).eval()
            outputs["auto_peft"] = auto(**batch).logits.tolist()
    print(json.dumps(outputs))
    """
)


def merged_logits_and_batch(output_dir, records, tmp_path):
    import torch
    from transformers import AutoModel, AutoProcessor

    merged = AutoModel.from_pretrained(output_dir / "model", trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(output_dir / "model", trust_remote_code=True)
    batch = dict(processor([record.media_path for record in records], [record.text for record in records]))
    torch.save(batch, tmp_path / "batch.pt")
    with torch.no_grad():
        return merged(**batch).logits, tmp_path / "batch.pt"


def run_blocked(script, *args, cwd, env=None):
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_PACKAGE + script, *map(str, args)], capture_output=True, text=True, cwd=cwd,
        env={**os.environ, "PYTHONPATH": "", "HF_HUB_OFFLINE": "1", **(env or {})}, stdin=subprocess.DEVNULL,
    )
    return result


def test_an_adapter_of_a_local_base_says_what_to_pass(trained_run, tiny_backbone_dir, tmp_path):
    from transformers import AutoModel

    # (Loading it with the base's folder, after a copy: test_hub_folder.)
    copy = shutil.copytree(trained_run[0] / "adapter", tmp_path / "moved" / "adapter")
    expected = rf"local base checkpoint \('{re.escape(tiny_backbone_dir.name)}'\).*base_model_name_or_path="
    with pytest.raises(ValueError, match=expected):
        AutoModel.from_pretrained(copy, trust_remote_code=True)


def test_the_uploaded_adapter_loads_from_the_hub_and_a_copy_with_peft(hub_run, test_split_records, tmp_path):
    import torch

    output_dir, _, hub = hub_run
    expected, batch_file = merged_logits_and_batch(output_dir, test_split_records[:3], tmp_path)
    env = {"HF_HUB_CACHE": str(hub.cache_dir)}
    from_hub = run_blocked(ADAPTER_FROM_ANYWHERE, f"{MODEL_ID}-adapter", batch_file, cwd=tmp_path, env=env)
    assert from_hub.returncode == 0, from_hub.stderr[-4000:]
    copy = shutil.copytree(output_dir / "adapter", tmp_path / "moved" / "adapter")
    from_copy = run_blocked(ADAPTER_FROM_ANYWHERE, copy, batch_file, cwd=tmp_path, env=env)
    assert from_copy.returncode == 0, from_copy.stderr[-4000:]
    for outputs in (json.loads(from_hub.stdout.splitlines()[-1]), json.loads(from_copy.stdout.splitlines()[-1])):
        for logits in outputs.values():
            torch.testing.assert_close(torch.tensor(logits), expected, atol=1e-4, rtol=1e-4)


def test_the_cards_results_are_what_evaluate_gives_for_the_exported_folder(hub_run, demo_dataset_dir, tmp_path):
    from omni_regressor.cli import main as cli_main

    output_dir, summary, _ = hub_run
    assert cli_main(["evaluate", "--model", str(output_dir / "model"), "--dataset_dir", str(demo_dataset_dir),
                     "--output_dir", str(tmp_path / "eval"), "--num_workers", "0"]) == 0
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    card = ModelCard.load(output_dir / "model" / "README.md")
    results = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert results["MAE"] == pytest.approx(report["MAE"], abs=1e-4)
    assert results["Corr"] == pytest.approx(report["Corr"], abs=1e-4)
    assert f"| MAE | {report['MAE']:.4f} |" in card.text
    data = card.data.to_dict()
    assert data["datasets"] == [DATASET_ID] and data["license"] == "apache-2.0" and data["base_model"] == BASE_ID
    assert all(result.dataset_name == DATASET_ID for result in card.data.eval_results)
    assert "End to end from the file" in card.text and "| epochs (best) | 1 (1) |" in card.text
    assert f'pipeline("omni-sentiment-regression", model="{MODEL_ID}"' in card.text


def test_a_card_without_a_known_licence_or_dataset_says_so(trained_export):
    card = ModelCard.load(trained_export / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "other" and "licence could not be read" in card.text
    assert "datasets" not in data and "model-index" not in data  # a local dataset is not named as a Hub dataset
    assert 'model="path/to/model"' in card.text
