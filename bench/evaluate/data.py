"""The samples a run evaluates: one split of an ``ehr-r1 bench build`` folder.

A build folder holds ``data/<task>/<split>.parquet`` (or ``.jsonl``) and ``card.json`` (whose hash
identifies the data in result files). A folder with the same ``data/`` layout but no card is read
too (its identity is then the hash of the sample files), with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from bench.taskdef import TaskDef, load_tasks
from graphkit.errors import ConfigError, InputError
from graphkit.hashing import file_hash

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
REQUIRED_COLUMNS = ("id", "task", "input", "instruction", "label", "output_type")
SAMPLE_FORMATS = (".parquet", ".jsonl")


@dataclass(frozen=True)
class TaskSamples:
    task: TaskDef
    frame: pl.DataFrame  # the split's rows (id order), after --limit
    path: Path
    data_version: int | None  # task_version recorded in the rows


@dataclass(frozen=True)
class EvalData:
    path: Path
    split: str
    card: dict[str, Any] | None
    card_hash: str | None
    tasks: dict[str, TaskSamples]

    @property
    def n_samples(self) -> int:
        return sum(t.frame.height for t in self.tasks.values())

    def task_versions(self) -> dict[str, int | None]:
        return {key: t.data_version for key, t in self.tasks.items()}

    def describe(self) -> dict[str, Any]:
        card = self.card or {}
        return {
            "path": str(self.path),
            "split": self.split,
            "card_hash": self.card_hash,
            "build_config_hash": card.get("config_hash"),
            "source_fingerprint": (card.get("source") or {}).get("fingerprint"),
            "counts": {key: t.frame.height for key, t in self.tasks.items()},
        }


def split_file(data_dir: Path, task: str, split: str) -> Path | None:
    for suffix in SAMPLE_FORMATS:
        path = data_dir / "data" / task / f"{split}{suffix}"
        if path.exists():
            return path
    return None


def read_samples(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_ndjson(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"cannot be read as samples ({type(exc).__name__})", where=str(path),
                         fix="rebuild the data with `ehr-r1 bench build`") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError("lacks sample columns", where=str(path), value=missing,
                         fix="use a folder written by `ehr-r1 bench build` (docs/interfaces.md §5)")
    return frame


def available_tasks(data_dir: Path) -> list[str]:
    root = data_dir / "data"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def load_eval_data(data_dir: str | Path, *, split: str = "test", tasks: Sequence[str] | None = None,
                   limit: int | None = None) -> EvalData:
    """The ``split`` rows of the chosen tasks (all the folder has by default), first ``limit`` per task."""
    data_dir = Path(data_dir)
    if split not in SPLITS:
        raise ConfigError("is not a split", where="option --split", value=split, fix=f"use one of {list(SPLITS)}")
    if limit is not None and limit < 1:
        raise ConfigError("must be at least 1", where="option --limit", value=limit, fix="give a positive number")
    present = available_tasks(data_dir)
    if not present:
        raise InputError("holds no samples (no data/<task>/ folders)", where=str(data_dir),
                         fix="pass the output folder of `ehr-r1 bench build`")
    wanted = list(tasks) if tasks else present
    unknown = [t for t in wanted if t not in present]
    if unknown:
        raise ConfigError("the data has no samples for these tasks", where="option --tasks", value=unknown,
                          fix=f"choose among {', '.join(present)}")
    card_path = data_dir / "card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else None
    definitions = load_tasks(keys=wanted)
    selected: dict[str, TaskSamples] = {}
    files: list[Path] = []
    for key in wanted:
        path = split_file(data_dir, key, split)
        if path is None:
            log.warning("%s has no %s split; left out", key, split)
            continue
        frame = read_samples(path).filter(pl.col("task") == key).sort("id")
        if limit is not None:
            frame = frame.head(limit)
        versions = frame["task_version"].unique().to_list() if "task_version" in frame.columns else []
        data_version = int(versions[0]) if len(versions) == 1 else None
        if data_version is not None and data_version != definitions[key].version:
            log.warning("%s: the samples were built with task version %s, the bundled definition is version %s",
                        key, data_version, definitions[key].version)
        selected[key] = TaskSamples(definitions[key], frame, path, data_version)
        files.append(path)
    if card is not None:
        card_hash = file_hash(card_path)
    else:
        log.warning("%s has no card.json: the data is identified by the hash of its sample files", data_dir)
        card_hash = _files_hash(files)
    return EvalData(data_dir.resolve(), split, card, card_hash, selected)


def _files_hash(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.parent.name}/{path.name}:{file_hash(path)}\n".encode())
    return digest.hexdigest()[:16]


def gold_of(label: Any) -> list[str] | str:
    """A row's label as scored: a list of items (set tasks) or one string (yes/no, event table)."""
    if isinstance(label, list | tuple):
        return [str(item) for item in label]
    if isinstance(label, pl.Series):
        return [str(item) for item in label.to_list()]
    return str(label)


def iter_rows(frame: pl.DataFrame, columns: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Rows as dicts, a slice at a time (records are large; a whole split never becomes Python objects)."""
    present = [c for c in columns if c in frame.columns]
    for start in range(0, frame.height, 1024):
        yield from frame.slice(start, 1024).select(present).iter_rows(named=True)
