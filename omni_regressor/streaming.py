"""Streaming inference: inputs flow read -> decode -> encode (DataLoader workers) -> batch -> model -> output file.

Memory is bounded by one chunk of encoded clips (`chunk_batches * batch_size`) plus the workers' prefetch
(`2 * num_workers` clips), whatever the number of inputs. Within a chunk, clips are grouped by modality set and
sorted by length (low padding); results are released in input order, so an output file grows as a prefix of the
inputs and a killed run keeps every finished row.

Sharding: under `torchrun` / `accelerate launch` each rank takes every WORLD_SIZE-th input (`shard`), writes its own
partial file, and rank 0 merges them into one output with every input once, in input order (the files:
`omni_regressor.outputs.OutputFile`). The process group
(gloo, also on GPU machines: it only carries barriers and small lists) is `distributed()`.
"""

import os
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch

from pipeline_omni_regressor import ClipScore, PreparedClip, prepare_clip, score_in_length_order

DEFAULT_CHUNK_BATCHES = 4
DEFAULT_WINDOW_BATCHES = DEFAULT_CHUNK_BATCHES  # the former name
# Ranks wait for the slowest one at the end of a pass; on a large corpus that can take hours, not the default 30 min.
DISTRIBUTED_TIMEOUT = timedelta(hours=12)


@dataclass(frozen=True)
class InputItem:
    """One input: its position, the file, its transcript, the window of a long video (`start`, `end` seconds; the
    whole clip by default), and a key that survives a rerun (path + occurrence)."""

    index: int
    path: str
    transcript: str | None = None
    start: float = 0.0
    end: float | None = None
    error: str | None = None  # known before decoding (e.g. a video shorter than its window): its error row

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

    def __init__(self, encoder, items, allow_missing_modalities, modalities, explain=False):
        self.encoder, self.items = encoder, items
        self.allow_missing_modalities, self.modalities, self.explain = allow_missing_modalities, modalities, explain

    def __len__(self):
        return len(self.items)

    def __getitem__(self, position) -> PreparedClip:
        item = self.items[position]
        if item.error is not None:
            return PreparedClip(position, item.path, None, (), item.error)
        return prepare_clip(self.encoder, position, item.path, item.transcript, self.allow_missing_modalities,
                            self.modalities, self.explain, item.start, item.end)


def _as_prepared(prepared: PreparedClip) -> PreparedClip:
    return prepared  # a module-level function, so that spawned workers (macOS, Windows) can unpickle the loader


def stream_scores(model, encoder, items: list[InputItem], batch_size: int = 8, num_workers: int = 0,
                  chunk_batches: int = DEFAULT_CHUNK_BATCHES, allow_missing_modalities: bool = True,
                  modalities=None, device=None, score_chunk=None, explain: bool = False, *,
                  window_batches: int | None = None, score_window=None):
    """Yields `(item, ClipScore)` in the order of `items`, scoring a chunk of `chunk_batches * batch_size` clips at a
    time.

    `score_chunk(prepared_clips) -> list[ClipScore]` replaces the default scoring (batches of one modality set,
    sorted by length); it receives the clips of one chunk that could be prepared. `explain` adds the leave-one-out
    scores of every clip (one more forward per modality, batched the same way). `window_batches` and `score_window`
    are the former names of `chunk_batches` and `score_chunk`.
    """
    chunk_batches = chunk_batches if window_batches is None else window_batches
    score_chunk = score_chunk or score_window or (
        lambda clips: score_in_length_order(model, encoder, clips, batch_size, device))
    loader = torch.utils.data.DataLoader(
        _Preparation(encoder, items, allow_missing_modalities, modalities, explain),
        batch_size=None,
        num_workers=num_workers,
        prefetch_factor=2 if num_workers else None,
        collate_fn=_as_prepared,
    )
    chunk_size = max(1, chunk_batches * batch_size)
    finished: dict[int, ClipScore] = {}
    chunk: list[PreparedClip] = []
    next_position = 0
    for prepared in loader:
        if prepared.error is not None:
            finished[prepared.index] = ClipScore(prepared.path, None, prepared.modalities, prepared.error)
        else:
            chunk.append(prepared)
        if len(chunk) >= chunk_size:
            for clip, result in zip(chunk, score_chunk(chunk)):
                finished[clip.index] = result
            chunk = []
        while next_position in finished:
            yield items[next_position], finished.pop(next_position)
            next_position += 1
    if chunk:
        for clip, result in zip(chunk, score_chunk(chunk)):
            finished[clip.index] = result
    while next_position in finished:
        yield items[next_position], finished.pop(next_position)
        next_position += 1


# --- distributed launches ------------------------------------------------------------------------------------------


def world() -> tuple[int, int]:
    """(rank, world size) of this process under torchrun / accelerate launch; (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def shard(items: list, rank: int, world_size: int) -> list:
    return items[rank::world_size]


def default_device() -> str:
    """This rank's GPU (`LOCAL_RANK`) if there is one, else the CPU."""
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"


@contextmanager
def distributed():
    """The process group of a torchrun / accelerate launch (None for one process), destroyed on the way out."""
    rank, world_size = world()
    if world_size == 1:
        yield None
        return
    import torch.distributed as dist

    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend="gloo", timeout=DISTRIBUTED_TIMEOUT)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    try:
        yield dist
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def barrier(dist):
    if dist is not None:
        dist.barrier()


def gather_rows(dist, rows: list) -> list | None:
    """Every rank's `rows` on rank 0, rank after rank (None on the other ranks); `rows` itself for one process."""
    if dist is None:
        return rows
    rank, world_size = world()
    gathered = [None] * world_size if rank == 0 else None
    dist.gather_object(rows, gathered, dst=0)
    return [row for part in gathered for row in part] if rank == 0 else None
