"""The result format shared by ``bench eval`` and ``bench baseline`` runs (read by ``bench report``).

A run folder holds:

- ``run.json``: the run's identity, written when it starts (kind, name, model, config and its
  hash, data identity, seed, package version); a resumed run must match it.
- ``predictions.jsonl``: one line per sample: ``i`` (position), ``id``, ``task``, ``status``
  ("ok" | "failed"), ``label``, ``completion`` (model runs), ``answer``, ``p_yes`` and
  ``p_yes_source`` (risk tasks), ``scores``, ``error``, ``attempts``, ``seconds``.
- ``results.json``: run.json's fields plus ``tasks`` (per task: counts, failures and metrics, each
  ``{point, low, high, level, n, n_resamples, skipped}``), ``summary`` and ``finished``.
  Undefined numbers (AUROC with one class) are ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphkit.atomic import atomic_write_text
from graphkit.errors import InputError

FORMAT = "ehr-r1-bench-results"
FORMAT_VERSION = 1
RUN_JSON = "run.json"
RESULTS_JSON = "results.json"
PREDICTIONS = "predictions.jsonl"


def finite(obj: Any) -> Any:
    """``obj`` with NaN and infinities replaced by None, so the JSON is standard."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(finite(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n")


@dataclass(frozen=True)
class Run:
    """A finished run folder (model or baseline)."""

    path: Path
    results: dict[str, Any]

    @property
    def name(self) -> str:
        return self.results["name"]

    def predictions(self, task: str | None = None) -> Iterator[dict[str, Any]]:
        path = self.path / PREDICTIONS
        if not path.exists():
            return
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                entry = json.loads(line)
                if task is None or entry["task"] == task:
                    yield entry


def load_run(path: str | Path) -> Run:
    path = Path(path)
    results_path = path / RESULTS_JSON
    if not results_path.exists():
        hint = ("the run is unfinished: run the same `ehr-r1 bench eval` again to finish it"
                if (path / RUN_JSON).exists() else "pass a folder written by `ehr-r1 bench eval` or `ehr-r1 bench baseline`")
        raise InputError("has no results.json", where=str(path), fix=hint)
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except ValueError:
        raise InputError("is not valid JSON", where=str(results_path), fix="re-run the evaluation") from None
    if results.get("format") != FORMAT:
        raise InputError("is not an ehr-r1 bench result file", where=str(results_path), value=results.get("format"),
                         fix="pass a folder written by `ehr-r1 bench eval` or `ehr-r1 bench baseline`")
    if results.get("format_version", 0) > FORMAT_VERSION:
        raise InputError("was written by a newer ehr-r1", where=str(results_path), value=results.get("format_version"),
                         fix="upgrade ehr-r1")
    return Run(path, results)
