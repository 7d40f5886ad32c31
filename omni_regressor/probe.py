"""`omni-regressor probe`: where does sentiment live in the frozen Thinker? A linear probe per layer and pooling.

    omni-regressor probe --model Qwen/Qwen2.5-Omni-7B --dataset_dir MOSI --output_dir probes/mosi
    omni-regressor probe --model runs/demo/backbone --dataset_dir runs/demo/data --output_dir probes/demo \\
        --poolings last,mean --layers all --export_best

One frozen forward per clip (no LoRA, nothing of the backbone trained; 4-bit by default, like training) through the
shared processing path. The state entering decoder layer k (k = 0: the embeddings; k = the number of layers: the final
state), through the final RMSNorm — exactly what a regressor with `readout_layer=k` reads — is pooled for every
requested pooling and stored once in `features.safetensors` (fp16, one tensor `<pooling>.layer<k>` of shape (clips,
hidden) each, clip ids, labels and splits in its metadata), written to disk as the forward passes go. A rerun on the
same output folder reads the stored features and runs no forward pass.

Then a ridge regressor per (layer, pooling), fitted on train (features standardised on train), its penalty chosen on
valid (lowest MAE), scored on test with MMSA's metrics. Writes `probe.json` (one entry per layer and pooling, the best
one by valid MAE named), `probe.png` (test MAE and Corr against layer, one line per pooling) and `probe.md`.

`--export_best` writes `model/`: the best probe as a normal regressor folder (that readout layer, that pooling, the ridge
as a `head_type="linear"` head), scored by `predict`, `evaluate` and the pipeline like any trained model.
`--train_head_epochs N` also trains the MLP head (`--head_hidden_size`) on the best entry's cached features: head-only
training on a frozen backbone, seconds per epoch (the `head-only` arm of `omni-regressor compare`).
"""

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from configuration_omni_regressor import POOLINGS

from .arguments import (
    QUANTIZATIONS, DatasetArguments, OmniArgumentParser, ProcessingArguments, UsageError, at_least, default_num_workers,
    parse_score_range,
)
from .metering import peak_memory_mb
from .probe_features import FEATURES_FILE, compute_features, feature_name, features_match, read_features
from .probe_fit import fit_probes, train_head_on_features, write_reports

logger = logging.getLogger("omni_regressor.probe")
# A learned pooling has nothing to probe before training: the probe reads the fixed ones.
PROBE_POOLINGS = tuple(pooling for pooling in POOLINGS if pooling != "attention")
REPORT_FILES = ("probe.json", "probe.png", "probe.md")


