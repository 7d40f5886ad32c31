"""The probe's features: the frozen Thinker's pooled states of several layers, one forward per clip, on disk as fp16.

`features.safetensors` (fp16 unless asked otherwise) holds one tensor `<pooling>.layer<k>` (clips, hidden) per requested (pooling, layer); its
metadata holds the clip ids, labels and splits (JSON lists, row by row), the model, the processing settings, the
quantisation and the layer count. Rows are written into a preallocated raw file as the batches finish (memory does
not grow with the corpus), then copied tensor by tensor into the safetensors file, which is renamed into place
complete (a file that exists is whole).
"""

import json
import os
import struct
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from modeling_omni_regressor import POOLERS
from pipeline_omni_regressor import ClipScore, score_in_length_order
from processing_omni_regressor import ClipEncoder, ProcessingSettings, model_inputs

from .model_setup import quiet_head_warning

FEATURES_FILE = "features.safetensors"


def feature_name(pooling: str, layer: int) -> str:
    return f"{pooling}.layer{layer:02d}"


class LayerTaps:
    """Forward pre-hooks that pool, for each requested layer k, the state entering decoder layer k (the last one: the
    state entering the final norm), through the final norm, with each pooling: what `readout_layer=k` reads.

    The model must run exactly `max(layers)` decoder layers (`readout_layer=max(layers)`).
    """

    def __init__(self, model, layers: list[int], poolings: list[str]):
        language_model = model.thinker.language_model
        self.norm, self.layers, self.poolings = language_model.norm, layers, poolings
        self.poolers = {pooling: POOLERS[pooling]() for pooling in poolings}
        self.attention_mask, self.pooled = None, {}
        last = len(language_model.layers)
        assert max(layers) == last, "load the model with readout_layer=max(layers)"
        self.handles = [
            (language_model.norm if layer == last else language_model.layers[layer]).register_forward_pre_hook(
                self._hook(layer))
            for layer in layers
        ]

    def _hook(self, layer):
        def hook(module, args):
            hidden_states = self.norm.forward(args[0])  # (batch, seq, hidden); `forward`: no hook (this one) again
            for pooling, pooler in self.poolers.items():
                self.pooled[(pooling, layer)] = pooler(hidden_states, self.attention_mask).float().cpu()  # (batch, hidden)
        return hook

    def features(self) -> torch.Tensor:
        """(batch, poolings x layers, hidden), in `names` order."""
        return torch.stack([self.pooled[(pooling, layer)] for pooling in self.poolings for layer in self.layers], dim=1)

    def remove(self):
        for handle in self.handles:
            handle.remove()


def feature_names(layers, poolings) -> list[str]:
    return [feature_name(pooling, layer) for pooling in poolings for layer in layers]


def _probe_batch(model, encoder, chunk, device, taps: LayerTaps) -> list[ClipScore]:
    try:
        batch = model_inputs(encoder.collate([clip.encoded for clip in chunk]), device)
        taps.attention_mask = batch["attention_mask"]
        with torch.no_grad():
            model(**batch)
        features = taps.features().numpy()  # (batch, entries, hidden), float32
        return [ClipScore(clip.path, 0.0, clip.modalities, extras={"features": row}) for clip, row in zip(chunk, features)]
    except Exception as error:  # noqa: BLE001 - one clip's failure is reported, the others are probed
        if len(chunk) == 1:
            return [ClipScore(chunk[0].path, None, chunk[0].modalities, f"{type(error).__name__}: {error}")]
        return [result for clip in chunk for result in _probe_batch(model, encoder, [clip], device, taps)]


def load_frozen_model(model_name_or_path, quantization: str, readout_layer: int):
    """The regressor class of the checkpoint (base or trained), frozen, running only `readout_layer` decoder layers."""
    from configuration_omni_regressor import OmniRegressorConfig

    from .backbones import backbone_of, num_decoder_layers, read_config_dict
    from .model_setup import export_dtype, load_kwargs_for

    backbone = backbone_of(model_name_or_path)
    load_kwargs = load_kwargs_for(quantization, backbone.regressor_skip_modules())
    load_kwargs.setdefault("dtype", export_dtype())
    layer = -1 if readout_layer == num_decoder_layers(model_name_or_path) else readout_layer
    if read_config_dict(model_name_or_path).get("model_type") == OmniRegressorConfig.model_type:
        config = OmniRegressorConfig.from_pretrained(model_name_or_path)
        config.readout_layer = layer
        model = backbone.regressor_class.from_pretrained(model_name_or_path, config=config, **load_kwargs)
    else:
        model = backbone.regressor_class.from_pretrained(model_name_or_path, readout_layer=layer, **load_kwargs)
    return model.eval().requires_grad_(False)


SAFETENSORS_DTYPES = {"float16": "F16", "float32": "F32"}


