"""The Hub folder is the product (its code files: modeling_, processing_, pipeline_omni_regressor.py): scoring with only
the download, adapters through peft's own API, `AutoProcessor` for the folder, packaging, the results table. Fresh
processes here cannot import this package (an import blocker), as on a user's machine."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import predicted_scores, run_fresh


def test_the_cards_first_snippet_scores_clips_in_a_fresh_process_like_predict(trained_export, test_split_records, tmp_path):
    card = (trained_export / "README.md").read_text(encoding="utf-8")
    snippet = re.findall(r"```python\n(.*?)```", card, flags=re.DOTALL)[0]
    record = test_split_records[0]
    script = snippet.replace('"clip.mp4"', repr(record.media_path)).replace("I really liked this movie.", record.text)
    script = script.replace('"path/to/model"', repr(str(trained_export)))  # the card names no path of this machine
    single = float(run_fresh(script, cwd=tmp_path))
    batch_script = textwrap.dedent(
        """
        import json, sys
        from transformers import pipeline
        sentiment = pipeline("omni-sentiment-regression", model=sys.argv[1], trust_remote_code=True)
        items = json.loads(sys.argv[2])
        print(json.dumps([result["score"] for result in sentiment(items, batch_size=2)]))
        """
    )
    items = [{"path": record.media_path, "transcript": record.text} for record in test_split_records]
    batch = json.loads(run_fresh(batch_script, trained_export, json.dumps(items), cwd=tmp_path))
    expected = predicted_scores(trained_export, test_split_records, tmp_path)
    assert single == pytest.approx(expected[0], abs=1e-4)
    np.testing.assert_allclose(batch, expected, atol=1e-4)


ADAPTER_SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    from peft import PeftModel
    from transformers import AutoModel

    adapter, batch_file, base_path = sys.argv[1], sys.argv[2], sys.argv[3]
    batch = torch.load(batch_file)
    # The local base is named by a placeholder in the export (no path of the training machine): given here.
    base = AutoModel.from_pretrained(adapter, trust_remote_code=True, base_model_name_or_path=base_path)
    step_by_step = PeftModel.from_pretrained(base, adapter).eval()
    with torch.no_grad():
        print(json.dumps({"peft_model": step_by_step(**batch).logits.tolist(),
                          "head_width": step_by_step.base_model.model.head.modules_to_save["default"].dense.out_features}))
    """
)


def test_the_adapter_loads_with_peft_in_a_fresh_process_with_its_head(trained_run, tiny_backbone_dir, test_split_records, tmp_path):
    from transformers import AutoModel, AutoProcessor

    from processing_omni_regressor import ClipEncoder

    output_dir, summary = trained_run
    merged = AutoModel.from_pretrained(output_dir / "model", trust_remote_code=True).eval()
    encoder = ClipEncoder.for_config(merged.config, AutoProcessor.from_pretrained(output_dir / "model"))
    batch = dict(encoder.encode_batch([record.text for record in test_split_records[:3]], [record.media_path for record in test_split_records[:3]]))
    torch.save(batch, tmp_path / "batch.pt")
    with torch.no_grad():
        expected = merged(**batch).logits
    moved = shutil.copytree(output_dir / "adapter", tmp_path / "elsewhere" / "adapter")  # loads after a move
    loaded = json.loads(run_fresh(ADAPTER_SCRIPT, moved, tmp_path / "batch.pt", tiny_backbone_dir, cwd=tmp_path))
    assert loaded["head_width"] == 16  # the trained head's size, from the adapter folder's config
    # (AutoPeftModelForSequenceClassification from the adapter's Hub repository: test_export.)
    torch.testing.assert_close(torch.tensor(loaded["peft_model"]), expected, atol=1e-4, rtol=1e-4)


def test_installing_puts_no_generic_module_on_the_import_path(tmp_path):
    script = textwrap.dedent(
        """
        import importlib, importlib.metadata, json, sys
        sys.path = [p for p in sys.path if p not in ("", ".")]
        found = {}
        for name in ("eval", "train_with_trainer", "benchmarks", "omni_regressor.eval.metrics", "processing_omni_regressor"):
            try:
                importlib.import_module(name)
                found[name] = True
            except ModuleNotFoundError:
                found[name] = False
        metadata = importlib.metadata.metadata("omni-regressor")
        found["license"] = metadata.get("License-Expression") or metadata.get("License")
        print(json.dumps(found))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": ""})
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"eval": False, "train_with_trainer": False, "benchmarks": False,
                     "omni_regressor.eval.metrics": True, "processing_omni_regressor": True, "license": "Apache-2.0"}
    assert (Path(__file__).resolve().parents[1] / "LICENSE").read_text().count("Apache License") == 1


def test_each_run_appends_a_row_to_the_datasets_results_csv(trained_run, demo_dataset_dir):
    output_dir, summary = trained_run
    results = Path(summary["results_csv"])
    assert results == (output_dir.parent / "results" / f"{demo_dataset_dir.name}.csv").resolve()
    with open(results, newline="") as file:
        rows = list(csv.DictReader(file))
    (row,) = [row for row in rows if row["output_dir"] == str(output_dir)]
    assert row["modalities"] == "T+A+V" and row["seeds"] == "7" and row["runs"] == "1" and row["readout"] == "discriminative"
    assert float(row["MAE_mean"]) == pytest.approx(summary["test_metrics"]["MAE"], abs=1e-4) and float(row["MAE_std"]) == 0.0


def test_the_processor_takes_a_path_or_a_decoded_clip_and_batches_like_the_pipeline(trained_export, test_split_records):
    import torch
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(trained_export, trust_remote_code=True)
    records = test_split_records[:2]
    by_path = processor([record.media_path for record in records], [record.text for record in records])
    decoded = [processor.encoder.decode(record.media_path) for record in records]
    by_clip = processor(decoded, [record.text for record in records])
    expected = processor.encoder.collate([processor.encoder.encode(record.text, clip) for record, clip in zip(records, decoded)])
    assert by_path.keys() == by_clip.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(by_path[key], value)
            torch.testing.assert_close(by_clip[key], value)
    # Without trust_remote_code, the folder still gives the backbone's own processor.
    assert type(AutoProcessor.from_pretrained(trained_export)).__name__ == "Qwen2_5OmniProcessor"
