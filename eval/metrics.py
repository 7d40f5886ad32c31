"""Regression metrics of the MMSA toolkit (thuiar/MMSA, `MMSA/utils/metricsTop.py`, class `MetricsTop`).

`msa_regression_metrics` reproduces `__eval_mosei_regression` (used by MMSA for both MOSI and MOSEI) and
`__eval_sims_regression`, with MMSA's key names and rounding, so numbers are comparable with published tables.
Where MMSA would crash or print numpy noise (constant inputs, no non-zero label), we return NaN instead.
"""

import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score


DATASETS = ("mosi", "mosei", "sims")
_DATASET_ALIASES = {"mosi": "mosi", "mosei": "mosei", "sims": "sims", "ch-sims": "sims", "chsims": "sims"}

MOSI_METRIC_KEYS = (
    "Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5", "Mult_acc_7", "MAE", "Corr",
)  # fmt: skip
SIMS_METRIC_KEYS = ("Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score", "MAE", "Corr")
# The columns MOSI/MOSEI papers report, in the usual order.
PRIMARY_METRICS = ("MAE", "Corr", "Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_7")

# MMSA's SIMS class edges: class i holds the x with edges[i] < x <= edges[i + 1].
SIMS_EDGES_2 = (-1.01, 0.0, 1.01)
SIMS_EDGES_3 = (-1.01, -0.1, 0.1, 1.01)
SIMS_EDGES_5 = (-1.01, -0.7, -0.1, 0.1, 0.7, 1.01)

MSA_METRIC_PATH = Path(__file__).resolve().parent / "msa_metric" / "msa_metric.py"


def msa_regression_metrics(predictions, labels, dataset="mosi"):
    """
    MMSA's regression metrics for one evaluation set.

    Args:
        predictions (array-like of float, shape `(n,)` or `(n, 1)`):
            Predicted sentiment scores.
        labels (array-like of float, shape `(n,)` or `(n, 1)`):
            Gold sentiment scores.
        dataset (`str`, *optional*, defaults to `"mosi"`):
            `"mosi"`, `"mosei"` or `"sims"` (case-insensitive; `"ch-sims"` and `"chsims"` mean `"sims"`).

    Returns:
        `dict[str, float]`. For MOSI/MOSEI (every value `round(x, 4)` as MMSA does):

        - `Has0_acc_2`, `Has0_F1_score`: accuracy and weighted F1 of `>= 0` vs `< 0`.
        - `Non0_acc_2`, `Non0_F1_score`: the same for `> 0` vs `< 0`, on the samples whose label is not 0.
        - `Mult_acc_7`, `Mult_acc_5`: accuracy after clipping both sides to [-3, 3] (resp. [-2, 2]) and `np.round`
          (half to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2).
        - `MAE`, `Corr`: mean absolute error and Pearson correlation of the unclipped values.

        For SIMS (values not rounded, as in MMSA): both sides are clipped to [-1, 1] first, then `Mult_acc_2`,
        `Mult_acc_3`, `Mult_acc_5` are accuracies over MMSA's interval classes (`SIMS_EDGES_*`, class i holds
        `edges[i] < x <= edges[i + 1]`, so 0.0 is negative and 0.1 is neutral), `F1_score` is the weighted F1 of
        the 2 classes, and `MAE`, `Corr` are computed on the clipped values.

    Edge cases (never an exception):

        - Constant predictions or constant labels (including n == 1): `Corr` is `nan`.
        - No label different from 0: `Non0_acc_2` and `Non0_F1_score` are `nan`.
        - A class missing from predictions or labels: F1 uses `zero_division=0`, which is the value sklearn's
          default gives (MMSA's numbers), without the warning.

    Computation keeps the input float dtype (MMSA runs on float32 tensors), so a float32 0.1 lands in the same
    SIMS class as in MMSA.

    Raises:
        `ValueError`: unknown `dataset`, empty or non-numeric inputs, other shapes, different lengths, NaN or inf.

    Example:

    ```python
    >>> msa_regression_metrics([2.1, -0.4, 0.0], [1.8, -1.0, 0.6])["Has0_acc_2"]
    1.0
    ```
    """
    dataset = _canonical_dataset(dataset)
    predictions = _as_scores(predictions, "predictions")
    labels = _as_scores(labels, "labels")
    if len(predictions) != len(labels):
        raise ValueError(
            f"predictions and labels must have the same length, got {len(predictions)} and {len(labels)}."
        )
    if dataset == "sims":
        return _sims_metrics(predictions, labels)
    return _mosi_metrics(predictions, labels)


def _mosi_metrics(predictions, labels):
    non_zero = labels != 0
    if non_zero.any():
        non_zero_accuracy, non_zero_f1 = _binary_accuracy_and_f1(predictions[non_zero] > 0, labels[non_zero] > 0)
    else:
        non_zero_accuracy = non_zero_f1 = float("nan")
    has_zero_accuracy, has_zero_f1 = _binary_accuracy_and_f1(predictions >= 0, labels >= 0)
    results = {
        "Has0_acc_2": has_zero_accuracy,
        "Has0_F1_score": has_zero_f1,
        "Non0_acc_2": non_zero_accuracy,
        "Non0_F1_score": non_zero_f1,
        "Mult_acc_5": _rounded_accuracy(np.clip(predictions, -2.0, 2.0), np.clip(labels, -2.0, 2.0)),
        "Mult_acc_7": _rounded_accuracy(np.clip(predictions, -3.0, 3.0), np.clip(labels, -3.0, 3.0)),
        "MAE": np.mean(np.absolute(predictions - labels)),
        "Corr": _pearson(predictions, labels),
    }
    # `round` of a numpy float is `np.round` (scale, round half to even): 0.00625 -> 0.0062, as in MMSA's tables.
    return {key: float(np.round(np.float64(value), 4)) for key, value in results.items()}