@dataclass
class ProbeArguments(DatasetArguments):
    model: str = field(metadata={"help": "A base checkpoint (Qwen2.5-Omni / Qwen3-Omni, folder or Hub id) or a trained "
                                         "regressor folder: its Thinker is read frozen."})
    output_dir: str = field(metadata={"help": "Folder for features.safetensors, probe.json, probe.png, probe.md "
                                              "(and model/ with --export_best)."})
    poolings: str = field(default="last,mean", metadata={"help": f"Comma-separated poolings out of {','.join(PROBE_POOLINGS)}."})
    layers: str = field(default="all", metadata={"help": "all (0 = the embeddings ... the final layer) or comma-separated "
                                                         "layer numbers (-1: the final layer)."})
    quantization: str = field(default="4bit", metadata={"help": "4bit (NF4, as training) or none.", "choices": list(QUANTIZATIONS)})
    features_dtype: str = field(default="float16", metadata={
        "help": "How the features are stored: float16 (half the disk; a probe's predictions then differ from its "
                "exported model's by the rounding, ~1e-3) or float32.", "choices": ["float16", "float32"]})
    score_range: str | None = field(default=None, metadata={"help": "Label scale 'low,high', named in the prompt and used by "
                                                                   "the metrics (default: a trained regressor's, else from the labels)."})
    batch_size: int = field(default=8, metadata={"help": "Clips per forward."})
    num_workers: int | None = field(default=None, metadata={"help": "Worker processes that decode and encode clips."})
    overwrite: bool = field(default=False, metadata={"help": "Replace the reports (and model/) of an earlier probe in "
                                                             "--output_dir; stored features are reused when they fit."})
    export_best: bool = field(default=False, metadata={"help": "Write the best probe as a regressor folder, <output_dir>/model."})
    train_head_epochs: int = field(default=0, metadata={"help": "Also train the MLP head on the best entry's cached "
                                                                "features for this many epochs (0: no)."})
    head_hidden_size: int = field(default=256, metadata={"help": "Hidden width of the MLP head (--train_head_epochs)."})
    head_learning_rate: float = field(default=1e-3, metadata={"help": "Learning rate of the MLP head."})
    seed: int = field(default=0, metadata={"help": "Seed of the MLP head's initialisation and batch order."})

    def validate(self):
        super().validate()
        parse_score_range(self.score_range)
        if not self.pooling_list():
            raise ValueError(f"--poolings must name at least one of {', '.join(PROBE_POOLINGS)}.")
        for pooling in self.pooling_list():
            if pooling not in PROBE_POOLINGS:
                raise ValueError(f"--poolings: {pooling!r} is not one of {', '.join(PROBE_POOLINGS)} (attention pooling "
                                 "is learned: train it with `omni-regressor train --pooling attention`).")
        if self.layers != "all":
            try:
                [int(value) for value in self.layers.split(",")]
            except ValueError:
                raise ValueError(f"--layers must be 'all' or comma-separated integers, got {self.layers!r}.") from None
        at_least(self, batch_size=1, head_hidden_size=1, train_head_epochs=0)

    def pooling_list(self) -> list[str]:
        return list(dict.fromkeys(value.strip() for value in self.poolings.split(",") if value.strip()))

    def layer_list(self, num_layers: int) -> list[int]:
        if self.layers == "all":
            return list(range(num_layers + 1))
        layers = [num_layers if int(value) == -1 else int(value) for value in self.layers.split(",")]
        for layer in layers:
            if not 0 <= layer <= num_layers:
                raise UsageError(f"--layers: {layer} is not a layer of {self.model} (0..{num_layers}, or -1 for the final one).")
        return sorted(set(layers))


def check_output_dir(args: ProbeArguments) -> Path:
    output_dir = Path(args.output_dir)
    if output_dir.is_file():
        raise UsageError(f"--output_dir {output_dir} is a file.")
    existing = [name for name in (*REPORT_FILES, "model") if (output_dir / name).exists()]
    if existing and not args.overwrite:
        raise UsageError(f"--output_dir {output_dir} already holds a probe ({', '.join(existing)}); pass --overwrite to "
                         "replace the reports (the stored features are reused).")
    output_dir.mkdir(parents=True, exist_ok=True)
    return output_dir


def stored_or_new_features(args: ProbeArguments, processing_args: ProcessingArguments, output_dir: Path):
    """(metadata, {name: (clips, hidden) array}, layers, poolings, [{"clip_id", "error"}] of the clips left out, or
    None when the stored file fits the request and no forward pass ran), else one frozen pass over the dataset."""
    from .backbones import num_decoder_layers, read_config_dict
    from .commands import resolved_settings
    from .data import infer_score_range, read_dataset

    try:
        num_layers = num_decoder_layers(args.model)
        saved_readout_layer = read_config_dict(args.model).get("readout_layer", -1)
    except (OSError, ValueError, KeyError) as error:
        raise UsageError(f"--model {args.model}: not a Qwen-Omni checkpoint or regressor folder ({error}).") from None
    if saved_readout_layer != -1:  # a regressor that holds only its first layers: those are all there is to probe
        num_layers = saved_readout_layer
    layers, poolings = args.layer_list(num_layers), args.pooling_list()
    settings, processor = resolved_settings(processing_args, args.model)
    path = output_dir / FEATURES_FILE
    if path.is_file():
        metadata, features = read_features(path)
        reason = features_match(metadata, args.model, args.quantization, args.features_dtype, settings, layers, poolings,
                                parse_score_range(args.score_range))
        if reason is None:
            logger.info("%s: reusing the stored features (no forward pass).", path)
            return metadata, features, layers, poolings, None
        if not args.overwrite:
            raise UsageError(f"{path} was computed for another request ({reason}); pass --overwrite to compute it again.")
    records, problems = read_dataset(args.dataset_dir, args.dataset_format, **args.dataset_options())
    num_workers = default_num_workers() if args.num_workers is None else args.num_workers
    # The label scale named in the prompt: the flag, else a trained regressor's, else the labels'.
    score_range = parse_score_range(args.score_range) or read_config_dict(args.model).get("score_range") \
        or infer_score_range(records)
    metadata, features, failed = compute_features(
        args.model, records, processor, settings, processing_args.media_cache(), layers, poolings, num_layers, path,
        score_range,
        quantization=args.quantization, batch_size=args.batch_size, num_workers=num_workers,
        features_dtype=args.features_dtype,
    )
    left_out = [{"clip_id": problem.clip_id, "error": f"{problem.reason}: {problem.detail}"} for problem in problems]
    left_out += [{"clip_id": clip_id, "error": error} for clip_id, error in failed]
    for clip in left_out:
        print(f"error: {clip['clip_id']}: {clip['error']}", file=sys.stderr)
    return metadata, features, layers, poolings, left_out