def write_safetensors_from_raw(path: Path, raw: np.memmap, names: list[str], rows: np.ndarray, metadata: dict) -> None:
    """`raw` (entries, clips, hidden) fp16 or fp32 -> a safetensors file of `names[i]` = raw[i][rows], one tensor in memory at
    a time (safetensors: 8-byte header length, JSON header, then the tensors' bytes back to back)."""
    hidden_size = raw.shape[2]
    tensor_bytes = len(rows) * hidden_size * raw.dtype.itemsize
    header = {"__metadata__": {key: str(value) for key, value in metadata.items()}}
    for index, name in enumerate(names):
        header[name] = {"dtype": SAFETENSORS_DTYPES[raw.dtype.name], "shape": [len(rows), hidden_size],
                        "data_offsets": [index * tensor_bytes, (index + 1) * tensor_bytes]}
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(struct.pack("<Q", len(header_bytes)))
        handle.write(header_bytes)
        for index in range(len(names)):
            handle.write(np.ascontiguousarray(raw[index][rows], dtype=raw.dtype.newbyteorder("<")).tobytes())
    os.replace(temporary, path)


def compute_features(model_name_or_path, records, processor, settings: ProcessingSettings, media_cache, layers,
                     poolings, num_layers: int, path: Path, score_range, quantization="4bit", batch_size=8,
                     num_workers=0, features_dtype="float16"):
    """One frozen forward per clip -> `path` (see the module docstring) -> (metadata, features, [(clip_id, error)])."""
    from .streaming import InputItem, stream_scores

    with quiet_head_warning():  # the checkpoint's head (or none) is not used: the probe reads hidden states
        model = load_frozen_model(model_name_or_path, quantization, max(layers))
    device = next(model.parameters()).device
    hidden_size = model.config.thinker_config.get_text_config().hidden_size
    names = feature_names(layers, poolings)
    encoder = ClipEncoder(processor, settings, score_range, media_cache)  # the prompt names the score range
    raw_path = path.with_name(f".{path.name}.raw")
    raw = np.lib.format.open_memmap(raw_path, mode="w+", dtype=np.dtype(features_dtype), shape=(len(names), len(records), hidden_size))
    taps = LayerTaps(model, layers, poolings)
    items = [InputItem(index, record.media_path, record.text) for index, record in enumerate(records)]
    done, failed = [], []
    started = time.perf_counter()
    try:
        for item, result in stream_scores(
            model, encoder, items, batch_size, num_workers, allow_missing_modalities=False, device=device,
            score_chunk=lambda clips: score_in_length_order(
                model, encoder, clips, batch_size, device, score_batch=lambda *a: _probe_batch(*a, taps)),
        ):
            if result.error is not None:
                failed.append((records[item.index].clip_id, result.error))
                continue
            raw[:, item.index] = result.extras["features"]  # (entries, hidden)
            done.append(item.index)
        raw.flush()
        seconds = time.perf_counter() - started
        rows = np.asarray(done, dtype=np.int64)
        metadata = {
            "model": str(model_name_or_path), "quantization": quantization, "processing": json.dumps(settings.to_dict()),
            "score_range": json.dumps(list(score_range)),
            "layers": json.dumps(layers), "poolings": json.dumps(poolings), "num_decoder_layers": num_layers,
            "seconds": round(seconds, 3), "ms_per_clip": round(1000 * seconds / max(1, len(rows)), 3),
            "hidden_size": hidden_size, "features_dtype": features_dtype, "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "clip_ids": json.dumps([records[row].clip_id for row in rows]),
            "labels": json.dumps([records[row].label for row in rows]),
            "splits": json.dumps([records[row].split for row in rows]),
        }
        write_safetensors_from_raw(path, raw, names, rows, metadata)
    finally:
        taps.remove()
        del raw
        raw_path.unlink(missing_ok=True)
    metadata, features = read_features(path)
    return metadata, features, failed


class StoredFeatures(Mapping):
    """{name: (clips, hidden) array} read from the file one tensor at a time, when asked (MOSEI at 7B holds ~4.8 GB
    per pooling: the fits never hold more than one entry)."""

    def __init__(self, path):
        from safetensors import safe_open

        self.path = str(path)
        with safe_open(self.path, framework="np") as handle:
            self.metadata, self.names = handle.metadata(), list(handle.keys())

    def __getitem__(self, name):
        from safetensors import safe_open

        if name not in self.names:
            raise KeyError(name)
        with safe_open(self.path, framework="np") as handle:
            return handle.get_tensor(name)

    def __iter__(self):
        return iter(self.names)

    def __len__(self):
        return len(self.names)


def read_features(path) -> tuple[dict, StoredFeatures]:
    """(metadata, {name: (clips, hidden) array}, read lazily)."""
    features = StoredFeatures(path)
    return features.metadata, features


def features_match(metadata: dict, model, quantization: str, features_dtype: str, settings: ProcessingSettings, layers,
                   poolings, score_range=None) -> str | None:
    """None when the stored features serve this request (`score_range` None: the stored one), else what differs."""
    if score_range is not None and json.loads(metadata["score_range"]) != list(score_range):
        return f"score range {metadata['score_range']} in the prompt"
    if metadata.get("model") != str(model):
        return f"model {metadata.get('model')}"
    if metadata.get("quantization") != quantization:
        return f"quantization {metadata.get('quantization')}"
    if metadata.get("features_dtype") != features_dtype:
        return f"features stored as {metadata.get('features_dtype')}"
    if json.loads(metadata.get("processing", "{}")) != json.loads(json.dumps(settings.to_dict())):
        return "other processing settings"
    stored_layers, stored_poolings = json.loads(metadata["layers"]), json.loads(metadata["poolings"])
    if not set(layers) <= set(stored_layers) or not set(poolings) <= set(stored_poolings):
        return f"layers {stored_layers}, poolings {stored_poolings}"
    return None
