"""Reading sentiment scores out of what a generative model wrote."""

import math
import re


# A number: optional sign, digits with an optional decimal part (or ".5"), optional exponent. Without a sign the
# digits must not be glued to a letter, digit or dot before them, so "Qwen2.5" or "v1.2" hold no number.
_NUMBER = re.compile(r"(?:[+-]|(?<![\w.]))(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# The whole text is one number with a decimal comma ("1,5", "Score: -0,8").
_SINGLE_DECIMAL_COMMA = re.compile(r"[^0-9]*[0-9]+,[0-9]+[^0-9]*")
_DENOMINATOR_PREFIX = re.compile(r"(?:/|\bout\s+of)\s*$", re.IGNORECASE)
_RANGE_JOINER = re.compile(r"\s*(?:to|and|,|~)\s*", re.IGNORECASE)
_DENOMINATOR_LOOKBACK_CHARS = 16


def parse_score(text, score_range=(-3.0, 3.0)):
    """
    The sentiment score a generative model wrote in `text`, or `None` when it wrote no usable number.

    Rules, in order:

    1. The unicode minus "−" (U+2212) reads as "-".
    2. If the only digits in the text are one number with a decimal comma ("1,5", "Score: -0,8"), the comma is a
       decimal point. Anywhere else a comma separates numbers ("[-3,3]" is -3 and 3).
    3. Numbers are signed decimals, optionally with an exponent ("2.4", "+1", "-.5", "2e-1"). Digits glued to a
       letter or a dot are not a number ("Qwen2.5", "v1.2"); a trailing dot is punctuation ("-0.8." is -0.8).
    4. Skipped numbers: a denominator, i.e. a number right after "/" or "out of" ("1.5/3", "2 out of 3",
       "(out of 3): 2"), and an echo of the scale, i.e. the two ends of `score_range` joined by "to", "and", ","
       or "~" ("on a scale from -3 to 3, I'd say 2" is 2).
    5. The first number left is the answer. If it is not finite ("1e999") the answer is `None`, not the next number.

    Text without any number ("positive", "", "N/A", "nan", "inf") gives `None`, as does a non-string `text`. The
    value is returned as written, not clipped to `score_range` (`parse_scores` clips and counts). Never raises.

    Example:

    ```python
    >>> parse_score("Score: **1.5**/3")
    1.5
    >>> parse_score("On a scale from −3 to 3, this is −2.")
    -2.0
    >>> parse_score("I cannot tell.") is None
    True
    ```
    """
    if not isinstance(text, str):
        return None
    text = text.replace("\u2212", "-")
    if _SINGLE_DECIMAL_COMMA.fullmatch(text):
        text = re.sub(r"([0-9]),([0-9])", r"\1.\2", text, count=1)
    matches = list(_NUMBER.finditer(text))
    low, high = float(score_range[0]), float(score_range[1])
    index = 0
    while index < len(matches):
        match = matches[index]
        lookback = text[max(0, match.start() - _DENOMINATOR_LOOKBACK_CHARS) : match.start()]
        if _DENOMINATOR_PREFIX.search(lookback):
            index += 1
            continue
        if index + 1 < len(matches) and _is_scale_echo(text, match, matches[index + 1], low, high):
            index += 2
            continue
        value = float(match.group())
        return value + 0.0 if math.isfinite(value) else None  # + 0.0 turns "-0" into 0.0
    return None


def _is_scale_echo(text, match, next_match, low, high):
    joiner = text[match.end() : next_match.start()]
    return (
        float(match.group()) == low and float(next_match.group()) == high and _RANGE_JOINER.fullmatch(joiner)
    )


def parse_scores(texts, score_range=(-3.0, 3.0), fallback=0.0, truncated=None):
    """
    Scores for a list of generated answers, with the failure rates a report needs.

    Each text goes through `parse_score`. An answer that hit the generation limit before its end-of-turn token
    (`truncated[i]` True) is not trusted ("-1.5" cut after "-1" would read as -1.0): it is scored as `fallback` and
    counted in `truncated_rate`. Of the others, an unparsable answer is scored as `fallback` (default 0.0, the
    neutral point of the MOSI and SIMS scales; used as given, not clipped) and counted in `unparsable_rate`; a value
    outside `score_range` is clipped to it. All rates are over all `len(texts)` answers (0.0 for an empty list).

    Returns:
        `dict` with `scores` (`list[float]`, one per text), `unparsable_rate`, `truncated_rate`, `out_of_range_rate`,
        `failures` (`list` of `(index, text)` for the unparsable answers) and `fallback`.

    Raises:
        `ValueError`: `score_range` is not `(low, high)` with finite `low < high`, or `fallback` is not finite.

    Example:

    ```python
    >>> parse_scores(["2.5", "7", "no idea"])["scores"]
    [2.5, 3.0, 0.0]
    ```
    """
    low, high = (float(bound) for bound in score_range)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"score_range must be (low, high) with finite low < high, got {score_range!r}.")
    if not math.isfinite(fallback):
        raise ValueError(f"fallback must be a finite float (the score of unparsable answers), got {fallback!r}.")
    texts = list(texts)
    truncated = list(truncated) if truncated is not None else [False] * len(texts)
    if len(truncated) != len(texts):
        raise ValueError(f"truncated has {len(truncated)} flags for {len(texts)} answers.")
    scores, failures, num_out_of_range, num_truncated = [], [], 0, 0
    for index, (text, was_truncated) in enumerate(zip(texts, truncated)):
        value = None if was_truncated else parse_score(text, score_range=(low, high))
        if was_truncated:
            num_truncated += 1
            scores.append(float(fallback))
        elif value is None:
            failures.append((index, text))
            scores.append(float(fallback))
        elif value < low or value > high:
            num_out_of_range += 1
            scores.append(min(max(value, low), high))
        else:
            scores.append(value)
    num_texts = len(scores)
    return {
        "scores": scores,
        "unparsable_rate": len(failures) / num_texts if num_texts else 0.0,
        "truncated_rate": num_truncated / num_texts if num_texts else 0.0,
        "out_of_range_rate": num_out_of_range / num_texts if num_texts else 0.0,
        "failures": failures,
        "fallback": float(fallback),
    }
