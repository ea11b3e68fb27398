"""What a build does: its configuration, the tasks it can run on a source, and its units of work.

A unit is a fixed group of subjects (a storage shard of a converted source, cut into chunks of at
most ``subjects_per_unit`` subjects; a raw source is one shard). Units depend only on the source
and ``subjects_per_unit``, never on how many jobs run them: job ``i/n`` takes the units whose index
is ``i`` modulo ``n``, so any number of jobs writes the same dataset.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from bench.splits import DEFAULT_RATIOS, parse_ratios
from bench.taskdef import TaskDef, load_tasks
from graphkit.ehr.source import MimicSource
from graphkit.errors import ConfigError
from graphkit.hashing import config_hash

log = logging.getLogger(__name__)

STYLES = ("clean", "ehr-r1")
FORMATS = ("parquet", "jsonl")
REFERENCE = "reference"


@dataclass(frozen=True)
class BuildConfig:
    """Everything that decides the content of a build (hashed into the card's config hash)."""

    tasks: tuple[str, ...] | None = None  # None: every bundled task
    per_task: int | str | None = None  # samples per task and split; None: all; "reference": the YAML counts
    balance: bool = False
    split_ratios: tuple[float, float, float] = DEFAULT_RATIOS
    seed: int = 0
    style: str = "clean"
    max_tokens: int | None = 8192
    atc: str | None = None  # NDC->ATC table for the *_atc tasks
    atc_hash: str | None = None
    subjects_per_unit: int = 500
    format: str = "parquet"

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ConfigError(
                "is not a record style", where="--style", value=self.style, fix=f"use one of {list(STYLES)}"
            )
        if self.format not in FORMATS:
            raise ConfigError(
                "is not an output format",
                where="--format",
                value=self.format,
                fix=f"use one of {list(FORMATS)}",
            )
        if isinstance(self.per_task, int) and self.per_task < 1:
            raise ConfigError(
                "must be at least 1",
                where="--per-task",
                value=self.per_task,
                fix="give a positive number, 'reference' or nothing (all)",
            )
        if isinstance(self.per_task, str) and self.per_task != REFERENCE:
            raise ConfigError(
                "must be a number or 'reference'",
                where="--per-task",
                value=self.per_task,
                fix="e.g. --per-task 1000",
            )
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(
                "must be at least 1",
                where="--max-tokens",
                value=self.max_tokens,
                fix="give a token budget such as 8192",
            )
        if self.subjects_per_unit < 1:
            raise ConfigError(
                "must be at least 1",
                where="--subjects-per-unit",
                value=self.subjects_per_unit,
                fix="e.g. 500",
            )
        object.__setattr__(self, "split_ratios", parse_ratios(self.split_ratios))

    def cap(self, task: TaskDef, split: str) -> int | None:
        """How many samples of ``task`` to keep in ``split`` (None: all of them)."""
        if self.per_task is None:
            return None
        if self.per_task == REFERENCE:
            count = task.reference.samples_ehr_bench if split == "test" else task.reference.samples_ehr_ins
            return None if count < 0 else count
        return int(self.per_task)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["tasks"] = list(self.tasks) if self.tasks is not None else None
        data["split_ratios"] = list(self.split_ratios)
        return data


def parse_per_task(value: str | None) -> int | str | None:
    if value is None or value == "":
        return None
    if value == REFERENCE:
        return REFERENCE
    try:
        return int(value)
    except ValueError:
        raise ConfigError(
            "must be a number or 'reference'", where="--per-task", value=value, fix="e.g. --per-task 1000"
        ) from None


def parse_shard(value: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    if value is None:
        return (0, 1)
    try:
        index, count = (int(p) for p in value.split("/"))
    except ValueError:
        raise ConfigError(
            "must read i/n", where="--shard", value=value, fix="e.g. --shard 0/4 (jobs 0/4 .. 3/4)"
        ) from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(
            "must have 0 <= i < n", where="--shard", value=value, fix="e.g. --shard 0/4 (jobs 0/4 .. 3/4)"
        )
    return (index, count)


@dataclass
class TaskSelection:
    runnable: dict[str, TaskDef]
    skipped: dict[str, str]  # task -> reason (missing module, table or mapping)


def select_tasks(source: MimicSource, config: BuildConfig) -> TaskSelection:
    """The tasks to build, and those the source cannot support, with one warning per reason."""
    every = load_tasks()
    chosen = load_tasks(keys=config.tasks) if config.tasks is not None else every
    runnable: dict[str, TaskDef] = {}
    skipped: dict[str, str] = {}
    for key, task in chosen.items():
        reason = _missing(source, task, config)
        if reason:
            skipped[key] = reason
        else:
            runnable[key] = task
    by_reason: dict[str, list[str]] = defaultdict(list)
    for key, reason in skipped.items():
        by_reason[reason].append(key)
    for reason, keys in by_reason.items():
        log.warning("skipping %d task(s), %s: %s", len(keys), reason, ", ".join(keys))
    return TaskSelection(runnable, skipped)


def _missing(source: MimicSource, task: TaskDef, config: BuildConfig) -> str | None:
    absent = [m for m in task.requires.modules if m not in source.modules]
    if absent:
        return f"the source has no {'/'.join(absent)} module"
    from graphkit.ehr.schema import load_schema

    module_of = {name: spec.module for name, spec in load_schema().tables.items()}
    tables = [
        t for t in task.requires.tables if module_of.get(t) in task.requires.modules and not source.has(t)
    ]
    if tables:
        return f"the source has no {'/'.join(tables)} table"
    if task.target is not None and task.target.mapping == "atc" and config.atc is None:
        return "no NDC->ATC table (--atc)"
    return None


@dataclass(frozen=True)
class UnitSpec:
    index: int
    shard: int | None  # storage shard of a converted source
    subjects: tuple[int, ...] | None  # None: the whole shard (or source)

    @property
    def name(self) -> str:
        return f"unit-{self.index:05d}"

    def describe(self) -> dict:
        ids = self.subjects or ()
        return {
            "index": self.index,
            "shard": self.shard,
            "subjects": len(ids) if self.subjects is not None else None,
            "first_subject": ids[0] if ids else None,
            "last_subject": ids[-1] if ids else None,
        }


def plan_units(source: MimicSource, subjects_per_unit: int) -> list[UnitSpec]:
    units: list[UnitSpec] = []
    shards = range(source.n_shards) if source.kind == "converted" else [None]
    for shard in shards:
        ids = (
            source.scan("patients", columns=["subject_id"], shard=shard)
            .select(pl.col("subject_id").unique().sort())
            .collect()["subject_id"]
            .to_list()
        )
        if len(ids) <= subjects_per_unit:
            units.append(UnitSpec(len(units), shard, None))
            continue
        chunks = -(-len(ids) // subjects_per_unit)  # as few units as the limit allows, of even sizes
        for k in range(chunks):
            units.append(
                UnitSpec(len(units), shard, tuple(ids[k * len(ids) // chunks : (k + 1) * len(ids) // chunks]))
            )
    return units


def source_fingerprint(source: MimicSource) -> str:
    """Changes when the source's files change (sizes and modification times; a converted manifest)."""
    root = Path(source.path)
    if source.kind == "converted":
        return "manifest:" + hashlib.sha256((root / "manifest.json").read_bytes()).hexdigest()[:16]
    entries = []
    for table in source.tables:
        path = source.file(table).path
        stat = path.stat()
        entries.append([table, str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns])
    return "files:" + config_hash(entries)


@dataclass
class BuildPlan:
    config: BuildConfig
    source_path: str
    source_kind: str
    fingerprint: str
    modules: list[str]
    tasks: dict[str, TaskDef]
    skipped_tasks: dict[str, str]
    units: list[UnitSpec]
    all_tasks: dict[str, TaskDef] = field(default_factory=dict)

    @property
    def task_versions(self) -> dict[str, int]:
        return {key: task.version for key, task in sorted(self.tasks.items())}

    def identity(self) -> dict:
        """What must match for parts of two runs to be combined (resume, sharded jobs)."""
        return {
            "config": self.config.as_dict(),
            "source_fingerprint": self.fingerprint,
            "task_versions": self.task_versions,
            "task_definitions": config_hash(
                {k: t.model_dump(mode="json") for k, t in sorted(self.tasks.items())}
            ),
            "units": [u.describe() for u in self.units],
        }

    @property
    def config_hash(self) -> str:
        return config_hash(self.identity())

    def to_json(self) -> str:
        return json.dumps(
            {
                "config_hash": self.config_hash,
                "source": {"path": self.source_path, "kind": self.source_kind, "modules": self.modules},
                "skipped_tasks": self.skipped_tasks,
                **self.identity(),
            },
            indent=2,
            sort_keys=True,
        )
