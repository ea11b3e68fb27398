"""Baselines without a language model (``ehr-r1 bench baseline``), in the result format of ``bench eval``.

Each baseline is fitted on the train split of the same build and scored on the evaluated split
(test by default) with the evaluator's own scoring, so ``bench report`` puts it next to models:

- ``most-frequent`` (decision tasks): set tasks predict the k items most often in the train gold
  sets (k = the median train gold-set size, at least 1; ties by name); ``next_event`` predicts the
  most frequent train class.
- ``repeat-last`` (decision tasks): the next event repeats the last one. Set tasks predict the
  items of the context's last event of the task's target table: the sample's ``context_items`` of
  that table whose names appear in that event's block of the record (CCS tasks map the items'
  ICD codes to CCS categories; the ATC tasks are skipped: the items carry drug names, not NDCs);
  with no such event the prediction is empty. ``next_event`` predicts the table of the record's
  last event.
- ``logreg`` (risk tasks): a logistic regression (scikit-learn, extra ``bench``) on count
  features of the context: log(1 + events) per table (from the record's event headings),
  log(1 + context events) and one indicator per context item key. A task whose train split has
  one class gets its prevalence as a constant score.

A task a baseline does not apply to is listed under ``skipped_tasks`` with the reason.
"""

from __future__ import annotations

import logging
import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench.evaluate.data import EvalData, TaskSamples, gold_of, iter_rows, load_eval_data
from bench.evaluate.results import PREDICTIONS, RESULTS_JSON, RUN_JSON, write_json
from bench.evaluate.runner import run_header
from bench.evaluate.scoring import score_text, summary, task_metrics
from bench.mappings import load_ccs
from bench.taskdef import TaskDef
from graphkit.atomic import atomic_path
from graphkit.errors import ConfigError
from graphkit.extras import require
from graphkit.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

BASELINES = ("most-frequent", "repeat-last", "logreg")
_HEADING = re.compile(r"^## (?P<name>.+?)(?: \[(?P<time>[^\]]*)\])?[ \t]*$", re.MULTILINE)
_SEPARATOR_CELL = re.compile(r"^-+$")


def _heading_tables() -> dict[str, str]:
    from graphkit.ehr.events import EVENT_TABLES

    names: dict[str, str] = {}
    for table, spec in EVENT_TABLES.items():
        for name in (spec.clean_name, spec.ehr_r1_name):
            if name:
                names[name] = table
    return names


def record_events(record: str) -> list[tuple[str, str]]:
    """``(table, block text)`` of each event block of a serialized record, oldest first.

    Blocks whose heading names no event table (demographics) are left out; both record styles
    (graphkit.ehr.serialize) are understood.
    """
    tables = _heading_tables()
    matches = list(_HEADING.finditer(record))
    events = []
    for number, match in enumerate(matches):
        table = tables.get(match["name"].strip())
        if table is None:
            continue
        end = matches[number + 1].start() if number + 1 < len(matches) else len(record)
        events.append((table, record[match.end():end]))
    return events


def block_values(block: str) -> set[str]:
    """Every value written in an event block: ``- Key: Value`` lines and markdown table cells."""
    values: set[str] = set()
    for line in block.splitlines():
        line = line.strip()
        if line.startswith("- ") and ": " in line:
            values.add(line.split(": ", 1)[1].strip())
        elif line.startswith("|"):
            values.update(cell.strip() for cell in line.strip("|").split("|")
                          if cell.strip() and not _SEPARATOR_CELL.match(cell.strip()))
    return values


def _ccs_namer(task: TaskDef) -> Callable[[str], str | None] | None:
    """item key -> CCS category label for the CCS tasks; identity (None) for the others."""
    mapping = task.target.mapping if task.target is not None else None
    if mapping not in ("ccs_dx", "ccs_px"):
        return None
    ccs = load_ccs("dx" if mapping == "ccs_dx" else "px")

    def name(key: str) -> str | None:
        parts = key.split(":")
        return ccs.label(parts[-2], parts[-1]) if len(parts) >= 3 else None

    return name


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------------------- the baselines
def fit_most_frequent(task: TaskDef, train: TaskSamples) -> tuple[Callable[[dict], list[str]], dict[str, Any]]:
    labels = [gold_of(row["label"]) for row in iter_rows(train.frame, ("label",))]
    if not labels:
        raise _NotApplicable("the train split has no samples of this task")
    if task.output_type == "class":
        counts = Counter(labels)
        best = min(counts, key=lambda name: (-counts[name], name))
        return (lambda row: [best]), {"prediction": [best], "train_samples": len(labels)}
    counts = Counter(item for gold in labels for item in _dedupe(gold))
    k = max(1, round(statistics.median(len(set(gold)) for gold in labels)))
    top = sorted(counts, key=lambda name: (-counts[name], name))[:k]
    return (lambda row: top), {"k": k, "prediction": top, "train_samples": len(labels)}


