"""`omni-regressor space` (omni_regressor/space.py, space_app.py): the Space folder it writes, and that folder served
in an environment holding only its `requirements.txt`."""

import importlib.metadata
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import free_port, predicted_scores, requirements_only_site, run_in_site

MODEL_ID = "omni-tests/sentiment"


def test_space_command_writes_a_hub_id_space(trained_export, tmp_path):
    from omni_regressor.cli import main as cli_main
    from huggingface_hub import SpaceCard

    assert cli_main(["space", "--model", str(trained_export), "--output_dir", str(tmp_path / "space"),
                     "--model_id", MODEL_ID]) == 0
    card = SpaceCard.load(tmp_path / "space" / "README.md").data.to_dict()
    assert card["sdk"] == "gradio" and card["app_file"] == "app.py" and card["models"] == [MODEL_ID]
    assert card["sdk_version"] == importlib.metadata.version("gradio")
    assert f"SPACE_MODEL = {MODEL_ID!r}" in (tmp_path / "space" / "app.py").read_text()
    assert sorted(os.listdir(tmp_path / "space")) == ["README.md", "app.py", "requirements.txt"]
    assert cli_main(["space", "--model", str(trained_export), "--output_dir", str(tmp_path / "space")]) == 2  # not empty


def test_a_space_runs_with_only_its_requirements_and_its_score_endpoint_gives_predicts_score(
        trained_export, test_split_records, tmp_path):
    from gradio_client import Client, handle_file

    from omni_regressor.space import write_space

    space = write_space(str(trained_export), tmp_path / "space")  # the model bundled as model/
    assert (space / "model" / "model.safetensors").is_file()
    site = requirements_only_site((space / "requirements.txt").read_text().split(), tmp_path / "env")
    port = free_port()
    app = ("import runpy, sys; sys.argv = ['app.py']; runpy.run_path('app.py', run_name='__main__')")
    log = tmp_path / "space.log"
    with open(log, "w") as output:
        server = run_in_site(site, app, cwd=space, env={"GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"},
                             stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                assert server.poll() is None, log.read_text()[-3000:]
                time.sleep(1)
        else:
            pytest.fail(f"the Space did not come up: {log.read_text()[-3000:]}")
        record = test_split_records[0]
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        score, bucket, polarity, *_ = client.predict(handle_file(record.media_path), record.text, api_name="/score")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert score == pytest.approx(predicted_scores(trained_export, [record], tmp_path)[0], abs=1e-4)
