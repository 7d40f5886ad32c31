"""`omni-regressor analyze`: the geometry of the pooled hidden states (the paper's §4.7 study).

    omni-regressor analyze --model runs/demo/run/model --dataset_dir runs/demo/data --split test --output_dir analysis/after
    omni-regressor analyze --model runs/demo/backbone --dataset_dir runs/demo/data --split test --output_dir analysis/before \\
        --min_pixels 3136 --max_pixels 12544            # a base checkpoint: the "before" picture (give the run's settings)

Every clip of the split goes through the shared processing path (`prepare_clip` / `ClipEncoder` with the model's saved
settings and the media cache, DataLoader workers, batches by length) and the regressor's own pooling: the final-layer
hidden state of the last non-padding token (`output_pooled_hidden_state=True`). A base checkpoint is loaded into the
same regressor class (its head is new and unused).

Label smoothness of that space: for every clip, the mean absolute label difference to its `k` nearest neighbours
(cosine distance by default: the head starts with a dense layer followed by LayerNorm, so the scale of a state matters
little to it; `--distance euclidean` is available), averaged over clips = `knn_label_distance`. The same on the same
neighbour graph with the labels shuffled, averaged over `--num_permutations` seeded permutations =
`permuted_label_distance` (its exact expectation, the mean |label difference| over all pairs, is also reported).
Fine-tuning should bring the first well below the second (the paper reports 0.950 vs 1.896 on its test split).

Outputs in `--output_dir`: `analysis.json`, `projection.png` (PCA, plus t-SNE from `TSNE_MIN_CLIPS` clips, coloured by
label) and `hidden_states.safetensors` (`hidden_states` (clips, hidden) float32, `labels`, and `scores` for a
fine-tuned model; row i is clip `json.loads(metadata["clip_ids"])[i]`).
"""

import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipeline_omni_regressor import ClipScore, PreparedClip, score_in_length_order
from processing_omni_regressor import ClipEncoder, model_inputs

from .arguments import DatasetArguments, OmniArgumentParser, ProcessingArguments, UsageError, at_least, default_num_workers
from .commands import refuse_to_overwrite
from .data import SPLITS

logger = logging.getLogger("omni_regressor.analyze")

DISTANCES = ("cosine", "euclidean")
# t-SNE needs perplexity < clips; below this many clips its picture says little and only PCA is drawn.
TSNE_MIN_CLIPS = 50
NEIGHBOUR_BLOCK_ROWS = 1024  # rows of the distance matrix held at once (memory: rows x clips x 8 bytes)


