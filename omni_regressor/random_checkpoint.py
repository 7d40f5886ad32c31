"""Random weights for a model built on the meta device, written as sharded safetensors without materialising it.

A 7B Thinker in bf16 is 17 GB: built in memory and saved, it needs that much RAM first. Here every tensor of
`model.state_dict()` (shapes and dtypes only) is filled on its own and the shards are written as they fill, with the
index file transformers reads; `from_pretrained` then loads (and quantises) the folder like a downloaded checkpoint.
Values: matrices ~ N(0, initializer_range) (`RandomFill`), 1-D weights (norms) 1, biases 0: finite activations at
any depth.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

SHARD_BYTES = 2 * 2**30
POOL_SIZE = 1 << 24  # normal draws shared by every tensor


class RandomFill:
    """Fills tensors from one pool of N(0, std) draws, each chunk of `POOL_SIZE` values at a random offset into it:
    every value is N(0, std) and a 7B checkpoint is a memory copy, not 9 billion draws (minutes on a busy CPU). Values
    matter to a memory or latency benchmark only by being finite and not degenerate."""

    def __init__(self, std: float, generator: torch.Generator):
        self.generator = generator
        pool = torch.empty(POOL_SIZE, dtype=torch.float32).normal_(0.0, std, generator=generator)
        self.pool = torch.cat([pool, pool])  # (2 * POOL_SIZE,): any offset has POOL_SIZE values after it

    def __call__(self, shape, dtype: torch.dtype) -> torch.Tensor:
        values = torch.empty(shape, dtype=dtype).view(-1)
        for start in range(0, values.numel(), POOL_SIZE):
            size = min(POOL_SIZE, values.numel() - start)
            offset = int(torch.randint(POOL_SIZE, (1,), generator=self.generator))
            values[start : start + size] = self.pool[offset : offset + size]
        return values.view(shape)


def random_tensor(name: str, like: torch.Tensor, fill: RandomFill) -> torch.Tensor:
    if not like.dtype.is_floating_point or name.endswith("bias"):
        return torch.zeros(like.shape, dtype=like.dtype)
    if like.ndim == 1:
        return torch.ones(like.shape, dtype=like.dtype)
    return fill(like.shape, like.dtype)


def write_random_weights(model: torch.nn.Module, output_dir, seed: int = 0, shard_bytes: int = SHARD_BYTES) -> Path:
    """config.json + model-0000i-of-0000n.safetensors + model.safetensors.index.json for `model` (meta tensors)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(output_dir)
    std = float(getattr(model.config, "initializer_range", None) or 0.02)
    fill = RandomFill(std, torch.Generator().manual_seed(seed))
    state = model.state_dict()
    shards: list[list[str]] = [[]]
    size = 0
    for name, tensor in state.items():  # plan the shards first: their count is in every file name
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    weight_map, total_size = {}, 0
    for index, names in enumerate(shards, start=1):
        file_name = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
        tensors = {name: random_tensor(name, state[name], fill) for name in names}
        total_size += sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())
        save_file(tensors, str(output_dir / file_name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(names, file_name))
        del tensors
    index_file = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
    (output_dir / "model.safetensors.index.json").write_text(json.dumps(index_file, indent=2) + "\n")
    return output_dir
