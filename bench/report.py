"""``ehr-r1 bench report``: compare any number of runs (models and baselines) in markdown, JSON and PNG.

Writes into the output folder:

- ``report.md``: the runs (model, data, configuration hash, versions), one table per family with
  each task's primary metric and its 95 % interval per run, failed samples and skipped tasks,
  and warnings when runs were scored on different data or task versions;
- ``report.json``: the same numbers, machine-readable;
- ``scores-decision.png``, ``scores-risk.png``: per-task primary metric with CI error bars, one bar
  per run; ``roc.png``: ROC curves of the risk tasks, one curve per run (from the runs'
  predictions). A family or plot with nothing to show is not written.

matplotlib (extra ``bench``) is imported only here, on its Agg backend: no display needed.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.evaluate.results import Run, finite, load_run, write_json
from graphkit import __version__
from graphkit.atomic import atomic_path, atomic_write_text
from graphkit.errors import InputError
from graphkit.extras import require

log = logging.getLogger(__name__)

FAMILIES = ("decision", "risk")


def _labels(runs: Sequence[Run]) -> list[str]:
    """Run names, numbered ``name [k]`` where several runs share one."""
    names = [run.name for run in runs]
    return [f"{name} [{names[:i + 1].count(name)}]" if names.count(name) > 1 else name for i, name in enumerate(names)]


def _point(interval: dict[str, Any] | None) -> float:
    value = (interval or {}).get("point")
    return math.nan if value is None else float(value)


def _cell(task: dict[str, Any] | None) -> str:
    if task is None:
        return "–"
    interval = task["metrics"].get(task["primary"])
    point = _point(interval)
    text = "n/a" if math.isnan(point) else f"{point:.3f}"
    if interval and interval.get("low") is not None and interval.get("high") is not None and not math.isnan(point):
        text += f" [{interval['low']:.3f}, {interval['high']:.3f}]"
    notes = []
    if task["n_failed"]:
        notes.append(f"{task['n_failed']} failed")
    if task.get("n_no_answer"):
        notes.append(f"{task['n_no_answer']} no answer")
    return text + (f" ({', '.join(notes)})" if notes else "")


def _warnings(runs: Sequence[Run], labels: Sequence[str]) -> list[str]:
    warnings = []
    cards = {(run.results["data"].get("card_hash"), run.results["data"].get("split")) for run in runs}
    if len(cards) > 1:
        warnings.append("the runs were scored on different data or splits: "
                        + "; ".join(f"{label}: card {run.results['data'].get('card_hash')} "
                                    f"split {run.results['data'].get('split')}" for label, run in zip(labels, runs, strict=True)))
    versions: dict[str, set] = {}
    for run in runs:
        for task, version in (run.results.get("task_versions") or {}).items():
            versions.setdefault(task, set()).add(version)
    changed = sorted(task for task, seen in versions.items() if len(seen) > 1)
    if changed:
        warnings.append(f"task versions differ between runs for: {', '.join(changed)}")
    for label, run in zip(labels, runs, strict=True):
        failed = run.results.get("summary", {}).get("failed", 0)
        if failed:
            warnings.append(f"{label}: {failed} sample(s) failed and are left out of its metrics")
    return warnings


def report_data(runs: Sequence[Run]) -> dict[str, Any]:
    labels = _labels(runs)
    tasks: dict[str, dict[str, Any]] = {}
    for label, run in zip(labels, runs, strict=True):
        for key, task in run.results["tasks"].items():
            entry = tasks.setdefault(key, {"family": task["family"], "primary": task["primary"], "runs": {}})
            entry["runs"][label] = {name: task.get(name) for name in
                                    ("n", "n_scored", "n_failed", "n_no_answer", "metrics", "failures", "prevalence",
                                     "p_yes_sources") if name in task}
    ordered = dict(sorted(tasks.items(), key=lambda kv: (FAMILIES.index(kv[1]["family"]), kv[0])))
    return {
        "format": "ehr-r1-bench-report",
        "package_version": __version__,
        "runs": [{"label": label, "path": str(run.path), "kind": run.results["kind"], "name": run.name,
                  "model": run.results.get("model"), "config_hash": run.results.get("config_hash"),
                  "data": run.results.get("data"), "seed": run.results.get("seed"),
                  "package_version": run.results.get("package_version"), "summary": run.results.get("summary"),
                  "skipped_tasks": run.results.get("skipped_tasks", {})}
                 for label, run in zip(labels, runs, strict=True)],
        "tasks": ordered,
        "warnings": _warnings(runs, labels),
    }


def report_markdown(data: dict[str, Any], plots: Sequence[str], title: str) -> str:
    labels = [run["label"] for run in data["runs"]]
    lines = [f"# {title}", "", f"{len(labels)} run(s), written by `ehr-r1 bench report` (ehr-r1 {data['package_version']}).", ""]
    lines += ["| run | kind | model | data card | split | config hash | seed | ehr-r1 |", "|---|---|---|---|---|---|---|---|"]
    for run in data["runs"]:
        model = run["model"] or {}
        shown = model.get("spec") or model.get("baseline") or ""
        lines.append(f"| {run['label']} | {run['kind']} | `{shown}` | `{run['data'].get('card_hash')}` | "
                     f"{run['data'].get('split')} | `{run['config_hash']}` | {run['seed']} | {run['package_version']} |")
    for family in FAMILIES:
        keys = [k for k, t in data["tasks"].items() if t["family"] == family]
        if not keys:
            continue
        metric = "AUROC" if family == "risk" else "set F1 (next_event: accuracy)"
        lines += ["", f"## {'Decision-making' if family == 'decision' else 'Risk prediction'} tasks", "",
                  f"Primary metric ({metric}) with its 95 % bootstrap interval; `–`: not scored by that run.", "",
                  "| task | n | " + " | ".join(labels) + " |", "|---|---:|" + "---|" * len(labels)]
        for key in keys:
            task = data["tasks"][key]
            sizes = sorted({r["n"] for r in task["runs"].values()})
            cells = [_cell({**task["runs"][label], "primary": task["primary"]} if label in task["runs"] else None)
                     for label in labels]
            lines.append(f"| {key} | {'/'.join(map(str, sizes))} | " + " | ".join(cells) + " |")
        means = []
        for run in data["runs"]:
            family_summary = (run["summary"] or {}).get(family) or {}
            mean = family_summary.get("mean_primary")
            means.append("n/a" if mean is None or math.isnan(mean) else
                         f"{mean:.3f} ({family_summary.get('tasks_averaged')} tasks)")
        lines.append("| **mean** | | " + " | ".join(means) + " |")
        if family == "risk":
            lines += ["", "AUPRC:", "", "| task | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
            for key in keys:
                task = data["tasks"][key]
                cells = [_cell({**task["runs"][label], "primary": "auprc"}) if label in task["runs"] else "–"
                         for label in labels]
                lines.append(f"| {key} | " + " | ".join(cells) + " |")
    skipped = [(run["label"], key, reason) for run in data["runs"] for key, reason in run["skipped_tasks"].items()]
    if skipped:
        lines += ["", "## Tasks a run did not score", ""] + [f"- {label}: `{key}` ({reason})" for label, key, reason in skipped]
    if data["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {warning}" for warning in data["warnings"]]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in plots]
    lines += ["", "All numbers are also in `report.json`; each run's own files hold its per-sample predictions.", ""]
    return "\n".join(lines)


def _figure(width: float, height: float):
    require("matplotlib", "bench", "report plots")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", bbox_inches="tight")


def _scored(task: dict[str, Any], label: str) -> bool:
    return not math.isnan(_point((task["runs"].get(label) or {}).get("metrics", {}).get(task["primary"])))


def plot_scores(data: dict[str, Any], family: str, path: Path) -> bool:
    """Tasks with a score in some run, runs with a score in some task of the family."""
    tasks = {k: t for k, t in data["tasks"].items() if t["family"] == family}
    labels = [run["label"] for run in data["runs"] if any(_scored(t, run["label"]) for t in tasks.values())]
    keys = [k for k, t in tasks.items() if any(_scored(t, label) for label in labels)]
    if not keys:
        return False
    import numpy as np

    figure = _figure(8, 1.2 + 0.25 * len(keys) * max(1, len(labels)))
    axes = figure.add_subplot(1, 1, 1)
    height = 0.8 / len(labels)
    positions = np.arange(len(keys))
    for number, label in enumerate(labels):
        points, lows, highs = [], [], []
        for key in keys:
            task = data["tasks"][key]
            interval = (task["runs"].get(label) or {}).get("metrics", {}).get(task["primary"])
            point = _point(interval)
            points.append(point)
            low = interval.get("low") if interval else None
            high = interval.get("high") if interval else None
            lows.append(point - low if low is not None and not math.isnan(point) else 0.0)
            highs.append(high - point if high is not None and not math.isnan(point) else 0.0)
        offsets = positions - 0.4 + height * (number + 0.5)
        values = np.nan_to_num(np.array(points, dtype=float), nan=0.0)
        axes.barh(offsets, values, height=height, xerr=[lows, highs], capsize=2, label=label)
    axes.set_yticks(positions, keys)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("AUROC" if family == "risk" else "set F1 / accuracy (next_event)")
    axes.set_title(f"EHR-Bench {family} tasks (95 % bootstrap intervals)")
    axes.grid(axis="x", alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    _save(figure, path)
    return True


def plot_roc(runs: Sequence[Run], data: dict[str, Any], path: Path) -> bool:
    keys = [k for k, t in data["tasks"].items() if t["family"] == "risk"]
    labels = [run["label"] for run in data["runs"]]
    curves: dict[str, list[tuple[str, Any, Any, float]]] = {}
    metrics = require("sklearn.metrics", "bench", "ROC curves")
    for key in keys:
        for label, run in zip(labels, runs, strict=True):
            points = [(1 if str(e["label"]).lower() == "yes" else 0, e["p_yes"])
                      for e in run.predictions(key) if e["status"] == "ok" and e.get("p_yes") is not None]
            if len({y for y, _ in points}) < 2:
                continue
            fpr, tpr, _ = metrics.roc_curve([y for y, _ in points], [s for _, s in points])
            area = _point(data["tasks"][key]["runs"][label]["metrics"].get("auroc"))
            curves.setdefault(key, []).append((label, fpr, tpr, area))
    if not curves:
        return False
    columns = min(3, len(curves))
    rows = math.ceil(len(curves) / columns)
    figure = _figure(4.2 * columns, 4.0 * rows)
    for number, (key, lines) in enumerate(curves.items(), 1):
        axes = figure.add_subplot(rows, columns, number)
        for label, fpr, tpr, area in lines:
            axes.plot(fpr, tpr, label=f"{label} ({area:.3f})")
        axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
        axes.set_title(key, fontsize="medium")
        axes.set_xlabel("false positive rate")
        axes.set_ylabel("true positive rate")
        axes.set_aspect("equal")
        axes.legend(loc="lower right", fontsize="x-small")
    _save(figure, path)
    return True


def write_report(run_dirs: Sequence[str | Path], out: str | Path, *, title: str = "EHR-Bench report") -> dict[str, Any]:
    """Compare the finished runs in ``run_dirs``; write report.md, report.json and the plots to ``out``."""
    if not run_dirs:
        raise InputError("no runs given", where="RUN_DIR", fix="pass folders written by `ehr-r1 bench eval` or `bench baseline`")
    runs = [load_run(path) for path in run_dirs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = report_data(runs)
    plots = []
    for family in FAMILIES:
        if plot_scores(data, family, out / f"scores-{family}.png"):
            plots.append(f"scores-{family}.png")
    if plot_roc(runs, data, out / "roc.png"):
        plots.append("roc.png")
    data["plots"] = plots
    write_json(out / "report.json", data)
    atomic_write_text(out / "report.md", report_markdown(finite(data), plots, title))
    log.info("bench report: %d run(s) -> %s", len(runs), out)
    return json.loads(json.dumps(finite(data)))
