"""PNG plots of one evaluation: predicted vs true, the sentiment-class confusion matrix, the error histogram.

Each function takes the label and prediction arrays and a path, writes a PNG and returns the path. Figures are
drawn on `matplotlib.figure.Figure` with the Agg canvas, so no display and no global pyplot state are involved.
"""

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .metrics import SIMS_EDGES_3, _canonical_dataset

SIMS_CLASS_NAMES = ("negative", "neutral", "positive")
FIGURE_SIZE = (5.0, 5.0)
DPI = 100


def sentiment_classes(values, dataset="mosi") -> tuple[np.ndarray, tuple[str, ...]]:
    """Scores -> (class index per score, class names), the classes of `Mult_acc_7` (MOSI/MOSEI) or `Mult_acc_3` (SIMS).

    MOSI/MOSEI: clip to [-3, 3] and round half to even (as `Mult_acc_7`), classes "-3".."3" at indices 0..6.
    SIMS: MMSA's 3-class intervals (`SIMS_EDGES_3`, class i holds edges[i] < x <= edges[i + 1]) after clipping to
    [-1, 1], so -0.1 is negative and 0.1 is neutral, as in `Mult_acc_3`.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if _canonical_dataset(dataset) == "sims":
        classes = np.searchsorted(SIMS_EDGES_3, np.clip(values, -1.0, 1.0), side="left") - 1
        return classes, SIMS_CLASS_NAMES
    classes = np.round(np.clip(values, -3.0, 3.0)).astype(int) + 3
    return classes, tuple(str(value) for value in range(-3, 4))


def plot_scatter(labels, predictions, path, score_range=(-3.0, 3.0), title: str | None = None) -> Path:
    """Predicted vs true score with the identity line; both axes span `score_range`. `title` names the model,
    split and headline metrics."""
    labels, predictions = _as_arrays(labels, predictions)
    low, high = (float(value) for value in score_range)
    figure = _figure()
    axes = figure.add_subplot()
    axes.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="prediction = label")
    axes.scatter(labels, predictions, s=14, alpha=0.7)
    axes.set_xlim(low, high)
    axes.set_ylim(low, high)
    axes.set_aspect("equal")
    axes.set_xlabel("true score")
    axes.set_ylabel("predicted score")
    axes.set_title(_title(f"Predicted vs true ({len(labels)} clips)", title), fontsize=9)
    axes.legend(loc="upper left")
    return _save(figure, path)


def plot_confusion_matrix(labels, predictions, path, dataset="mosi", title: str | None = None) -> Path:
    """Counts of (true class, predicted class) over `sentiment_classes`; rows are true classes."""
    labels, predictions = _as_arrays(labels, predictions)
    true_classes, class_names = sentiment_classes(labels, dataset)
    predicted_classes, _ = sentiment_classes(predictions, dataset)
    num_classes = len(class_names)
    counts = np.zeros((num_classes, num_classes), dtype=int)  # (true, predicted)
    np.add.at(counts, (true_classes, predicted_classes), 1)
    figure = _figure()
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    for row in range(num_classes):
        for column in range(num_classes):
            color = "white" if counts[row, column] > counts.max() / 2 else "black"
            axes.text(column, row, str(counts[row, column]), ha="center", va="center", color=color, fontsize=8)
    axes.set_xticks(range(num_classes), class_names)
    axes.set_yticks(range(num_classes), class_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    name = "Acc-3 classes" if _canonical_dataset(dataset) == "sims" else "Acc-7 classes"
    axes.set_title(_title(f"Confusion matrix ({name})", title), fontsize=9)
    return _save(figure, path)


def plot_error_histogram(labels, predictions, path, title: str | None = None) -> Path:
    """Histogram of prediction - label, with the mean error marked."""
    labels, predictions = _as_arrays(labels, predictions)
    errors = predictions - labels
    figure = _figure()
    axes = figure.add_subplot()
    axes.hist(errors, bins=min(30, max(5, len(errors) // 2)), color="tab:blue", alpha=0.8)
    axes.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    axes.axvline(float(errors.mean()), color="tab:red", linewidth=1, label=f"mean error {errors.mean():+.3f}")
    axes.set_xlabel("prediction - label")
    axes.set_ylabel("clips")
    axes.set_title(_title("Prediction error", title), fontsize=9)
    axes.legend(loc="upper right")
    return _save(figure, path)


def plot_attribution(effects: dict[str, list[float]], path, title: str | None = None) -> Path:
    """How far each modality moves predictions over a split: the distribution of (score - score without it) per
    modality, with its mean marked."""
    names = [name for name, values in effects.items() if values]
    figure = _figure()
    axes = figure.add_subplot()
    if names:
        axes.boxplot([effects[name] for name in names], tick_labels=names, showmeans=True)
    axes.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    axes.set_xlabel("modality left out")
    axes.set_ylabel("score - score without it")
    axes.set_title(_title("Modality attribution", title), fontsize=9)
    return _save(figure, path)


def plot_timeline(windows, path, score_range=(-3.0, 3.0), title: str | None = None) -> Path:
    """Score over time of one long video: `windows` are (start, end, score); each window is a horizontal segment at its
    score and the windows' centres are joined; the label range is shaded."""
    low, high = (float(value) for value in score_range)
    figure = Figure(figsize=(8.0, 3.0), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.axhspan(low, high, color="tab:blue", alpha=0.06, label="score range")
    axes.axhline(0.0, color="grey", linewidth=1)
    for start, end, score in windows:
        axes.plot([start, end], [score, score], color="tab:blue", linewidth=3, alpha=0.5)
    axes.plot([(start + end) / 2 for start, end, _ in windows], [score for _, _, score in windows], marker="o", color="tab:blue")
    axes.set_ylim(low - 0.2, high + 0.2)
    axes.set_xlabel("seconds")
    axes.set_ylabel("score")
    axes.set_title(_title("Sentiment over time", title), fontsize=9)
    return _save(figure, path)


def _title(kind: str, context: str | None) -> str:
    return f"{kind}\n{context}" if context else kind


def _as_arrays(labels, predictions) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    if len(labels) != len(predictions) or len(labels) == 0:
        raise ValueError(
            "labels and predictions must be non-empty and of the same length, "
            f"got {len(labels)} and {len(predictions)}."
        )
    return labels, predictions


def _figure() -> Figure:
    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
