"""The web page as a person uses it (`omni-regressor serve`: omni_regressor/commands.py's serve_command, space_app.py) on
a free port, driven in a real headless Chromium (upload a clip, type a transcript, press the button, read the score),
and its `/score` API through gradio_client."""

import shutil
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from conftest import free_port
from omni_regressor.data import read_mmsa
from omni_regressor.predict import main as predict_main

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def served_page(trained_export, tmp_path_factory):
    """`omni-regressor serve` in its own process, as a user starts it; its URL once the page answers."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "omni_regressor.cli", "serve", "--model", str(trained_export), "--port", str(port)],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            assert server.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
    else:
        server.kill()
        pytest.fail(f"the page did not come up: {log.read_text()[-3000:]}")
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def clip(demo_dataset_dir):
    record = next(record for record in read_mmsa(demo_dataset_dir)[0] if record.split == "test")
    return record.media_path, record.text


@pytest.fixture(scope="module")
def predicted(trained_export, clip, tmp_path_factory):
    output = tmp_path_factory.mktemp("predicted") / "score.jsonl"
    assert predict_main(["--model", str(trained_export), clip[0], "--transcript", clip[1], "--output", str(output),
                         "--no_progress"]) == 0
    import json

    return json.loads(output.read_text().strip())


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="Debian's chromium and chromium-driver are not installed "
                    "(.ci/run installs them: apt-get install chromium chromium-driver)")
def test_the_page_in_a_real_browser_shows_the_score_predict_gives(served_page, clip, predicted, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1400"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        browser.get(served_page)
        WebDriverWait(browser, 60).until(lambda page: page.find_elements(By.CSS_SELECTOR, "input[type=file]"))
        browser.find_elements(By.CSS_SELECTOR, "input[type=file]")[0].send_keys(clip[0])  # the clip upload
        WebDriverWait(browser, 60).until(lambda page: page.find_elements(By.XPATH, "//*[contains(text(), '.mp4')]"))
        browser.find_element(By.CSS_SELECTOR, "#transcript textarea").send_keys(clip[1])
        browser.find_element(By.CSS_SELECTOR, "#score-button").click()
        WebDriverWait(browser, 180).until(lambda page: page.find_element(By.CSS_SELECTOR, "#message").text.strip())
        message = browser.find_element(By.CSS_SELECTOR, "#message").text
        page_score = float(browser.find_element(By.CSS_SELECTOR, "#score input").get_attribute("value"))
        bucket = browser.find_element(By.CSS_SELECTOR, "#bucket textarea, #bucket input").get_attribute("value")
        polarity = browser.find_element(By.CSS_SELECTOR, "#polarity textarea, #polarity input").get_attribute("value")
        browser.save_screenshot(str(tmp_path / "page.png"))
    finally:
        browser.quit()
    assert message.startswith("Scored on text, audio, video")
    assert page_score == pytest.approx(predicted["score"], abs=1e-4)  # the page shows 4 decimals
    assert int(bucket) == predicted["label_bucket"] and polarity == predicted["acc2"]


def test_the_score_endpoint_answers_gradio_client_like_predict(served_page, clip, predicted):
    from gradio_client import Client, handle_file

    client = Client(served_page, verbose=False)
    assert "/score" in client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for subtitles in ((None,), ()):  # the published call is (clip, transcript); subtitles are optional
        score, bucket, polarity, attribution, timeline, message = client.predict(
            handle_file(clip[0]), clip[1], *subtitles, api_name="/score"
        )
        assert score == pytest.approx(predicted["score"], abs=1e-4) and int(bucket) == predicted["label_bucket"]
        assert polarity == predicted["acc2"] and attribution is not None and timeline is None  # short: no timeline


def test_a_file_that_is_not_a_video_is_a_message_on_the_page(served_page, tmp_path):
    from gradio_client import Client, handle_file

    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    client = Client(served_page, verbose=False)
    score, bucket, _, attribution, _, message = client.predict(handle_file(str(fake)), "", None, api_name="/score")
    assert score is None and bucket == "" and attribution is None
    assert message.startswith("Could not score this file:") and "Traceback" not in message


def test_a_long_clip_gets_a_timeline_with_its_subtitles(served_page, tmp_path):
    from gradio_client import Client, handle_file

    from omni_regressor.media import write_clip

    seconds = 24
    frames = np.stack([np.full((48, 64, 3), 10 * (index // 8), np.uint8) for index in range(8 * seconds)])
    time_axis = np.arange(seconds * 16000) / 16000
    long_clip = write_clip(tmp_path / "long.mp4", frames, 8, (0.2 * np.sin(2 * np.pi * 300 * time_axis)).astype(np.float32))
    subtitles = tmp_path / "long.srt"
    subtitles.write_text("1\n00:00:01,000 --> 00:00:05,000\nwhat a great day\n\n2\n00:00:12,000 --> 00:00:15,000\n"
                         "this was terrible\n", encoding="utf-8")
    client = Client(served_page, verbose=False)
    score, _, _, _, timeline, message = client.predict(handle_file(str(long_clip)), "", handle_file(str(subtitles)),
                                                       api_name="/score")
    assert score is not None and timeline is not None and "Timeline: 3 windows of 10 s." in message