def _sims_metrics(predictions, labels):
    predictions = np.clip(predictions, -1.0, 1.0)
    labels = np.clip(labels, -1.0, 1.0)
    predicted_2, true_2 = _sims_classes(predictions, SIMS_EDGES_2), _sims_classes(labels, SIMS_EDGES_2)
    predicted_3, true_3 = _sims_classes(predictions, SIMS_EDGES_3), _sims_classes(labels, SIMS_EDGES_3)
    predicted_5, true_5 = _sims_classes(predictions, SIMS_EDGES_5), _sims_classes(labels, SIMS_EDGES_5)
    results = {
        "Mult_acc_2": np.mean(predicted_2 == true_2),
        "Mult_acc_3": np.mean(predicted_3 == true_3),
        "Mult_acc_5": np.mean(predicted_5 == true_5),
        "F1_score": f1_score(true_2, predicted_2, average="weighted", zero_division=0),
        "MAE": np.mean(np.absolute(predictions - labels)),
        "Corr": _pearson(predictions, labels),
    }
    return {key: float(value) for key, value in results.items()}


def _sims_classes(values, edges):
    classes = np.full(values.shape, -1)
    for index in range(len(edges) - 1):
        # Comparing with Python floats keeps the array's dtype, exactly like MMSA.
        classes[(values > edges[index]) & (values <= edges[index + 1])] = index
    return classes


def _binary_accuracy_and_f1(predicted_positive, true_positive):
    accuracy = accuracy_score(true_positive, predicted_positive)
    f1 = f1_score(true_positive, predicted_positive, average="weighted", zero_division=0)
    return accuracy, f1


def _rounded_accuracy(predictions, labels):
    return np.sum(np.round(predictions) == np.round(labels)) / float(len(labels))


def _pearson(predictions, labels):
    # np.corrcoef of a constant array is 0/0 (or rounding noise when the mean is inexact): report NaN.
    if np.all(predictions == predictions[0]) or np.all(labels == labels[0]):
        return float("nan")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.corrcoef(predictions, labels)[0, 1])


def _as_scores(values, name):
    try:
        scores = np.asarray(values)
    except ValueError as error:
        raise ValueError(f"{name} must be a flat array-like of floats: {error}") from error
    if scores.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold numbers, got dtype {scores.dtype}.")
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]  # (n, 1) -> (n,)
    if scores.ndim != 1:
        raise ValueError(f"{name} must have shape (n,) or (n, 1), got {scores.shape}.")
    if len(scores) == 0:
        raise ValueError(f"{name} is empty: there is nothing to evaluate.")
    not_finite = np.flatnonzero(~np.isfinite(scores))
    if len(not_finite):
        raise ValueError(
            f"{name} holds {len(not_finite)} NaN or infinite value(s), first at index {not_finite[0]}; "
            "fix or drop those samples before computing metrics."
        )
    return scores


def _canonical_dataset(dataset):
    canonical = _DATASET_ALIASES.get(str(dataset).lower())
    if canonical is None:
        raise ValueError(
            f"dataset must be one of {DATASETS} (case-insensitive; 'ch-sims' and 'chsims' also mean 'sims'), "
            f"got {dataset!r}."
        )
    return canonical


def metrics_for_score_range(score_range):
    """The `dataset` argument of `msa_regression_metrics` for a label range: `"sims"` for (-1, 1), else `"mosi"`."""
    low, high = score_range
    return "sims" if (float(low), float(high)) == (-1.0, 1.0) else "mosi"


def make_compute_metrics(dataset="mosi"):
    """
    A `compute_metrics` for the HF `Trainer`: `compute_metrics(eval_pred)` returns `msa_regression_metrics` of
    `eval_pred.predictions` (an array, or a tuple whose first element is the score array) against
    `eval_pred.label_ids`. NaN values (see `msa_regression_metrics`) are kept as NaN.
    """
    dataset = _canonical_dataset(dataset)

    def compute_metrics(eval_pred):
        predictions = eval_pred.predictions
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        return msa_regression_metrics(predictions, eval_pred.label_ids, dataset=dataset)

    return compute_metrics


def load_msa_metric(**load_kwargs):
    """
    `evaluate.load` of the local module `eval/msa_metric/msa_metric.py` by path (works offline). The module imports
    `eval.metrics`, so this package must be importable (installed, or the repository root on `sys.path`).

    Example:

    ```python
    >>> metric = load_msa_metric()
    >>> metric.compute(predictions=[0.5, -1.0], references=[1.0, -2.0], dataset="mosi")["Has0_acc_2"]
    1.0
    ```
    """
    import evaluate  # imported here: it pulls in `datasets`, which most users of these metrics never need

    return evaluate.load(str(MSA_METRIC_PATH), **load_kwargs)
