"""The probe's fits and reports: a ridge per (layer, pooling) on cached features, head-only MLP training, and
probe.json / probe.png / probe.md."""

import time
from pathlib import Path

import numpy as np
import torch

from omni_regressor.eval.metrics import metrics_for_score_range, msa_regression_metrics

from .outputs import write_json
from .probe_features import feature_name

# Ridge penalties tried on the standardised features (the valid split picks one).
PENALTIES = tuple(float(value) for value in np.logspace(-2, 6, 17))


def ridge_fits(x_train, y_train, penalties=PENALTIES):
    """Ridge on standardised features for every penalty, from one SVD -> (weights (penalties, hidden) and biases
    (penalties,) that apply to the raw features)."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    standardised = (x_train - mean) / std  # (train, hidden)
    y_mean = y_train.mean()
    u, s, vt = np.linalg.svd(standardised, full_matrices=False)
    projected = u.T @ (y_train - y_mean)  # (rank,)
    shrink = s[None, :] / (s[None, :] ** 2 + np.asarray(penalties)[:, None])  # (penalties, rank)
    weights = (shrink * projected[None, :]) @ vt / std[None, :]  # (penalties, hidden)
    biases = y_mean - weights @ mean  # (penalties,)
    return weights, biases


def headline(metrics: dict) -> dict:
    """MAE, Corr, Acc-2 (non-zero labels; CH-SIMS: its 2-class accuracy), Acc-7 (None on CH-SIMS)."""
    return {
        "MAE": metrics["MAE"], "Corr": metrics["Corr"],
        "Acc-2": metrics.get("Non0_acc_2", metrics.get("Mult_acc_2")), "Acc-7": metrics.get("Mult_acc_7"),
    }


def fit_probes(features: dict, labels, splits, layers, poolings, score_range):
    """-> (entries, best entry (lowest valid MAE), {(layer, pooling): {"weight", "bias", "test_predictions"}})."""
    dataset = metrics_for_score_range(score_range)
    masks = {split: splits == split for split in ("train", "valid", "test")}
    entries, probes = [], {}
    for pooling in poolings:
        for layer in layers:
            x = features[feature_name(pooling, layer)].astype(np.float64)  # (clips, hidden)
            weights, biases = ridge_fits(x[masks["train"]], labels[masks["train"]])
            valid_predictions = x[masks["valid"]] @ weights.T + biases  # (valid, penalties)
            valid_mae = np.abs(valid_predictions - labels[masks["valid"], None]).mean(axis=0)
            chosen = int(np.argmin(valid_mae))
            test_predictions = x[masks["test"]] @ weights[chosen] + biases[chosen]
            metrics = msa_regression_metrics(test_predictions, labels[masks["test"]], dataset)
            # Pearson's r is undefined (MMSA: nan) for constant predictions, e.g. from the embedding of the prompt's last
            # token, the same for every clip: such a probe carries no signal, reported as Corr 0.
            constant = not np.isfinite(metrics["Corr"])
            if constant:
                metrics["Corr"] = 0.0
            entries.append({"layer": layer, "pooling": pooling, "penalty": PENALTIES[chosen],
                            "valid_MAE": float(valid_mae[chosen]), **headline(metrics),
                            "constant_predictions": constant, "test_metrics": metrics})
            probes[(layer, pooling)] = {"weight": weights[chosen], "bias": float(biases[chosen]),
                                        "test_predictions": test_predictions}
    best = min(entries, key=lambda entry: (entry["valid_MAE"], entry["layer"]))
    best = {key: value for key, value in best.items() if key != "test_metrics"} | {
        "test_predictions": probes[(best["layer"], best["pooling"])]["test_predictions"].tolist(),
    }
    return entries, best, probes


def train_head_on_features(features, labels, splits, score_range, epochs: int, head_hidden_size: int,
                           learning_rate: float, seed: int, head_dropout: float = 0.0, batch_size: int = 32) -> dict:
    """The MLP head of the regressor trained alone on cached features (L1 on normalised labels, AdamW), the epoch with
    the lowest valid MAE kept -> test metrics and seconds per epoch."""
    from modeling_omni_regressor import OmniRegressionHead

    torch.manual_seed(seed)
    x = {split: torch.from_numpy(features[splits == split].astype(np.float32)) for split in ("train", "valid", "test")}
    y = {split: torch.from_numpy(labels[splits == split].astype(np.float32)) for split in ("train", "valid", "test")}
    label_mean, label_std = float(y["train"].mean()), float(y["train"].std(unbiased=False)) or 1.0
    head = OmniRegressionHead(x["train"].shape[1], head_hidden_size, head_dropout)
    optimizer = torch.optim.AdamW(head.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    best_state, best_mae, epoch_seconds = None, float("inf"), []

    def predict(split):
        head.eval()
        with torch.no_grad():
            return head(x[split]) * label_std + label_mean

    for _ in range(epochs):
        started = time.perf_counter()
        head.train()
        for batch in torch.randperm(len(x["train"]), generator=generator).split(batch_size):
            loss = torch.nn.functional.l1_loss(head(x["train"][batch]), (y["train"][batch] - label_mean) / label_std)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - started)
        valid_mae = float((predict("valid") - y["valid"]).abs().mean())
        if valid_mae < best_mae:
            best_mae, best_state = valid_mae, {key: value.clone() for key, value in head.state_dict().items()}
    head.load_state_dict(best_state)
    metrics = msa_regression_metrics(predict("test").numpy(), y["test"].numpy(), metrics_for_score_range(score_range))
    return {"epochs": epochs, "seconds_per_epoch": float(np.mean(epoch_seconds)), "valid_MAE": best_mae,
            "head_hidden_size": head_hidden_size, **headline(metrics), "test_metrics": metrics}


def plot_probe(path, entries, best, title: str) -> Path:
    """Test MAE and Corr against layer, one line per pooling; the best entry circled (Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    for axis, metric in zip(axes, ("MAE", "Corr")):
        for pooling in dict.fromkeys(entry["pooling"] for entry in entries):
            rows = [entry for entry in entries if entry["pooling"] == pooling]
            axis.plot([row["layer"] for row in rows], [row[metric] for row in rows], marker="o", label=pooling)
        axis.scatter([best["layer"]], [best[metric]], s=160, facecolors="none", edgecolors="black",
                     label="best (valid MAE)")
        axis.set_xlabel("layer (0 = embeddings)")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(f"test {metric}" + (" (lower is better)" if metric == "MAE" else " (higher is better)"))
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=120)
    return Path(path)


