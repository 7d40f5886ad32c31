"""Peak memory of a phase of this process, split the way it matters on a CPU run of a memory-mapped checkpoint:

- `anon`: anonymous pages (`RssAnon` in /proc/self/status): what the process allocated — weights copied or quantised,
  activations, gradients, optimizer state. Sampled by a thread (the kernel keeps no peak of it).
- `file`: file-backed pages (`RssFile`): mostly the memory-mapped safetensors of the checkpoint, which the kernel can
  drop and re-read at will; counted in RSS, not allocated.
- `rss_hwm`: the kernel's exact peak RSS (`VmHWM`, anon + file + shmem), reset at the start of each phase through
  /proc/self/clear_refs.
- `cuda_max_allocated`: the CUDA caching allocator's peak, when a GPU is used.

    meter = PhaseMemory()
    with meter.phase("train_step"):
        ...
    meter.peaks["train_step"]  # {"anon_mb": ..., "file_mb": ..., "rss_hwm_mb": ..., ...}
"""

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch

STATUS = Path("/proc/self/status")
FIELDS = ("RssAnon", "RssFile", "VmHWM", "VmRSS")


def read_status() -> dict[str, int]:
    """The memory fields of /proc/self/status in bytes ({} where there is no /proc)."""
    try:
        lines = STATUS.read_text().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if name in FIELDS:
            values[name] = int(rest.split()[0]) * 1024  # reported in kB
    return values


def reset_rss_peak() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0); False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class PhaseMemory:
    """Named phases, each with its peaks (MB). A sampling thread runs only inside a phase."""

    def __init__(self, interval_seconds: float = 0.02, log=None):
        self.interval_seconds = interval_seconds
        self.log = log  # a text stream: one JSON line per finished phase (what a run cut short has measured)
        self.peaks: dict[str, dict] = {}

    @contextmanager
    def phase(self, name: str):
        peak = {"RssAnon": 0, "RssFile": 0}
        stop = threading.Event()

        def sample():
            while True:
                status = read_status()
                for field in peak:
                    peak[field] = max(peak[field], status.get(field, 0))
                if stop.wait(self.interval_seconds):
                    return

        started = time.perf_counter()
        hwm_reset = reset_rss_peak()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        sampler = threading.Thread(target=sample, name=f"memory-{name}", daemon=True)
        sampler.start()
        try:
            yield
        finally:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            stop.set()
            sampler.join()
            status = read_status()
            for field in peak:  # the last sample, taken after the phase's work
                peak[field] = max(peak[field], status.get(field, 0))
            self.peaks[name] = {
                "anon_mb": round(peak["RssAnon"] / 2**20, 1),
                "file_mb": round(peak["RssFile"] / 2**20, 1),
                "rss_hwm_mb": round(status.get("VmHWM", 0) / 2**20, 1) if hwm_reset else None,
                "cuda_max_allocated_mb": (round(torch.cuda.max_memory_allocated() / 2**20, 1)
                                          if torch.cuda.is_available() else None),
                "seconds": round(time.perf_counter() - started, 1),
            }
            if self.log is not None:
                print(json.dumps({"phase": name, **self.peaks[name]}), file=self.log, flush=True)


def current_mb() -> dict:
    """Anonymous and file-backed resident memory now (MB)."""
    status = read_status()
    return {"anon_mb": round(status.get("RssAnon", 0) / 2**20, 1), "file_mb": round(status.get("RssFile", 0) / 2**20, 1)}


def tensor_bytes(model: torch.nn.Module) -> int:
    """Bytes of a model's parameters and buffers, 4-bit quant states included: what it holds wherever those pages
    live (a checkpoint loaded by memory-mapping keeps its tensors file-backed: `RssFile`, not `RssAnon`)."""
    seen, total = set(), 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
        quant_state = getattr(tensor, "quant_state", None)
        for extra in (quant_state.as_dict(packed=False).values() if quant_state is not None else ()):
            if isinstance(extra, torch.Tensor):
                total += extra.numel() * extra.element_size()
    return total
