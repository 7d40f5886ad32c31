import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from omni_regressor.eval.metrics import (
    MOSI_METRIC_KEYS,
    PRIMARY_METRICS,
    SIMS_METRIC_KEYS,
    load_msa_metric,
    make_compute_metrics,
    metrics_for_score_range,
    msa_regression_metrics,
)


def assert_same_metrics(actual, expected):
    assert list(actual) == list(expected)
    np.testing.assert_equal(actual, expected)  # NaN == NaN here


# MOSI / MOSEI


def test_mosi_returns_mmsa_keys_in_mmsa_order():
    result = msa_regression_metrics([0.5, -1.0, 2.0], [1.0, -2.0, 0.0])
    assert tuple(result) == MOSI_METRIC_KEYS
    assert set(PRIMARY_METRICS) <= set(result)
    assert all(type(value) is float for value in result.values())


def test_mult_acc_7_rounds_half_to_even():
    # np.round: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -1.5 -> -2; half-up rounding would miss 0.5 and 2.5.
    result = msa_regression_metrics([0.5, 1.5, 2.5, -0.5, -1.5], [0.0, 2.0, 2.0, 0.0, -2.0])
    assert result["Mult_acc_7"] == 1.0


def test_mult_acc_7_and_5_clip_before_rounding():
    # a7: clip to [-3, 3] -> preds (3, -3, 2), labels (3, -3, 3); a5: clip to [-2, 2] -> all (2, -2, 2).
    result = msa_regression_metrics([3.6, -4.0, 2.4], [5.0, -3.0, 3.0])
    assert result["Mult_acc_7"] == 0.6667
    assert result["Mult_acc_5"] == 1.0