def fit_repeat_last(task: TaskDef, train: TaskSamples) -> tuple[Callable[[dict], list[str]], dict[str, Any]]:
    if task.output_type == "class":
        def last_table(row: dict) -> list[str]:
            events = record_events(row["input"])
            return [events[-1][0]] if events else []

        return last_table, {}
    if task.target.mapping == "atc":
        raise _NotApplicable("context items carry drug names, not the NDCs the ATC classes come from")
    table = task.target.table
    to_target = _ccs_namer(task)

    def last_event_items(row: dict) -> list[str]:
        blocks = [block for event_table, block in record_events(row["input"]) if event_table == table]
        if not blocks:
            return []
        written = block_values(blocks[-1])
        items = [item for item in row.get("context_items") or [] if item["table"] == table and item["name"] in written]
        if to_target is None:
            return _dedupe(item["name"] for item in items)
        return _dedupe(name for name in (to_target(item["key"]) for item in items) if name)

    return last_event_items, {"table": table, "mapping": task.target.mapping}


def count_features(row: dict) -> dict[str, float]:
    events = Counter(table for table, _ in record_events(row["input"]))
    features = {f"events:{table}": math.log1p(n) for table, n in events.items()}
    features["context_events"] = math.log1p(row.get("n_context_events") or sum(events.values()))
    for item in row.get("context_items") or []:
        features[f"item:{item['key']}"] = 1.0
    return features


def fit_logreg(task: TaskDef, train: TaskSamples, seed: int) -> tuple[Callable[[list[dict]], list[float]], dict[str, Any]]:
    columns = ("input", "label", "context_items", "n_context_events")
    rows = list(iter_rows(train.frame, columns))
    if not rows:
        raise _NotApplicable("the train split has no samples of this task")
    labels = [1 if str(row["label"]).lower() == "yes" else 0 for row in rows]
    prevalence = sum(labels) / len(labels)
    if len(set(labels)) < 2:
        return (lambda batch: [prevalence] * len(batch)), {"constant": prevalence, "train_samples": len(rows)}
    feature_extraction = require("sklearn.feature_extraction", "bench", "the logreg baseline")
    linear_model = require("sklearn.linear_model", "bench", "the logreg baseline")
    vectorizer = feature_extraction.DictVectorizer(sparse=True)
    matrix = vectorizer.fit_transform([count_features(row) for row in rows])
    model = linear_model.LogisticRegression(C=1.0, max_iter=2000, solver="lbfgs", random_state=seed)
    model.fit(matrix, labels)

    def predict(batch: list[dict]) -> list[float]:
        return [float(p) for p in model.predict_proba(vectorizer.transform([count_features(r) for r in batch]))[:, 1]]

    return predict, {"features": len(vectorizer.feature_names_), "train_samples": len(rows),
                     "train_prevalence": prevalence}


class _NotApplicable(Exception):
    pass


# ---------------------------------------------------------------------------- runs
def _applies(name: str, task: TaskDef) -> str | None:
    """None when baseline ``name`` scores ``task``, else why not."""
    if name == "logreg":
        return None if task.output_type == "binary" else "a risk-task baseline"
    return None if task.family == "decision" else "a decision-task baseline"


def _decision_entries(predict: Callable[[dict], list[str]], samples: TaskSamples, start: int) -> list[dict[str, Any]]:
    task = samples.task
    entries = []
    columns = ("id", "input", "label", "context_items", "n_context_events")
    for offset, row in enumerate(iter_rows(samples.frame, columns)):
        gold = gold_of(row["label"])
        prediction = predict(row)
        scored = score_text(task.output_type, False, gold, "\n".join(prediction))
        entries.append({"i": start + offset, "id": row["id"], "task": task.key, "status": "ok", "label": gold,
                        "completion": None, "prediction": prediction, **scored, "error": None, "attempts": 0})
    return entries


