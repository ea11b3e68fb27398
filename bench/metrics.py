"""EHR-Bench metrics: answer parsing, exact-match set scores, accuracy, AUROC/AUPRC, bootstrap CIs.

Behaviour follows the EHR-R1 reference (eval/score_func.py, test.py, grpo.py) on every edge case
except where a difference is documented here:

- `parse_answer` keeps only the text after the *last* ``</think>`` (as grpo.py's reward does) and
  returns None when a thinking answer has no ``</think>`` at all; test.py would instead score the
  whole output, thinking included.
- blank lines are dropped (grpo.py does; test.py keeps one ``""`` item that lowers precision).
- list markers (``- ``, ``* ``, ``• ``, ``1. ``, ``2) ``) are stripped by default so an untrained
  model that answers with a bulleted list is scored on its items; the reference strips nothing
  (``strip_markers=False`` reproduces it).
- `accuracy` compares whole answers (case-insensitive) by default; the reference's `calculate_acc`
  accepts any output that *starts with* the label (``prefix=True`` reproduces that).

Training rewards reuse these functions, so they never print and never raise on model output.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from graphkit.errors import InputError
from graphkit.extras import require

THINK_END = "</think>"
THINK_START = "<think>"
_MARKER = re.compile(r"^(?:[-*•+]|\d{1,3}[.)])\s+")


def answer_text(text: str | None, thinking: bool = True) -> str | None:
    """The answer part of a completion: after the last ``</think>``; None when it is missing.

    With thinking off the whole text is the answer, except that an (empty) think block is still
    cut off and an unclosed ``<think>`` means the model never answered.
    """
    if text is None:
        return None
    if THINK_END in text:
        return text.rsplit(THINK_END, 1)[1]
    if thinking or THINK_START in text:
        return None
    return text


def parse_answer(text: str | None, thinking: bool = True, *, strip_markers: bool = True) -> list[str] | None:
    """Answer lines: stripped, list markers removed, lowercased, deduplicated in order.

    None when the answer block is missing (see `answer_text`); ``[]`` when it is present but
    empty. Lines are split on newlines and on a literal backslash-n, as the reference's test.py
    does for models that write ``\\n`` as text.
    """
    answer = answer_text(text, thinking)
    if answer is None:
        return None
    items: dict[str, None] = {}
    for line in answer.replace("\\n", "\n").splitlines():
        line = line.strip()
        if strip_markers:
            line = _MARKER.sub("", line).strip()
        if line:
            items.setdefault(line.lower(), None)
    return list(items)


def _normalized_set(items: Iterable[str] | None) -> set[str]:
    if items is None:
        return set()
    if isinstance(items, str):
        raise TypeError("pass a list of items, not one string; use parse_answer() on raw model output")
    return {item.strip().lower() for item in items}


def set_prf(pred: Iterable[str] | None, gold: Iterable[str]) -> tuple[float, float, float]:
    """Exact-match set precision, recall and F1 (case- and surrounding-space-insensitive).

    As the reference's `calculate_em`: duplicates count once; an empty (or None) prediction has
    precision 0; an empty gold set has recall 0; F1 is 0 when precision + recall is 0, so two
    empty sets score (0, 0, 0), not 1.
    """
    pred_set = _normalized_set(pred)
    gold_set = _normalized_set(gold)
    hits = len(pred_set & gold_set)
    precision = hits / len(pred_set) if pred_set else 0.0
    recall = hits / len(gold_set) if gold_set else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def accuracy(pred: Sequence[str] | str | None, gold: str, *, prefix: bool = False) -> float:
    """1.0 when the answer is the gold class (next_event table, yes/no), else 0.0.

    `pred` is parsed answer lines (the first one is the answer), a raw string, or None (a
    missing answer scores 0). ``prefix=True`` is the reference's rule: the answer only has to
    start with the label.
    """
    if pred is None:
        return 0.0
    if isinstance(pred, str):
        answer = pred.strip().lower()
    else:
        answer = pred[0].strip().lower() if len(pred) else ""
    label = gold.strip().lower()
    if prefix:
        return 1.0 if answer.startswith(label) else 0.0
    return 1.0 if answer == label else 0.0


def _binary(y_true: Sequence[object], y_score: Sequence[float]) -> tuple[list[int], list[float]]:
    if len(y_true) != len(y_score):
        raise InputError(
            "labels and scores differ in length",
            where="y_true/y_score",
            value=(len(y_true), len(y_score)),
            fix="pass one score per labelled sample",
        )
    labels: list[int] = []
    for i, y in enumerate(y_true):
        if y in (1, True, "yes", "1"):
            labels.append(1)
        elif y in (0, False, "no", "0"):
            labels.append(0)
        else:
            raise InputError(
                "is not a binary label", where=f"y_true[{i}]", value=y, fix="use 0/1 or 'yes'/'no'"
            )
    scores: list[float] = []
    for i, s in enumerate(y_score):
        if not isinstance(s, numbers.Real) or not math.isfinite(s):
            raise InputError(
                "is not a finite score",
                where=f"y_score[{i}]",
                value=s,
                fix="leave failed samples out (they are reported separately) or give P(yes)",
            )
        scores.append(float(s))
    return labels, scores


def auroc(y_true: Sequence[object], y_score: Sequence[float]) -> float:
    """Area under the ROC curve; NaN when only one class is present (it is undefined)."""
    labels, scores = _binary(y_true, y_score)
    if len(set(labels)) < 2:
        return math.nan
    metrics = require("sklearn.metrics", "bench", "AUROC")
    return float(metrics.roc_auc_score(labels, scores))


def auprc(y_true: Sequence[object], y_score: Sequence[float]) -> float:
    """Area under the precision-recall curve (average precision); NaN without positives or negatives."""
    labels, scores = _binary(y_true, y_score)
    if len(set(labels)) < 2:
        return math.nan
    metrics = require("sklearn.metrics", "bench", "AUPRC")
    return float(metrics.average_precision_score(labels, scores))


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile-bootstrap confidence interval."""

    point: float
    low: float
    high: float
    level: float
    n: int
    n_resamples: int
    skipped: int  # resamples where the statistic was undefined (e.g. one class only)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "point": self.point,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "n": self.n,
            "n_resamples": self.n_resamples,
            "skipped": self.skipped,
        }


