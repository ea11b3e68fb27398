"""Scores of one sample and of one task, shared by model runs and baselines.

Per sample (the ``scores`` of a prediction line):

- set tasks: the answer lines (``bench.metrics.parse_answer``: after the last ``</think>`` when
  thinking, stripped, lowercased, deduplicated) against the gold items, exact-match set
  precision / recall / F1 (``set_prf``). A completion with no answer block scores 0 and is
  counted as ``no_answer``.
- class tasks (next_event): accuracy of the first answer line (case-insensitive).
- binary (risk) tasks: P(yes) is the score; accuracy at 0.5 is reported next to AUROC/AUPRC.

A sample the model could not be asked (endpoint errors after the retries) has status
``failed``: it is left out of every metric and counted, never scored as 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from bench.metrics import accuracy, bootstrap_ci, parse_answer, set_prf

SET_METRIC_NAMES = {"set_f1": "f1", "set_precision": "precision", "set_recall": "recall"}


def primary_metric(metric: str) -> str:
    """The result-file name of a task's metric (set_f1 -> f1; accuracy, auroc, auprc unchanged)."""
    return SET_METRIC_NAMES.get(metric, metric)


def score_text(output_type: str, thinking: bool, gold: Sequence[str] | str, completion: str | None) -> dict[str, Any]:
    """``answer`` (parsed lines or None) and ``scores`` of a set or class task's completion."""
    answer = parse_answer(completion, thinking=thinking)
    if output_type == "set":
        precision, recall, f1 = set_prf(answer, list(gold))
        return {"answer": answer, "scores": {"precision": precision, "recall": recall, "f1": f1}}
    return {"answer": answer, "scores": {"accuracy": accuracy(answer, str(gold))}}


def score_probability(gold: str, p_yes: float) -> dict[str, Any]:
    answer = "yes" if p_yes >= 0.5 else "no"
    return {"answer": answer, "scores": {"accuracy": 1.0 if answer == str(gold).strip().lower() else 0.0}}


def ranked_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUROC as the Mann-Whitney U statistic with tied scores sharing their mean rank.

    Equal to bench.metrics.auroc (scikit-learn) and a hundred times faster on small inputs,
    which matters inside a 1000-resample bootstrap; NaN with one class.
    """
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(starts_group)
    ends = np.r_[starts[1:], len(ordered)]
    ranks = np.empty(len(ordered))
    ranks[order] = ((starts + 1 + ends) / 2)[np.cumsum(starts_group) - 1]  # 1-based mean rank of each tie group
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def step_auprc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (scikit-learn's definition: sum of precision times recall steps, one step
    per distinct score from the highest), equal to bench.metrics.auprc; NaN with one class."""
    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        return math.nan
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    true_positives = np.cumsum(sorted_labels)[last_of_value]
    precision = true_positives / (last_of_value + 1)
    recall_steps = np.diff(np.r_[0, true_positives]) / positives
    return float(np.sum(recall_steps * precision))


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _interval(statistic, *columns, n_resamples: int, seed: int) -> dict[str, Any]:
    return bootstrap_ci(statistic, *columns, n_resamples=n_resamples, seed=seed).as_dict()


def task_metrics(task: Any, entries: Iterable[dict[str, Any]], *, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Counts and metrics (each a point estimate with its 95 % bootstrap interval) of one task.

    ``task`` is a TaskDef (or anything with family, output_type, metric, version); ``entries``
    are its prediction lines.
    """
    entries = list(entries)
    ok = [e for e in entries if e["status"] == "ok"]
    failures = Counter(e.get("error") or "failed" for e in entries if e["status"] != "ok")
    result: dict[str, Any] = {
        "family": task.family,
        "output_type": task.output_type,
        "metric": task.metric,
        "primary": primary_metric(task.metric),
        "version": task.version,
        "n": len(entries),
        "n_scored": len(ok),
        "n_failed": len(entries) - len(ok),
        "failures": dict(failures.most_common()),
        "metrics": {},
    }
    if task.output_type == "binary":
        labels = np.array([1 if str(e["label"]).lower() == "yes" else 0 for e in ok], dtype=np.int64)
        scores = np.array([e["p_yes"] for e in ok], dtype=np.float64)
        result["prevalence"] = _mean(labels.astype(float))
        result["p_yes_sources"] = dict(Counter(e.get("p_yes_source") or "none" for e in ok).most_common())
        if len(ok):
            result["metrics"]["auroc"] = _interval(ranked_auroc, labels, scores, n_resamples=n_resamples, seed=seed)
            result["metrics"]["auprc"] = _interval(step_auprc, labels, scores, n_resamples=n_resamples, seed=seed)
            correct = np.array([e["scores"]["accuracy"] for e in ok], dtype=np.float64)
            result["metrics"]["accuracy"] = _interval(_mean, correct, n_resamples=n_resamples, seed=seed)
        return result
    result["n_no_answer"] = sum(1 for e in ok if e.get("answer") is None)
    names = ("precision", "recall", "f1") if task.output_type == "set" else ("accuracy",)
    if ok:
        for name in names:
            values = np.array([e["scores"][name] for e in ok], dtype=np.float64)
            result["metrics"][name] = _interval(_mean, values, n_resamples=n_resamples, seed=seed)
    return result


def summary(tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Macro averages of each family's primary metric over the tasks where it is defined."""
    out: dict[str, Any] = {}
    for family in ("decision", "risk"):
        points = {key: t["metrics"][t["primary"]]["point"] for key, t in tasks.items()
                  if t["family"] == family and t["primary"] in t["metrics"]}
        defined = {k: v for k, v in points.items() if not math.isnan(v)}
        out[family] = {
            "tasks": len([t for t in tasks.values() if t["family"] == family]),
            "tasks_averaged": len(defined),
            "mean_primary": float(np.mean(list(defined.values()))) if defined else math.nan,
        }
    out["samples"] = sum(t["n"] for t in tasks.values())
    out["failed"] = sum(t["n_failed"] for t in tasks.values())
    return out