def _risk_entries(predict: Callable[[list[dict]], list[float]], samples: TaskSamples, start: int) -> list[dict[str, Any]]:
    from bench.evaluate.scoring import score_probability

    rows = list(iter_rows(samples.frame, ("id", "input", "label", "context_items", "n_context_events")))
    scores = predict(rows) if rows else []
    entries = []
    for offset, (row, p_yes) in enumerate(zip(rows, scores, strict=True)):
        gold = gold_of(row["label"])
        entries.append({"i": start + offset, "id": row["id"], "task": samples.task.key, "status": "ok", "label": gold,
                        "completion": None, "p_yes": p_yes, "p_yes_source": "logreg", **score_probability(gold, p_yes),
                        "error": None, "attempts": 0})
    return entries


def run_baseline(name: str, data: EvalData, train: EvalData, out: Path, *, n_resamples: int = 1000,
                 seed: int = 0) -> dict[str, Any]:
    """Fit baseline ``name`` on ``train``, score it on ``data``; write the run folder ``out``; results."""
    entries: list[dict[str, Any]] = []
    fitted: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    scored: dict[str, TaskSamples] = {}
    for key, samples in data.tasks.items():
        task = samples.task
        reason = _applies(name, task)
        if reason is None and key not in train.tasks:
            reason = "the build has no train split for this task"
        if reason is None:
            try:
                if name == "logreg":
                    predict, fitted[key] = fit_logreg(task, train.tasks[key], seed)
                    entries += _risk_entries(predict, samples, len(entries))
                else:
                    fit = fit_most_frequent if name == "most-frequent" else fit_repeat_last
                    predict, fitted[key] = fit(task, train.tasks[key])
                    entries += _decision_entries(predict, samples, len(entries))
                scored[key] = samples
            except _NotApplicable as exc:
                reason = str(exc)
        if reason is not None:
            skipped[key] = reason
    config = {"baseline": name, "split": data.split, "tasks": list(data.tasks), "fit_split": "train",
              "n_resamples": n_resamples, "seed": seed}
    model = {"baseline": name, "fitted": fitted}
    shown = EvalData(data.path, data.split, data.card, data.card_hash, scored)
    header = run_header("baseline", name, model, config, shown, seed)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RUN_JSON, header)
    import json

    with atomic_path(out / PREDICTIONS) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for entry in entries:
            handle.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
    by_task: dict[str, list[dict[str, Any]]] = {key: [] for key in scored}
    for entry in entries:
        by_task[entry["task"]].append(entry)
    tasks = {key: task_metrics(scored[key].task, by_task[key], n_resamples=n_resamples, seed=seed) for key in scored}
    results = {**header, "tasks": tasks, "summary": summary(tasks), "skipped_tasks": skipped}
    write_json(out / RESULTS_JSON, results)
    return results


def run_baselines(data_dir: str | Path, out: str | Path, which: Iterable[str] = BASELINES, *, split: str = "test",
                  tasks: Iterable[str] | None = None, n_resamples: int = 1000, seed: int = 0,
                  progress: Progress | None = None) -> dict[str, dict[str, Any]]:
    """Every baseline of ``which`` into ``out/<name>/``; returns their results by name."""
    which = list(which)
    unknown = [name for name in which if name not in BASELINES]
    if unknown or not which:
        raise ConfigError("unknown baseline", where="option --which", value=unknown or which,
                          fix=f"choose among {', '.join(BASELINES)}")
    progress = progress or NULL_PROGRESS
    tasks = list(tasks) if tasks else None
    data = load_eval_data(data_dir, split=split, tasks=tasks)
    train_tasks = [key for key in data.tasks if (Path(data_dir) / "data" / key).is_dir()]
    train = load_eval_data(data_dir, split="train", tasks=train_tasks)
    out = Path(out)
    handle = progress.start("bench baseline", total=len(which))
    results = {}
    try:
        for name in which:
            results[name] = run_baseline(name, data, train, out / name, n_resamples=n_resamples, seed=seed)
            progress.advance(handle)
    finally:
        progress.finish(handle)
    return results
