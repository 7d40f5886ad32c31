"""Streaming inference: inputs flow read -> decode -> encode (DataLoader workers) -> batch -> model -> output file.

Memory is bounded by `window` encoded clips plus the workers' prefetch, whatever the number of inputs. Within a
window, clips are grouped by modality set and sorted by length (low padding); results are released in input order,
so an output file grows as a prefix of the inputs and a killed run keeps every finished row.

Sharding: under `torchrun` / `accelerate launch` each rank takes every WORLD_SIZE-th input (`shard`), writes its own
partial file, and rank 0 merges them into one output with every input once, in input order (`merge_partials`).
"""

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline_omni_regressor import ClipScore, PreparedClip, prepare_clip, score_prepared

DEFAULT_WINDOW_BATCHES = 8


@dataclass(frozen=True)
class InputItem:
    """One input: its position, the file, its transcript, and a key that survives a rerun (path + occurrence)."""

    index: int
    path: str
    transcript: str | None = None

    def key(self, occurrence: int) -> str:
        return f"{self.path}#{occurrence}"


def input_keys(items: list[InputItem]) -> list[str]:
    """`path#n` for the n-th occurrence of each path: the same inputs give the same keys in every run."""
    seen = Counter()
    keys = []
    for item in items:
        keys.append(item.key(seen[item.path]))
        seen[item.path] += 1
    return keys


class _Preparation(torch.utils.data.Dataset):
    """Decodes and encodes one input per item (in a DataLoader worker); failures become the clip's error."""

    def __init__(self, encoder, items, allow_missing_modalities, modalities):
        self.encoder, self.items = encoder, items
        self.allow_missing_modalities, self.modalities = allow_missing_modalities, modalities

    def __len__(self):
        return len(self.items)

    def __getitem__(self, position) -> PreparedClip:
        item = self.items[position]
        return prepare_clip(self.encoder, position, item.path, item.transcript, self.allow_missing_modalities,
                            self.modalities)


def stream_scores(model, encoder, items: list[InputItem], batch_size: int = 8, num_workers: int = 0,
                  window_batches: int = DEFAULT_WINDOW_BATCHES, allow_missing_modalities: bool = True,
                  modalities=None, device=None, score_window=None):
    """Yields `(item, ClipScore)` in the order of `items`, scoring `window_batches * batch_size` clips at a time.

    `score_window(prepared_clips) -> list[ClipScore]` replaces the default scoring (batches of one modality set,
    sorted by length); it receives the clips of one window that could be prepared.
    """
    score_window = score_window or (lambda clips: score_sorted(model, encoder, clips, batch_size, device))
    loader = torch.utils.data.DataLoader(
        _Preparation(encoder, items, allow_missing_modalities, modalities),
        batch_size=None,
        num_workers=num_workers,
        prefetch_factor=2 if num_workers else None,
        collate_fn=lambda prepared: prepared,
    )
    window_size = max(1, window_batches * batch_size)
    finished: dict[int, ClipScore] = {}
    window: list[PreparedClip] = []
    next_position = 0
    for prepared in loader:
        if prepared.error is not None:
            finished[prepared.index] = ClipScore(prepared.path, None, prepared.modalities, prepared.error)
        else:
            window.append(prepared)
        if len(window) >= window_size:
            for clip, result in zip(window, score_window(window)):
                finished[clip.index] = result
            window = []
        while next_position in finished:
            yield items[next_position], finished.pop(next_position)
            next_position += 1
    if window:
        for clip, result in zip(window, score_window(window)):
            finished[clip.index] = result
    while next_position in finished:
        yield items[next_position], finished.pop(next_position)
        next_position += 1


def score_sorted(model, encoder, clips: list[PreparedClip], batch_size: int, device=None) -> list[ClipScore]:
    """Scores clips grouped by modality set and sorted by length; results in the order of `clips`."""
    results = {}
    groups = {}
    for clip in clips:
        groups.setdefault(clip.modalities, []).append(clip)
    for group in groups.values():
        group.sort(key=lambda clip: clip.length)
        for start in range(0, len(group), batch_size):
            chunk = group[start : start + batch_size]
            for clip, result in zip(chunk, score_prepared(model, encoder, chunk, device)):
                results[id(clip)] = result
    return [results[id(clip)] for clip in clips]


# --- distributed launches ------------------------------------------------------------------------------------------


def world() -> tuple[int, int]:
    """(rank, world size) of this process under torchrun / accelerate launch; (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def shard(items: list, rank: int, world_size: int) -> list:
    return items[rank::world_size]


def init_distributed():
    """A process group for the barrier before rank 0 merges (gloo on CPU, nccl on CUDA); None for one process."""
    rank, world_size = world()
    if world_size == 1:
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return dist


def barrier(dist):
    if dist is not None:
        dist.barrier()


def partial_path(output: Path, rank: int) -> Path:
    """The rank's own rows: `<output>.partial-<rank>-<pid>.jsonl` (a rerun writes new ones, old ones are kept)."""
    return output.with_name(f"{output.name}.partial-{rank}-{os.getpid()}.jsonl")


def partial_files(output: Path) -> list[Path]:
    return sorted(output.parent.glob(f"{output.name}.partial-*.jsonl"))


def read_complete_lines(path: Path) -> list[str]:
    """The file's complete lines; a last line without its newline (a kill during a write) is cut off the file."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as file:
            file.truncate(end)
    return data[:end].decode("utf-8").splitlines()


def read_partial_rows(output: Path) -> list[dict]:
    return [json.loads(line) for path in partial_files(output) for line in read_complete_lines(path) if line.strip()]