def _number(value) -> str:
    return "" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown_table(entries, best) -> str:
    columns = ("layer", "pooling", "penalty", "valid_MAE", "MAE", "Corr", "Acc-2", "Acc-7")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for entry in entries:
        cells = [f"{entry['penalty']:g}" if column == "penalty" else _number(entry[column]) for column in columns]
        if (entry["layer"], entry["pooling"]) == (best["layer"], best["pooling"]):
            cells = [f"**{cell}**" for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_reports(output_dir: Path, report: dict) -> None:
    best = report["best"]
    title = (f"{report['model']} (frozen, {report['quantization']}) · linear probe per layer · "
             f"{report['num_clips']['test']} test clips · best: layer {best['layer']}, {best['pooling']} pooling")
    plot_probe(output_dir / "probe.png", report["entries"], best, title)
    text = (f"# Linear probe: {report['model']}\n\nRidge per layer and pooling on the frozen Thinker's features "
            f"(penalty chosen on valid, metrics on test). Best (lowest valid MAE) in bold: layer {best['layer']}, "
            f"{best['pooling']} pooling.\n\n" + markdown_table(report["entries"], best))
    if "head_only" in report:
        head = report["head_only"]
        text += (f"\nHead-only MLP (width {head['head_hidden_size']}) on layer {head['layer']}, {head['pooling']} "
                 f"pooling: MAE {head['MAE']:.4f}, Corr {head['Corr']:.4f}, {head['epochs']} epochs, "
                 f"{head['seconds_per_epoch']:.3f} s per epoch.\n")
    (output_dir / "probe.md").write_text(text, encoding="utf-8")
    write_json(output_dir / "probe.json", report)