def test_mae_and_corr_match_hand_computation():
    # |err| = (0, 1, 1) -> MAE 2/3; deviations (-1, 0, 1) and (-1, 1, 0) -> r = 1 / 2.
    result = msa_regression_metrics([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    assert result["MAE"] == 0.6667
    assert result["Corr"] == 0.5


def test_mae_uses_unclipped_values():
    result = msa_regression_metrics([5.0, -1.0], [1.0, -1.0])
    assert result["MAE"] == 2.0


def test_zero_labels_count_as_positive_in_has0_and_are_dropped_in_non0():
    predictions = [-0.3, 0.2, 1.0, -1.0]
    labels = [0.0, 0.0, 2.0, -1.0]
    result = msa_regression_metrics(predictions, labels)
    # Has0: preds >= 0 (F, T, T, F) vs labels >= 0 (T, T, T, F). Class T: P 1, R 2/3, F1 0.8 (support 3);
    # class F: P 1/2, R 1, F1 2/3 (support 1) -> weighted (3 * 0.8 + 2/3) / 4.
    assert result["Has0_acc_2"] == 0.75
    assert result["Has0_F1_score"] == 0.7667
    # Non0 keeps the last two samples, both right.
    assert result["Non0_acc_2"] == 1.0
    assert result["Non0_F1_score"] == 1.0


def test_all_zero_labels_give_nan_non0_metrics():
    result = msa_regression_metrics([0.1, -0.1, 0.2], [0.0, 0.0, 0.0])
    assert math.isnan(result["Non0_acc_2"])
    assert math.isnan(result["Non0_F1_score"])
    assert result["Has0_acc_2"] == 0.6667


def test_constant_predictions_give_nan_corr_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # 0.1 repeated has an inexact mean: np.corrcoef would return rounding noise, not 0/0.
        result = msa_regression_metrics([0.1] * 7, [-2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0])
    assert math.isnan(result["Corr"])
    assert result["MAE"] == 1.3429  # (2.1 + 1.1 + 0.1 + 0.4 + 0.9 + 1.9 + 2.9) / 7


def test_constant_labels_give_nan_corr():
    assert math.isnan(msa_regression_metrics([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])["Corr"])


def test_single_sample_is_evaluated():
    result = msa_regression_metrics([1.2], [0.8])
    assert result["Has0_acc_2"] == 1.0
    assert result["Has0_F1_score"] == 1.0
    assert math.isnan(result["Corr"])


def test_single_class_f1_is_zero_division_zero_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = msa_regression_metrics([-1.0, -2.0], [1.0, 2.0])
    assert result["Has0_acc_2"] == 0.0
    assert result["Has0_F1_score"] == 0.0


def test_rounding_follows_numpy_like_mmsa():
    # 1 / 160 = 0.00625: np.round gives 0.0062 (MMSA's `round` of a numpy float); Python's round gives 0.0063.
    predictions = [1.0] + [0.0] * 159
    labels = [0.0] * 160
    assert msa_regression_metrics(predictions, labels)["MAE"] == 0.0062


def test_column_vectors_and_integers_are_accepted():
    flat = msa_regression_metrics([0.5, -1.0, 2.0], [1, -2, 0])
    column = msa_regression_metrics(np.array([[0.5], [-1.0], [2.0]]), np.array([[1], [-2], [0]]))
    assert_same_metrics(column, flat)


def test_dataset_name_is_case_insensitive():
    assert_same_metrics(
        msa_regression_metrics([0.5, -1.0], [1.0, -2.0], dataset="MOSEI"),
        msa_regression_metrics([0.5, -1.0], [1.0, -2.0], dataset="mosi"),
    )


# SIMS


def test_sims_returns_mmsa_keys():
    result = msa_regression_metrics([0.5, -0.5], [0.2, -0.8], dataset="sims")
    assert tuple(result) == SIMS_METRIC_KEYS


@pytest.mark.parametrize("dataset", ["CH-SIMS", "chsims", "Sims"])
def test_sims_aliases(dataset):
    assert tuple(msa_regression_metrics([0.5, -0.5], [0.2, -0.8], dataset=dataset)) == SIMS_METRIC_KEYS


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sims_classes_include_their_upper_edge(dtype):
    # Each prediction sits on an edge, each label strictly inside the class that edge closes:
    # 2 classes (-1.01, 0], (0, 1.01]; 3 classes (.., -0.1], (-0.1, 0.1], (0.1, ..);
    # 5 classes (.., -0.7], (-0.7, -0.1], (-0.1, 0.1], (0.1, 0.7], (0.7, ..).
    predictions = np.array([0.1, -0.1, 0.0, 0.7, -0.7], dtype=dtype)
    labels = np.array([0.05, -0.5, -0.05, 0.5, -0.9], dtype=dtype)
    result = msa_regression_metrics(predictions, labels, dataset="sims")
    assert result["Mult_acc_2"] == 1.0
    assert result["Mult_acc_3"] == 1.0
    assert result["Mult_acc_5"] == 1.0


def test_sims_just_above_an_edge_is_the_next_class():
    result = msa_regression_metrics([0.11, -0.09], [0.05, -0.5], dataset="sims")
    assert result["Mult_acc_2"] == 1.0  # -0.09 and -0.5 are negative, 0.11 and 0.05 positive
    assert result["Mult_acc_3"] == 0.0  # 0.11 is positive but 0.05 neutral; -0.09 neutral but -0.5 negative


def test_sims_clips_to_unit_range_before_mae():
    # Clipped: preds (1, -0.5), labels (1, -1) -> MAE 0.25 (unclipped it would be 1.0).
    result = msa_regression_metrics([2.0, -0.5], [1.0, -1.5], dataset="sims")
    assert result["MAE"] == pytest.approx(0.25)
    assert result["Corr"] == pytest.approx(1.0)


def test_sims_f1_is_weighted_over_the_two_classes():
    # Classes: preds (1, 0, 1, 1), labels (1, 0, 0, 1). Class 1: P 2/3, R 1, F1 0.8; class 0: P 1, R 1/2, F1 2/3.
    result = msa_regression_metrics([0.5, -0.5, 0.5, 0.5], [0.5, -0.5, -0.5, 0.5], dataset="sims")
    assert result["Mult_acc_2"] == 0.75
    assert result["F1_score"] == pytest.approx((0.8 + 2 / 3) / 2)


# Invalid inputs


def test_unknown_dataset_raises_naming_the_choices():
    with pytest.raises(ValueError, match=r"dataset must be one of .*'mosi'"):
        msa_regression_metrics([0.0], [0.0], dataset="iemocap")


@pytest.mark.parametrize(
    "predictions, labels, message",
    [
        ([0.1, 0.2], [0.1], "same length"),
        ([], [], "empty"),
        ([0.1, float("nan")], [0.1, 0.2], "predictions holds 1 NaN"),
        ([0.1, 0.2], [float("inf"), 0.2], "labels holds 1 NaN or infinite"),
        (np.zeros((2, 2)), [0.1, 0.2], r"shape \(n,\) or \(n, 1\)"),
        (["a", "b"], [0.1, 0.2], "must hold numbers"),
    ],
)
def test_invalid_inputs_raise_value_error(predictions, labels, message):
    with pytest.raises(ValueError, match=message):
        msa_regression_metrics(predictions, labels)


# Helpers


@pytest.mark.parametrize("score_range, dataset", [((-1, 1), "sims"), ((-1.0, 1.0), "sims"), ((-3, 3), "mosi")])
def test_metrics_for_score_range(score_range, dataset):
    assert metrics_for_score_range(score_range) == dataset


def test_compute_metrics_reads_plain_prediction_arrays():
    compute_metrics = make_compute_metrics("mosi")
    eval_pred = SimpleNamespace(predictions=np.array([[0.5], [-1.0], [2.0]]), label_ids=np.array([1.0, -2.0, 0.0]))
    assert_same_metrics(compute_metrics(eval_pred), msa_regression_metrics([0.5, -1.0, 2.0], [1.0, -2.0, 0.0]))


def test_compute_metrics_reads_the_first_element_of_tuple_predictions():
    compute_metrics = make_compute_metrics("sims")
    hidden_states = np.ones((3, 4, 8))
    eval_pred = SimpleNamespace(predictions=(np.array([0.5, -0.2, 0.9]), hidden_states), label_ids=[0.4, 0.0, 1.0])
    expected = msa_regression_metrics([0.5, -0.2, 0.9], [0.4, 0.0, 1.0], dataset="sims")
    assert_same_metrics(compute_metrics(eval_pred), expected)


def test_compute_metrics_keeps_nan():
    eval_pred = SimpleNamespace(predictions=np.array([1.0, 1.0]), label_ids=np.array([0.0, 2.0]))
    assert math.isnan(make_compute_metrics()(eval_pred)["Corr"])


def test_make_compute_metrics_rejects_unknown_dataset():
    with pytest.raises(ValueError, match="dataset"):
        make_compute_metrics("sst2")


# The `evaluate` module


@pytest.fixture(scope="module")
def msa_metric():
    return load_msa_metric(keep_in_memory=True)


@pytest.mark.parametrize("dataset", ["mosi", "mosei", "sims"])
def test_evaluate_module_equals_the_function(msa_metric, dataset):
    rng = np.random.default_rng(0)
    scale = 1.0 if dataset == "sims" else 3.0
    labels = np.round(rng.uniform(-scale, scale, size=50), 1)
    labels[:5] = 0.0
    predictions = labels + rng.normal(0.0, 0.5 * scale, size=50)
    result = msa_metric.compute(predictions=predictions.tolist(), references=labels.tolist(), dataset=dataset)
    # The module's features are float32, so it sees the float32 values of the inputs (as MMSA does).
    expected = msa_regression_metrics(predictions.astype(np.float32), labels.astype(np.float32), dataset=dataset)
    assert_same_metrics(result, expected)


def test_evaluate_module_reports_nan_corr_for_constant_predictions(msa_metric):
    result = msa_metric.compute(predictions=[1.0, 1.0, 1.0], references=[-1.0, 0.0, 2.0])
    assert math.isnan(result["Corr"])