def run_probe(args: ProbeArguments, processing_args: ProcessingArguments) -> dict:
    started = time.perf_counter()
    output_dir = check_output_dir(args)
    metadata, features, layers, poolings, left_out = stored_or_new_features(args, processing_args, output_dir)
    labels = np.asarray(json.loads(metadata["labels"]), dtype=np.float64)
    splits = np.asarray(json.loads(metadata["splits"]))
    for split in ("train", "valid", "test"):
        if not np.any(splits == split):
            raise UsageError(f"{args.dataset_dir}: no usable clip in split {split!r}; the probe fits on train, picks its "
                             "penalty on valid and reports test.")
    score_range = tuple(json.loads(metadata["score_range"]))
    entries, best, probes = fit_probes(features, labels, splits, layers, poolings, score_range)
    best["test_clip_ids"] = [clip_id for clip_id, split in zip(json.loads(metadata["clip_ids"]), splits) if split == "test"]
    report = {
        "model": args.model,
        "dataset_dir": str(args.dataset_dir),
        "quantization": metadata["quantization"],
        "num_decoder_layers": int(metadata["num_decoder_layers"]),
        "hidden_size": int(metadata["hidden_size"]),
        "num_clips": {split: int(np.sum(splits == split)) for split in ("train", "valid", "test")},
        "score_range": list(score_range),
        "processing": json.loads(metadata["processing"]),
        "features": str(output_dir / FEATURES_FILE),
        "features_dtype": metadata["features_dtype"],
        # The one frozen forward pass per clip (decode, encode, forward); 0 forward passes on a rerun.
        "ms_per_clip": float(metadata["ms_per_clip"]),
        "forward_passes_run": left_out is not None,
        # Clips without features (dataset problems, failed forwards), each with its reason; on a rerun see the first run.
        "clips_left_out": left_out,
        "entries": entries,
        "best": best,
    }
    if args.train_head_epochs:
        name = feature_name(best["pooling"], best["layer"])
        report["head_only"] = train_head_on_features(
            features[name], labels, splits, score_range, args.train_head_epochs, args.head_hidden_size,
            args.head_learning_rate, args.seed,
        ) | {"layer": best["layer"], "pooling": best["pooling"]}
    if args.export_best:
        from .probe_export import export_probe

        report["export_dir"] = str(export_probe(args.model, probes[(best["layer"], best["pooling"])], best, metadata,
                                                score_range, output_dir / "model", args.dataset_dir))
    report["seconds"] = round(time.perf_counter() - started, 2)
    report["peak_memory_mb"] = peak_memory_mb()
    write_reports(output_dir, report)
    return report


def main(argv=None) -> int:
    """Prints the best entry as one JSON line; exit 1 when some clips were left out (each named on stderr)."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    parser = OmniArgumentParser((ProbeArguments, ProcessingArguments), prog="omni-regressor probe",
                                description=__doc__.split("\n\n")[0])
    args, processing_args = parser.parse(argv)
    report = run_probe(args, processing_args)
    print(json.dumps({"best": report["best"], "output_dir": str(args.output_dir)}))
    return 1 if report["clips_left_out"] else 0
