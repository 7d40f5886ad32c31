"""Measuring runs: peak memory, wall time of a pass per clip, time per training stage."""

import resource
import time

import torch
from transformers import TrainerCallback


def peak_memory_bytes() -> int:
    """CUDA max allocated on this rank, or this process's peak RSS on CPU."""
    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def peak_memory_mb() -> float:
    return round(peak_memory_bytes() / 2**20, 1)


class PeakMemoryCallback(TrainerCallback):
    """Adds peak memory (MB) to every Trainer log line."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None:
            logs["peak_memory_mb"] = peak_memory_mb()


class BatchTimer(TrainerCallback):
    """Wall-clock time at the end of every batch of a pass (as a Trainer callback: every prediction step).

    `ms_per_clip` leaves the first batch out: it holds the one-off warm-up (kernel selection, first allocations),
    which would otherwise dominate small test sets. With a single batch it is all there is.
    """

    def __init__(self):
        self.start()

    def start(self):
        self.started, self.batch_ends, self.batch_sizes = time.perf_counter(), [], []

    def batch_done(self, size: int):
        self.batch_ends.append(time.perf_counter())
        self.batch_sizes.append(size)

    def on_prediction_step(self, args, state, control, **kwargs):
        self.batch_done(args.per_device_eval_batch_size * max(args.world_size, 1))

    def ms_per_clip(self, num_clips: int) -> float:
        if len(self.batch_ends) < 2:
            return 1000.0 * (self.batch_ends[-1] - self.started) / max(num_clips, 1) if self.batch_ends else float("nan")
        steady_clips = num_clips - self.batch_sizes[0]
        return 1000.0 * (self.batch_ends[-1] - self.batch_ends[0]) / max(steady_clips, 1)


class StageClock:
    """Seconds spent per stage of a training run (`data_wait`, `forward_backward`, `evaluation`).

    `data_wait_fraction` = data wait / (data wait + forward/backward): the share of the training steps' time spent
    waiting for the next batch (0 when the input workers keep up). `dataloader_num_workers` is what the training
    DataLoader ran with.
    """

    def __init__(self):
        self.seconds = {"data_wait": 0.0, "forward_backward": 0.0, "evaluation": 0.0}
        self.dataloader_num_workers = None

    def timed(self, stage: str):
        clock = self

        class _Timer:
            def __enter__(self):
                self.started = time.perf_counter()

            def __exit__(self, *exc):
                clock.seconds[stage] += time.perf_counter() - self.started

        return _Timer()

    def report(self) -> dict:
        # Unrounded: a reader recomputing the fraction from the seconds gets the same number.
        step = self.seconds["data_wait"] + self.seconds["forward_backward"]
        return {
            **{f"{stage}_seconds": value for stage, value in self.seconds.items()},
            "data_wait_fraction": self.seconds["data_wait"] / step if step else None,
            "dataloader_num_workers": self.dataloader_num_workers,
        }


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