def bootstrap_ci(
    statistic: Callable[..., float],
    *columns: Sequence[object],
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap CI of ``statistic(*columns)``, resampling rows jointly.

    Seeded, so the same inputs give the same interval. E.g. ``bootstrap_ci(numpy.mean, f1s)`` or
    ``bootstrap_ci(auroc, labels, scores)``. Resamples where the statistic is NaN are skipped
    and counted; if every resample is undefined the interval is NaN.
    """
    import numpy as np

    if not columns:
        raise InputError("no data columns given", where="bootstrap_ci", fix="pass the per-sample values")
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise InputError(
            "columns differ in length",
            where="bootstrap_ci",
            value=[len(c) for c in columns],
            fix="pass aligned per-sample columns",
        )
    if n_resamples < 1:
        raise InputError("must be at least 1", where="n_resamples", value=n_resamples, fix="use e.g. 1000")
    if not 0 < level < 1:
        raise InputError("must be between 0 and 1", where="level", value=level, fix="use e.g. 0.95")
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, level, 0, n_resamples, n_resamples)
    arrays = [np.asarray(c) for c in columns]
    point = float(statistic(*arrays))
    rng = np.random.default_rng(seed)
    values: list[float] = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        value = float(statistic(*(a[idx] for a in arrays)))
        if math.isfinite(value):
            values.append(value)
    skipped = n_resamples - len(values)
    if not values:
        return Interval(point, math.nan, math.nan, level, n, n_resamples, skipped)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(point, float(low), float(high), level, n, n_resamples, skipped)