@dataclass
class AnalyzeArguments(DatasetArguments):
    _argument_group_name = "analyze"
    model: str = field(metadata={"help": "A fine-tuned regressor folder (<run>/model), or a base checkpoint (Qwen2.5-Omni / "
                                         "Qwen3-Omni, folder or Hub id): the 'before' picture."})
    output_dir: str = field(metadata={"help": "Folder for analysis.json, projection.png and hidden_states.safetensors."})
    split: str = field(default="test", metadata={"help": "Which clips: a split, or all of them.", "choices": [*SPLITS, "all"]})
    k: int = field(default=10, metadata={"help": "Neighbours per clip in the kNN label distance."})
    distance: str = field(default="cosine", metadata={"help": "Distance between hidden states.", "choices": list(DISTANCES)})
    num_permutations: int = field(default=100, metadata={"help": "Label permutations averaged in permuted_label_distance."})
    seed: int = field(default=0, metadata={"help": "Seed of the permutations and of t-SNE."})
    batch_size: int = field(default=8, metadata={"help": "Clips per forward."})
    num_workers: int | None = field(default=None, metadata={"help": "Worker processes that decode and encode clips "
                                                                     "(default: up to 4, one core left)."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1, ... (default: cuda if available)."})
    tsne: bool = field(default=True, metadata={"help": f"Add a t-SNE panel when there are at least {TSNE_MIN_CLIPS} clips."})
    overwrite: bool = field(default=False, metadata={"help": "Write into a non-empty --output_dir."})

    def validate(self):
        super().validate()
        at_least(self, k=1, num_permutations=1, batch_size=1, num_workers=0)


# --- label smoothness of a point cloud ------------------------------------------------------------------------------


def nearest_neighbours(hidden_states: np.ndarray, k: int, distance: str = "cosine") -> np.ndarray:
    """(clips, k) indices of each clip's k nearest other clips, nearest first (ties: lower index first)."""
    points = np.asarray(hidden_states, dtype=np.float64)  # (clips, hidden)
    if distance not in DISTANCES:
        raise ValueError(f"`distance` must be one of {DISTANCES}, got {distance!r}.")
    if not 1 <= k < len(points):
        raise ValueError(f"k must be in [1, {len(points) - 1}] for {len(points)} clips, got {k}.")
    if distance == "cosine":
        norms = np.linalg.norm(points, axis=1, keepdims=True)
        points = points / np.where(norms > 0, norms, 1.0)
    squared_norms = np.sum(points**2, axis=1)  # (clips,)
    neighbours = np.empty((len(points), k), dtype=np.int64)
    for start in range(0, len(points), NEIGHBOUR_BLOCK_ROWS):
        block = points[start : start + NEIGHBOUR_BLOCK_ROWS]  # (rows, hidden)
        # Cosine distance is 1 - u.v on unit vectors, a monotone function of the squared euclidean distance there:
        # one formula ranks both.
        distances = squared_norms[start : start + len(block), None] + squared_norms[None, :] - 2 * block @ points.T
        distances[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf  # a clip is not its own neighbour
        neighbours[start : start + len(block)] = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return neighbours


def knn_label_distance(labels: np.ndarray, neighbours: np.ndarray) -> float:
    """Mean over clips of the mean |label - neighbour's label| over its neighbours."""
    labels = np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.abs(labels[:, None] - labels[neighbours])))


def permuted_label_distances(labels: np.ndarray, neighbours: np.ndarray, num_permutations: int, seed: int) -> np.ndarray:
    """`knn_label_distance` on the same neighbour graph with the labels shuffled, once per seeded permutation."""
    labels = np.asarray(labels, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return np.array([knn_label_distance(labels[rng.permutation(len(labels))], neighbours) for _ in range(num_permutations)])


def mean_pairwise_label_distance(labels: np.ndarray) -> float:
    """Mean |label_i - label_j| over pairs i != j: the expectation of the permuted distance."""
    labels = np.asarray(labels, dtype=np.float64)
    differences = np.abs(labels[:, None] - labels[None, :])
    return float(differences.sum() / (len(labels) * (len(labels) - 1)))


def label_smoothness(hidden_states, labels, k: int, distance: str = "cosine", num_permutations: int = 100, seed: int = 0) -> dict:
    """The numbers of analysis.json: kNN label distance vs its permutation baseline."""
    neighbours = nearest_neighbours(hidden_states, k, distance)
    observed = knn_label_distance(labels, neighbours)
    permuted = permuted_label_distances(labels, neighbours, num_permutations, seed)
    return {
        "knn_label_distance": observed,
        "permuted_label_distance": float(permuted.mean()),
        "permuted_label_distance_std": float(permuted.std()),
        # One-sided: how often shuffled labels look at least as smooth as the real ones.
        "permutation_p_value": float((1 + np.sum(permuted <= observed)) / (1 + num_permutations)),
        "mean_pairwise_label_distance": mean_pairwise_label_distance(labels),
        "k": int(k),
        "distance": distance,
        "num_permutations": int(num_permutations),
        "permutation_seed": int(seed),
    }


# --- the projection plot --------------------------------------------------------------------------------------------


def projections(hidden_states: np.ndarray, distance: str = "cosine", tsne: bool = True, seed: int = 0) -> dict:
    """{"PCA": (clips, 2), "t-SNE": (clips, 2) when asked and there are at least TSNE_MIN_CLIPS clips}."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    points = np.asarray(hidden_states, dtype=np.float64)
    if distance == "cosine":  # project what the distance compares: directions
        norms = np.linalg.norm(points, axis=1, keepdims=True)
        points = points / np.where(norms > 0, norms, 1.0)
    pca = PCA(n_components=2, random_state=seed).fit(points)
    result = {"PCA": (pca.transform(points), pca.explained_variance_ratio_)}
    if tsne and len(points) >= TSNE_MIN_CLIPS:
        perplexity = min(30.0, (len(points) - 1) / 3)
        embedded = TSNE(n_components=2, perplexity=perplexity, metric="cosine" if distance == "cosine" else "euclidean",
                        init="pca", random_state=seed).fit_transform(points)
        result["t-SNE"] = (embedded, None)
    return result


def plot_projections(path, panels: dict, labels, score_range, title: str) -> Path:
    """One scatter panel per projection, points coloured by label on the score range (Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2 * len(panels) + 0.8, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, (name, (points, explained)) in zip(axes, panels.items()):
        scatter = axis.scatter(points[:, 0], points[:, 1], c=labels, cmap="coolwarm", vmin=score_range[0],
                               vmax=score_range[1], s=22, edgecolors="black", linewidths=0.3)
        if explained is not None:
            axis.set_xlabel(f"PC1 ({100 * explained[0]:.1f} % of variance)")
            axis.set_ylabel(f"PC2 ({100 * explained[1]:.1f} %)")
        axis.set_title(name)
    figure.colorbar(scatter, ax=list(axes), label="label")
    figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=120)
    return Path(path)


# --- pooled hidden states through the shared processing path --------------------------------------------------------


@torch.no_grad()
def pool_prepared(model, encoder: ClipEncoder, prepared: list[PreparedClip], batch_size: int, device) -> list[ClipScore]:
    """Pooled states (`extras["pooled_hidden_state"]`, float32) and scores of prepared clips, in their order; batched
    as for scoring; a failing batch is retried clip by clip, a failing clip keeps its error."""
    return score_in_length_order(model, encoder, prepared, batch_size, device, score_batch=_pool_batch)


def _pool_batch(model, encoder, chunk, device) -> list[ClipScore]:
    try:
        batch = encoder.collate([clip.encoded for clip in chunk])
        outputs = model(**model_inputs(batch, device), output_pooled_hidden_state=True)
        states = outputs.pooled_hidden_state.float().cpu().numpy()  # (batch, hidden)
        scores = outputs.logits.float().cpu().tolist()
        return [ClipScore(clip.path, score, clip.modalities, extras={"pooled_hidden_state": state})
                for clip, score, state in zip(chunk, scores, states)]
    except Exception as error:  # noqa: BLE001 - one clip's failure is reported, the others are pooled
        if len(chunk) == 1:
            return [ClipScore(chunk[0].path, None, chunk[0].modalities, f"{type(error).__name__}: {error}")]
        return [result for clip in chunk for result in _pool_batch(model, encoder, [clip], device)]


def pooled_hidden_states(model, encoder: ClipEncoder, records, batch_size: int = 8, num_workers: int = 0, device=None):
    """-> (clips that were pooled, (clips, hidden) float32 states, their scores, [(clip_id, error)] of the others).

    A clip must provide every modality the encoder reads (a state on fewer modalities is another kind of point).
    """
    from .streaming import InputItem, stream_scores

    device = device or next(model.parameters()).device
    items = [InputItem(index, record.media_path, record.text) for index, record in enumerate(records)]
    pooled, states, scores, failed = [], [], [], []
    for item, result in stream_scores(
        model, encoder, items, batch_size, num_workers, allow_missing_modalities=False, device=device,
        score_chunk=lambda clips: pool_prepared(model, encoder, clips, batch_size, device),
    ):
        record = records[item.index]
        if result.error is not None:
            failed.append((record.clip_id, result.error))
            continue
        pooled.append(record)
        states.append(result.extras["pooled_hidden_state"])
        scores.append(result.score)
    hidden_size = model.config.thinker_config.text_config.hidden_size
    states = np.stack(states).astype(np.float32) if states else np.zeros((0, hidden_size), np.float32)
    return pooled, states, np.asarray(scores, dtype=np.float32), failed


def save_hidden_states(path, hidden_states, labels, clip_ids, scores=None, metadata=None) -> Path:
    """`hidden_states.safetensors`: tensors `hidden_states`, `labels` (and `scores`); `metadata["clip_ids"]` is the JSON
    list of clip ids, row by row. Written to a temporary file and renamed (never a partial file)."""
    from safetensors.numpy import save_file

    tensors = {"hidden_states": np.ascontiguousarray(hidden_states, dtype=np.float32),
               "labels": np.asarray(labels, dtype=np.float32)}
    if scores is not None:
        tensors["scores"] = np.asarray(scores, dtype=np.float32)
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata={**(metadata or {}), "clip_ids": json.dumps(list(clip_ids))})
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


# --- the command ----------------------------------------------------------------------------------------------------


def load_for_analysis(model_name_or_path, device, dtype=None):
    """(regressor, fine_tuned) for a saved regressor folder or a base checkpoint (new, unused head)."""
    from .backbones import backbone_of, read_config_dict
    from .model_loading import check_model_folder
    from .model_setup import export_dtype

    try:
        model_type = read_config_dict(model_name_or_path).get("model_type")
    except (OSError, ValueError) as error:
        raise UsageError(f"--model {model_name_or_path}: not a model folder or Hub id ({error}).") from None
    fine_tuned = model_type == "omni_regressor"
    if fine_tuned:
        check_model_folder(model_name_or_path)
    try:
        regressor_class = backbone_of(model_name_or_path).regressor_class
    except ValueError as error:
        raise UsageError(f"--model {model_name_or_path}: {error}") from None
    model = regressor_class.from_pretrained(model_name_or_path, dtype=dtype or export_dtype())
    return model.to(device).eval(), fine_tuned


def display_name(model_name_or_path) -> str:
    """The last two path parts (`run/model` says more than `model`)."""
    parts = Path(str(model_name_or_path)).parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else str(model_name_or_path)


def run_analysis(args: AnalyzeArguments, processing_args: ProcessingArguments) -> tuple[dict, list]:
    from .data import infer_score_range, read_dataset
    from .settings import resolve_settings
    from .outputs import write_json

    started = time.perf_counter()
    refuse_to_overwrite(args.output_dir, args.overwrite, "analysis")
    records, label_problems = read_dataset(args.dataset_dir, args.dataset_format, **args.dataset_options())
    chosen = [record for record in records if args.split == "all" or record.split == args.split]
    fewer_than_needed = (
        f"--k {args.k} needs at least {args.k + 1} clips (each clip and {args.k} neighbours); lower --k or choose more "
        "clips (--split all)."
    )
    if len(chosen) < args.k + 1:
        raise UsageError(f"--split {args.split} of {args.dataset_dir} has {len(chosen)} usable clips: {fewer_than_needed}")

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, fine_tuned = load_for_analysis(args.model, device)
    settings, processor = resolve_settings(processing_args, args.model)  # a regressor's saved settings, or the official
    score_range = tuple(model.config.score_range) if fine_tuned else infer_score_range(records)
    if settings.denoise != "none":
        from .denoise import require_runtime

        try:
            require_runtime()
        except ImportError as error:
            raise UsageError(str(error)) from None
    encoder = ClipEncoder(processor, settings, score_range, processing_args.media_cache())
    num_workers = default_num_workers() if args.num_workers is None else args.num_workers
    pooled, states, scores, failed = pooled_hidden_states(model, encoder, chosen, args.batch_size, num_workers, device)
    for clip_id, error in failed:
        print(f"error: {clip_id}: {error}", file=sys.stderr)
    if len(pooled) < args.k + 1:
        raise UsageError(f"only {len(pooled)} clips of --split {args.split} could be pooled ({len(failed)} failed): "
                         f"{fewer_than_needed}")

    labels = np.array([record.label for record in pooled])
    clip_ids = [record.clip_id for record in pooled]
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    smoothness = label_smoothness(states, labels, args.k, args.distance, args.num_permutations, args.seed)
    title = (
        f"{display_name(args.model)} ({'fine-tuned' if fine_tuned else 'base checkpoint'}) · split {args.split} · "
        f"{len(pooled)} clips\nkNN label distance {smoothness['knn_label_distance']:.3f} vs permuted "
        f"{smoothness['permuted_label_distance']:.3f} (k={args.k}, {args.distance})"
    )
    panels = projections(states, args.distance, args.tsne, args.seed)
    plot_path = plot_projections(output_dir / "projection.png", panels, labels, score_range, title)
    states_path = save_hidden_states(
        output_dir / "hidden_states.safetensors", states, labels, clip_ids, scores if fine_tuned else None,
        metadata={"model": str(args.model), "split": args.split, "modalities": "+".join(encoder.settings.modalities),
                  "pooling": f"{model.config.pooling} pooling of layer {model.config.readout_layer} (-1: the final layer)"},
    )
    analysis = {
        "model": str(args.model),
        "fine_tuned": fine_tuned,
        "dataset_dir": str(args.dataset_dir),
        "split": args.split,
        "num_clips": len(pooled),
        **smoothness,
        "label_std": float(labels.std()),
        "hidden_size": int(states.shape[1]),
        "modalities": list(encoder.settings.modalities),
        "processing": encoder.settings.to_dict(),
        "projections": list(panels),
        "failed_clips": [{"clip_id": clip_id, "error": error} for clip_id, error in failed],
        "files": {"plot": str(plot_path), "hidden_states": str(states_path)},
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_json(output_dir / "analysis.json", analysis)
    return analysis, failed


def main(argv=None) -> int:
    """Prints analysis.json's headline numbers as one JSON line; exit 1 when some clips could not be pooled."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    parser = OmniArgumentParser((AnalyzeArguments, ProcessingArguments), prog="omni-regressor analyze",
                                description=__doc__.split("\n\n")[0])
    args, processing_args = parser.parse(argv)
    analysis, failed = run_analysis(args, processing_args)
    headline = ("model", "split", "num_clips", "k", "distance", "knn_label_distance", "permuted_label_distance",
                "permutation_p_value")
    print(json.dumps({key: analysis[key] for key in headline} | {"output_dir": str(args.output_dir)}))
    return 1 if failed else 0


__all__ = [
    "DISTANCES", "TSNE_MIN_CLIPS", "knn_label_distance", "label_smoothness", "mean_pairwise_label_distance",
    "nearest_neighbours", "permuted_label_distances", "plot_projections", "pooled_hidden_states", "projections",
    "save_hidden_states",
]
