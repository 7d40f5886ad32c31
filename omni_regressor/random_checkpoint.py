"""Random weights for a model built on the meta device, written as sharded safetensors without materialising it.

A 7B Thinker in bf16 is 17 GB: built in memory and saved, it needs that much RAM first. Here every tensor of
`model.state_dict()` (shapes and dtypes only) is filled on its own and the shards are written as they fill, with the
index file transformers reads; `from_pretrained` then loads (and quantises) the folder like a downloaded checkpoint.
Values: matrices ~ N(0, initializer_range) (`RandomFill`), 1-D weights (norms) 1, biases 0: finite activations at
any depth.
"""

import json
import re
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


# transformers 5 names a Qwen2.5-Omni Thinker's weights `model.language_model.*`, `model.audio_tower.*`,
# `model.visual.*`; the released checkpoints (and `save_pretrained`, which reverts the names) use `model.*`,
# `audio_tower.*`, `visual.*` — the layout every loader here, the regressor's key mapping included, reads.
RELEASED_LAYOUT = ((r"^model\.language_model\.", "model."), (r"^model\.audio_tower\.", "audio_tower."),
                   (r"^model\.visual\.", "visual."))


def released_name(name: str) -> str:
    for pattern, replacement in RELEASED_LAYOUT:
        name, count = re.subn(pattern, replacement, name)
        if count:
            break
    return name


def write_random_weights(model: torch.nn.Module, output_dir, seed: int = 0, shard_bytes: int = SHARD_BYTES) -> Path:
    """config.json + model-0000i-of-0000n.safetensors + model.safetensors.index.json for `model` (meta tensors of a
    Qwen2.5-Omni Thinker), in the released layout."""
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
        tensors = {released_name(name): random_tensor(name, state[name], fill) for name in names}
        total_size += sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())
        save_file(tensors, str(output_dir / file_name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, file_name))
        del tensors
    index_file = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
    (output_dir / "model.safetensors.index.json").write_text(json.dumps(index_file, indent=2) + "\n")
    return output_dir


def write_prequantized_random_thinker(spec, config, output_dir, seed: int = 0) -> Path:
    """A Thinker checkpoint already in bitsandbytes' 4-bit format: one decoder layer is written in bf16, loaded with
    the package's own 4-bit loading (`load_thinker`), saved by transformers, and its quantised tensors are repeated
    for every layer. Loading the folder then reads 4-bit weights instead of quantising 7 billion values — minutes
    less on a CPU (bitsandbytes quantises ~10 M parameters per second on a busy core) — and gives the same modules
    (`Linear4bit` with their quant states) and the same memory as a quantise-at-load of a bf16 checkpoint. The towers,
    embeddings and LM head stay bf16, as the 4-bit load keeps them."""
    import copy
    import shutil

    from safetensors import safe_open

    from .recipes.generative import load_thinker

    output_dir = Path(output_dir)
    scratch = output_dir.parent / f".{output_dir.name}-one-layer"
    text_config = config.get_text_config()
    num_layers = text_config.num_hidden_layers
    one_layer = copy.deepcopy(config)
    one_layer.get_text_config().num_hidden_layers = 1
    if getattr(text_config, "layer_types", None):
        one_layer.get_text_config().layer_types = list(text_config.layer_types[:1])
    with torch.device("meta"):
        model = spec.generative_class._from_config(one_layer, dtype=torch.bfloat16)
    write_random_weights(model, scratch / "bf16", seed=seed)
    quantized = load_thinker(str(scratch / "bf16"), spec, "4bit")
    quantized.save_pretrained(scratch / "4bit")
    quantization_config = quantized.config.quantization_config
    del model, quantized
    layer_zero = re.compile(r"^(model\.layers\.)0\.(.*)$")  # the language model's first layer, released layout
    shards: list[dict] = [{}]
    size = 0
    output_dir.mkdir(parents=True, exist_ok=True)
    for file in sorted((scratch / "4bit").glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                tensor = handle.get_tensor(key)
                match = layer_zero.match(key)
                names = [f"{match[1]}{index}.{match[2]}" for index in range(num_layers)] if match else [key]
                for name in names:
                    nbytes = tensor.numel() * tensor.element_size()
                    if shards[-1] and size + nbytes > SHARD_BYTES:
                        shards.append({})
                        size = 0
                    shards[-1][name] = tensor  # repeated layers share one tensor in memory until written
                    size += nbytes
    weight_map, total_size = {}, 0
    for index, tensors in enumerate(shards, start=1):
        file_name = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
        save_file(_unshared(tensors), str(output_dir / file_name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, file_name))
        total_size += sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())
    full = copy.deepcopy(config)
    full.quantization_config = quantization_config
    full.save_pretrained(output_dir)
    index_file = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
    (output_dir / "model.safetensors.index.json").write_text(json.dumps(index_file, indent=2) + "\n")
    shutil.rmtree(scratch, ignore_errors=True)
    return output_dir


def _unshared(tensors: dict) -> dict:
    """safetensors refuses tensors sharing memory within a file: copies of the repeated ones."""
    seen, unshared = set(), {}
    for name, tensor in tensors.items():
        unshared[name] = tensor.clone() if tensor.data_ptr() in seen else tensor
        seen.add(tensor.data_ptr())
    return unshared
