import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omni_regressor.eval.score_parsing import parse_score, parse_scores


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2.4", 2.4),
        ("+1", 1.0),
        ("-0.8.", -0.8),
        ("Score: 1.5/3", 1.5),
        ("positive (2)", 2.0),
        ("The sentiment score is -1.2", -1.2),
        ("\u22122", -2.0),
        (" 3 ", 3.0),
        ("**2.0**", 2.0),
        ("Sentiment: 2 out of 3", 2.0),
        ("Score (out of 3): -1", -1.0),
        ("-.5", -0.5),
        ("2e-1", 0.2),
        ("-0", 0.0),
        ("1, 2 or 3", 1.0),
        ("between 1 and 2", 1.0),
        ("Qwen2.5 thinks 1", 1.0),
        ("the score was-0.8", -0.8),
        ("4.5", 4.5),
    ],
)
def test_parse_score_reads_what_models_write(text, expected):
    assert parse_score(text) == expected


@pytest.mark.parametrize(
    "text", ["positive", "", "N/A", "I cannot tell.", "nan", "inf", "-inf", "Infinity", "out of 3", "/3", "v1.2"]
)
def test_parse_score_without_a_number_is_none(text):
    assert parse_score(text) is None


def test_parse_score_of_an_overflowing_first_number_is_none():
    assert parse_score("1e999") is None
    assert parse_score("1e999, I mean 2") is None


def test_parse_score_of_a_non_string_is_none():
    assert parse_score(None) is None


@pytest.mark.parametrize("text, expected", [("1,5", 1.5), ("Score: -0,75.", -0.75), ("**2,0**", 2.0)])
def test_lone_number_with_decimal_comma_is_a_decimal(text, expected):
    assert parse_score(text) == expected


def test_comma_separates_numbers_when_there_are_several():
    assert parse_score("[-3,3]: 1") == 1.0
    assert parse_score("1,5 or 2") == 1.0


def test_echoed_scale_is_skipped():
    assert parse_score("On a scale from -3 to 3, I'd rate it 2.") == 2.0
    assert parse_score("On a scale from \u22123 to +3: \u22121.5") == -1.5
    assert parse_score("Between -3 and 3, it is -3") == -3.0


def test_echoed_scale_depends_on_score_range():
    text = "From -1 to 1: 0.4"
    assert parse_score(text, score_range=(-1.0, 1.0)) == 0.4
    assert parse_score(text, score_range=(-3.0, 3.0)) == -1.0


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_score_never_raises_and_returns_finite_or_none(text):
    value = parse_score(text)
    assert value is None or (type(value) is float and math.isfinite(value))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789+-.,eE/ outf\u2212*:()"))
def test_parse_score_never_raises_on_number_like_text(text):
    value = parse_score(text)
    assert value is None or (type(value) is float and math.isfinite(value))


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-3.0, max_value=3.0))
def test_parse_score_reads_back_any_printed_float(value):
    assert parse_score(repr(value)) == value


def test_parse_scores_applies_fallback_and_clipping_and_counts_them():
    texts = ["2.5", "7", "no idea", "-4.5", "\u22121", ""]
    parsed = parse_scores(texts)
    assert parsed["scores"] == [2.5, 3.0, 0.0, -3.0, -1.0, 0.0]
    assert parsed["unparsable_rate"] == pytest.approx(2 / 6)
    assert parsed["out_of_range_rate"] == pytest.approx(2 / 6)
    assert parsed["failures"] == [(2, "no idea"), (5, "")]
    assert parsed["fallback"] == 0.0


def test_parse_scores_uses_the_fallback_as_given():
    parsed = parse_scores(["none", "0.5"], score_range=(-1, 1), fallback=-5.0)
    assert parsed["scores"] == [-5.0, 0.5]
    assert parsed["out_of_range_rate"] == 0.0


def test_parse_scores_of_no_texts_has_zero_rates():
    parsed = parse_scores([])
    assert parsed["scores"] == []
    assert parsed["unparsable_rate"] == 0.0
    assert parsed["truncated_rate"] == 0.0
    assert parsed["out_of_range_rate"] == 0.0


def test_parse_scores_without_truncation_flags_reports_zero_truncated_rate():
    assert parse_scores(["1", "oops"])["truncated_rate"] == 0.0


def test_truncated_answers_score_as_fallback_and_count_apart_from_unparsable_ones():
    # "-1" may be "-1.5" cut by the generation limit: it is not trusted even though it parses.
    texts = ["-1", "2", "no idea", "I would say"]
    parsed = parse_scores(texts, fallback=0.5, truncated=[True, False, False, True])
    assert parsed["scores"] == [0.5, 2.0, 0.5, 0.5]
    assert parsed["truncated_rate"] == pytest.approx(2 / 4)
    assert parsed["unparsable_rate"] == pytest.approx(1 / 4)
    assert parsed["failures"] == [(2, "no idea")]
    assert parsed["out_of_range_rate"] == 0.0


def test_truncated_out_of_range_answer_is_not_counted_out_of_range():
    parsed = parse_scores(["9"], truncated=[True])
    assert parsed["scores"] == [0.0]
    assert (parsed["truncated_rate"], parsed["out_of_range_rate"]) == (1.0, 0.0)


@pytest.mark.parametrize("kwargs", [{"score_range": (3, -3)}, {"score_range": (0, 0)}, {"fallback": float("nan")}])
def test_parse_scores_rejects_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        parse_scores(["1"], **kwargs)
