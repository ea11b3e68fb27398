"""EHR-Bench task definitions: one YAML file per task, validated strictly.

A task file is data, not code: the sample builder and the evaluator read what a task is from
here (anchor, context window, target or label, output type, metric, instruction, candidates,
needed modules). Every key is checked; an unknown key, a missing field, a window that ends
before it starts or an unknown metric is a `TaskError` that names the file, the key and the fix.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from graphkit.errors import TaskError

log = logging.getLogger(__name__)

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
FAMILIES = ("decision", "risk")
MODULES = ("hosp", "icu", "ed", "note")
SET_METRICS = ("set_f1", "set_precision", "set_recall")
METRICS_BY_OUTPUT = {
    "set": SET_METRICS,
    "class": ("accuracy",),
    "binary": ("auroc", "auprc", "accuracy"),
}
ANY_TABLE = "*"


def _bad(problem: str, fix: str, key: str | None = None) -> ValueError:
    """A validator error carrying its own fix (and, for whole-task rules, the key it is about)."""
    return ValueError(f"{'@' + key + ' ' if key else ''}{problem}{_FIX_SEP}{fix}")


_FIX_SEP = " || fix: "


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PaperInfo(_Strict):
    name: str = Field(min_length=1)
    reported: bool
    note: str | None = None


class ReferenceInfo(_Strict):
    """How the EHR-R1 reference code names and configures this task (for traceability)."""

    key: str = Field(min_length=1)
    event: str = Field(min_length=1)
    target_key: str | None
    metric: Literal["em", "recall", "acc", "aucroc"]
    samples_ehr_bench: int = Field(ge=-1)
    samples_ehr_ins: int = Field(ge=-1)


class Requires(_Strict):
    """Modules a task cannot run without, modules it uses when present, and the tables it reads."""

    modules: tuple[Literal["hosp", "icu", "ed", "note"], ...] = Field(min_length=1)
    optional_modules: tuple[Literal["hosp", "icu", "ed", "note"], ...] = ()
    tables: tuple[str, ...] = Field(min_length=1)


class TimeColumn(_Strict):
    table: str
    column: str


class Anchor(_Strict):
    """The trigger of a sample.

    kind `event`: one event of `table` (rows of the table sharing a timestamp within an
    admission); its time is `time` (or `time_from`, a column of another table, for tables with
    no usable time of their own, e.g. diagnoses coded at discharge), `time_fallback` for rows
    whose `time` is null, `fallback_anchor` when `table`'s module is absent.
    kind `interval`: a stay with a start and an end column (ED stay, admission, ICU stay).
    """

    kind: Literal["event", "interval"]
    table: str
    time: str | None = None
    time_fallback: str | None = None
    time_from: TimeColumn | None = None
    fallback_anchor: TimeColumn | None = None
    start: str | None = None
    end: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Anchor:
        if self.kind == "event":
            if self.start or self.end:
                raise _bad(
                    "an `event` anchor has `time`, not `start`/`end`",
                    "use kind: interval for a stay, or remove start/end",
                )
            if self.table != ANY_TABLE and not (self.time or self.time_from):
                raise _bad(
                    "an `event` anchor needs a time",
                    "add `time: <column of the table>` or `time_from: {table, column}`",
                )
        else:
            if not (self.start and self.end):
                raise _bad(
                    "an `interval` anchor needs both `start` and `end` columns",
                    "add start: and end: (e.g. intime and outtime)",
                )
            if self.time or self.time_from or self.time_fallback:
                raise _bad(
                    "an `interval` anchor has `start`/`end`, not `time`",
                    "remove time/time_from/time_fallback, or use kind: event",
                )
        return self


TimeRef = Literal["anchor", "anchor_end", "admission_start"]


class Bound(_Strict):
    ref: TimeRef
    hours: float = 0.0

    @model_validator(mode="after")
    def _finite(self) -> Bound:
        if not math.isfinite(self.hours):
            raise _bad("hours must be a finite number", "write a number of hours such as -24")
        return self


class Context(_Strict):
    """Which events form the input: [start, end) around the anchor, optionally same admission."""

    start: Bound
    end: Bound
    end_inclusive: bool = False
    same_admission: bool = True
    min_events: int = Field(ge=0)
    max_events: int | None = Field(default=None, ge=1)
    exclude_tables: tuple[str, ...] = ()
    require_admission_start_in_context: bool = False
    # the window also ends where the admission the anchor's row links to begins (its admittime):
    # from the admission decision on, the data is the outcome, not the input
    end_at_linked_admission: bool = False

    @model_validator(mode="after")
    def _window(self) -> Context:
        if self.max_events is not None and self.max_events < self.min_events:
            raise _bad(
                f"max_events ({self.max_events}) is below min_events ({self.min_events})",
                "raise max_events or lower min_events",
            )
        if self.start.ref == self.end.ref and self.start.hours >= self.end.hours:
            raise _bad(
                f"the window is empty: start ({self.start.ref}{self.start.hours:+g} h) is not before "
                f"end ({self.end.ref}{self.end.hours:+g} h)",
                "make start earlier than end, e.g. start: {ref: anchor, hours: -24} and end: {ref: anchor, hours: 0}",
            )
        if self.start.ref == "anchor_end" and self.end.ref in ("anchor", "admission_start"):
            raise _bad(
                "the window starts at the anchor's end but ends before it",
                "end the window at anchor_end or later",
            )
        return self


class NameFrom(_Strict):
    """A dictionary lookup that turns a code into the item name shown to the model."""

    table: str
    key: tuple[str, ...] = Field(min_length=1)
    column: str
    where: dict[str, str] | None = None


class Target(_Strict):
    """Decision tasks: the set of item names of the anchor event (or the table, next_event)."""

    table: str
    field: str
    name_from: NameFrom | None = None
    fallback_field: str | None = None
    mapping: Literal["ccs_dx", "ccs_px", "atc"] | None = None
    max_items: int | None = Field(default=None, ge=1)


class _Label(_Strict):
    pass


class AdmittedFromEd(_Label):
    kind: Literal["admitted_from_ed"]


class DeathInHospital(_Label):
    kind: Literal["death_in_hospital"]


class IcuAdmissionWithin(_Label):
    kind: Literal["icu_admission_within"]
    hours: float = Field(gt=0)
    origin: TimeRef


class EdReturnWithin(_Label):
    kind: Literal["ed_return_within"]
    hours: float = Field(gt=0)
    origin: TimeRef


class AnyOf(_Label):
    kind: Literal["any_of"]
    tasks: tuple[str, ...] = Field(min_length=2)


class ReadmissionWithin(_Label):
    kind: Literal["readmission_within"]
    days: float = Field(gt=0)
    origin: TimeRef


class LosExceeds(_Label):
    kind: Literal["los_exceeds"]
    days: float = Field(gt=0)


class DeathWithin(_Label):
    kind: Literal["death_within"]
    days: float = Field(gt=0)
    origin: Literal["context_end"]


class IcuLosAtLeast(_Label):
    kind: Literal["icu_los_at_least"]
    days: float = Field(gt=0)


class IcuReadmission(_Label):
    kind: Literal["icu_readmission"]


Label = Annotated[
    AdmittedFromEd
    | DeathInHospital
    | IcuAdmissionWithin
    | EdReturnWithin
    | AnyOf
    | ReadmissionWithin
    | LosExceeds
    | DeathWithin
    | IcuLosAtLeast
    | IcuReadmission,
    Field(discriminator="kind"),
]

SampleRule = Literal[
    "discharge_after_context_end",
    "death_not_before_context_end",
]


class Candidates(_Strict):
    """The candidate list offered to untrained models (the reference's `make_candidates`)."""

    mode: Literal["similar_items", "tables", "yes_no"]
    max: int | None = Field(default=None, ge=1)
    all_if_vocabulary_at_most: int | None = Field(default=None, ge=1)


class Sampling(_Strict):
    weighting: Literal["none", "inverse_target_frequency"]
    balance_labels: bool = False


class Difference(_Strict):
    """One deliberate, documented difference from the reference code."""

    topic: str = Field(min_length=1)
    reference: str = Field(min_length=1)
    ours: str = Field(min_length=1)


class TaskDef(_Strict):
    key: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    family: Literal["decision", "risk"]
    version: int = Field(ge=1)
    description: str = Field(min_length=1)
    paper: PaperInfo
    reference: ReferenceInfo
    requires: Requires
    anchor: Anchor
    context: Context
    target: Target | None = None
    label: Label | None = None
    sample_rules: tuple[SampleRule, ...] = ()
    output_type: Literal["set", "binary", "class"]
    metric: Literal["set_f1", "set_precision", "set_recall", "accuracy", "auroc", "auprc"]
    thinking: bool
    instruction: str = Field(min_length=1)
    candidates: Candidates
    sampling: Sampling
    differences: tuple[Difference, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> TaskDef:
        if self.metric not in METRICS_BY_OUTPUT[self.output_type]:
            raise _bad(
                f"metric {self.metric!r} does not score output_type {self.output_type!r}",
                f"use one of {list(METRICS_BY_OUTPUT[self.output_type])}",
                key="metric",
            )
        if self.family == "decision":
            if self.target is None or self.label is not None:
                raise _bad(
                    "a decision task has a `target` and no `label`",
                    "give target: and remove label:",
                    key="target",
                )
            if self.output_type == "binary":
                raise _bad(
                    "a decision task's output_type is `set` or `class`",
                    "use output_type: set (or class for next_event)",
                    key="output_type",
                )
            if self.context.end.ref != "anchor" or self.context.end.hours > 0 or self.context.end_inclusive:
                raise _bad(
                    "a decision task's context must end strictly before its target",
                    "use end: {ref: anchor, hours: 0} (or negative) and end_inclusive: false",
                    key="context.end",
                )
        else:
            if self.label is None or self.target is not None:
                raise _bad(
                    "a risk task has a `label` and no `target`", "give label: and remove target:", key="label"
                )
            if self.output_type != "binary":
                raise _bad(
                    "a risk task's output_type is `binary`", "use output_type: binary", key="output_type"
                )
        if self.anchor.kind == "event" and "anchor_end" in (self.context.start.ref, self.context.end.ref):
            raise _bad(
                "`anchor_end` needs an interval anchor",
                "use ref: anchor, or anchor kind: interval",
                key="context",
            )
        return self

    @property
    def modules(self) -> frozenset[str]:
        return frozenset(self.requires.modules)


@dataclass(frozen=True)
class TaskProblem:
    """One reason a task file is invalid: the file, the key path, what is wrong, the fix."""

    path: Path
    key: str
    problem: str
    fix: str

    def one_line(self) -> str:
        return f"{self.path}: {self.key}: {self.problem}; fix: {self.fix}"


def _loc(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p[:1].isupper() and p.isidentifier())]
    text = ".".join(parts)
    return text or "(file)"


def _fix_for(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "remove this key (see the task file format in README.md, section EHR-Bench)"
    if kind == "missing":
        return "add this key"
    if kind in ("literal_error", "enum"):
        return f"use one of {ctx.get('expected', 'the allowed values')}"
    if kind == "union_tag_invalid":
        return f"set `kind` to one of {ctx.get('expected_tags', 'the allowed kinds')}"
    return "correct the value"


def _problems_from_validation(path: Path, exc: ValidationError) -> list[TaskProblem]:
    problems = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        key, fix = _loc(err["loc"]), _fix_for(err)
        if _FIX_SEP in msg:
            msg, fix = msg.split(_FIX_SEP, 1)
        if msg.startswith("@"):
            own_key, msg = msg[1:].split(" ", 1)
            key = own_key if key == "(file)" else f"{key}.{own_key}"
        problems.append(TaskProblem(path, key, msg, fix))
    return problems


def parse_task_file(path: str | Path) -> tuple[TaskDef | None, list[TaskProblem]]:
    """Parse and validate one task file; the problems list is empty when it is valid."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, [TaskProblem(path, "(file)", f"cannot be read ({exc.strerror})", "check the path")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        return None, [
            TaskProblem(
                path, where, f"is not valid YAML ({getattr(exc, 'problem', exc)})", "fix the YAML syntax"
            )
        ]
    if not isinstance(raw, dict):
        return None, [
            TaskProblem(path, "(file)", "must be a mapping of task fields", "write `key: value` lines")
        ]
    try:
        task = TaskDef.model_validate(raw)
    except ValidationError as exc:
        return None, _problems_from_validation(path, exc)
    problems = _check_names(path, task)
    return (task if not problems else None), problems


def _check_names(path: Path, task: TaskDef) -> list[TaskProblem]:
    """File layout and MIMIC-IV table/column names, checked against the published schema."""
    problems = []
    if path.stem != task.key:
        problems.append(
            TaskProblem(
                path,
                "key",
                f"{task.key!r} does not match the file name",
                f"rename the file to {task.key}.yaml or set key: {path.stem}",
            )
        )
    if path.parent.name in FAMILIES and path.parent.name != task.family:
        problems.append(
            TaskProblem(
                path,
                "family",
                f"{task.family!r} but the file is in {path.parent.name}/",
                f"move the file to {task.family}/ or set family: {path.parent.name}",
            )
        )
    from graphkit.ehr.schema import load_schema

    schema = load_schema()
    module_of = {name: spec.module for name, spec in schema.tables.items()}

    def table(where: str, name: str) -> str | None:
        if name == ANY_TABLE:
            return None
        if name not in module_of:
            problems.append(
                TaskProblem(
                    path,
                    where,
                    f"unknown MIMIC-IV table {name!r}",
                    "use a table of the MIMIC-IV schema (graphkit/ehr/mimic_iv_schema.yaml)",
                )
            )
            return None
        if module_of[name] not in task.requires.modules + task.requires.optional_modules:
            problems.append(
                TaskProblem(
                    path,
                    where,
                    f"table {name!r} is in module {module_of[name]!r}, which requires.modules does not list",
                    f"add {module_of[name]} to requires.modules (or requires.optional_modules)",
                )
            )
        return name

    def column(where: str, tbl: str | None, col: str | None) -> None:
        if tbl is None or col is None:
            return
        if col not in schema.tables[tbl].columns:
            problems.append(
                TaskProblem(
                    path,
                    where,
                    f"table {tbl!r} has no column {col!r}",
                    f"use one of {sorted(schema.tables[tbl].columns)}",
                )
            )

    for i, name in enumerate(task.requires.tables):
        table(f"requires.tables.{i}", name)
    for i, name in enumerate(task.context.exclude_tables):
        if name not in module_of:
            problems.append(
                TaskProblem(
                    path,
                    f"context.exclude_tables.{i}",
                    f"unknown MIMIC-IV table {name!r}",
                    "use a table of the MIMIC-IV schema",
                )
            )
    anchor = task.anchor
    at = table("anchor.table", anchor.table)
    for field in ("time", "time_fallback", "start", "end"):
        column(f"anchor.{field}", at, getattr(anchor, field))
    for field in ("time_from", "fallback_anchor"):
        ref = getattr(anchor, field)
        if ref is not None:
            column(f"anchor.{field}.column", table(f"anchor.{field}.table", ref.table), ref.column)
    if task.target is not None:
        tt = table("target.table", task.target.table)
        if tt is not None:
            column("target.field", tt, task.target.field)
            column("target.fallback_field", tt, task.target.fallback_field)
        nf = task.target.name_from
        if nf is not None:
            nt = table("target.name_from.table", nf.table)
            for k in nf.key:
                column("target.name_from.key", nt, k)
            column("target.name_from.column", nt, nf.column)
            for k in nf.where or {}:
                column("target.name_from.where", nt, k)
    listed = set(task.requires.tables)
    used = {anchor.table, *(r.table for r in (anchor.time_from,) if r)}
    if task.target is not None:
        used.add(task.target.table)
        if task.target.name_from is not None:
            used.add(task.target.name_from.table)
    for name in sorted(used - listed - {ANY_TABLE}):
        problems.append(
            TaskProblem(
                path,
                "requires.tables",
                f"does not list {name!r}, which the task reads",
                f"add {name} to requires.tables",
            )
        )
    return problems


def task_files(paths: Iterable[str | Path] | None = None) -> list[Path]:
    """The task YAML files under the given files/folders (default: the bundled tasks)."""
    found: list[Path] = []
    for p in [TASKS_DIR] if paths is None else [Path(x) for x in paths]:
        if p.is_dir():
            found.extend(sorted(p.rglob("*.yaml")) + sorted(p.rglob("*.yml")))
        else:
            found.append(p)
    return found


def validate_paths(paths: Iterable[str | Path] | None = None) -> tuple[dict[str, TaskDef], list[TaskProblem]]:
    """Validate every task file under `paths`; cross-file rules (unique keys, any_of) included."""
    tasks: dict[str, TaskDef] = {}
    where: dict[str, Path] = {}
    problems: list[TaskProblem] = []
    files = task_files(paths)
    if not files:
        problems.append(
            TaskProblem(
                Path(str(paths)),
                "(file)",
                "no task files found",
                "pass a .yaml file or a folder that holds some",
            )
        )
    for path in files:
        task, found = parse_task_file(path)
        problems.extend(found)
        if task is None:
            continue
        if task.key in tasks:
            problems.append(
                TaskProblem(
                    path,
                    "key",
                    f"{task.key!r} is also defined in {where[task.key]}",
                    "give each task a unique key",
                )
            )
            continue
        tasks[task.key] = task
        where[task.key] = path
    for key, task in tasks.items():
        if isinstance(task.label, AnyOf):
            for i, other in enumerate(task.label.tasks):
                if other not in tasks or tasks[other].family != "risk":
                    problems.append(
                        TaskProblem(
                            where[key],
                            f"label.tasks.{i}",
                            f"{other!r} is not a risk task in this set",
                            "name risk tasks defined alongside this one",
                        )
                    )
    return tasks, problems


@functools.lru_cache(maxsize=1)
def _bundled() -> dict[str, TaskDef]:
    tasks, problems = validate_paths(None)
    if problems:
        raise TaskError(
            f"{len(problems)} invalid task definition(s); first: {problems[0].problem}",
            where=f"{problems[0].path}: {problems[0].key}",
            fix="run `ehr-r1 bench validate` and correct the files it names",
        )
    return tasks


def load_tasks(
    paths: Iterable[str | Path] | None = None,
    *,
    family: str | None = None,
    keys: Iterable[str] | None = None,
    reported_only: bool = False,
) -> dict[str, TaskDef]:
    """All valid tasks (bundled by default), by key, optionally filtered; raises TaskError if any file is invalid."""
    if paths is None:
        tasks = dict(_bundled())
    else:
        tasks, problems = validate_paths(paths)
        if problems:
            first = problems[0]
            raise TaskError(
                f"{len(problems)} invalid task definition(s); first: {first.problem}",
                where=f"{first.path}: {first.key}",
                fix=first.fix,
            )
    if family is not None:
        if family not in FAMILIES:
            raise TaskError(
                "unknown task family", where="family", value=family, fix=f"use one of {list(FAMILIES)}"
            )
        tasks = {k: t for k, t in tasks.items() if t.family == family}
    if keys is not None:
        wanted = list(keys)
        unknown = [k for k in wanted if k not in tasks]
        if unknown:
            raise TaskError(
                "unknown task key",
                where="tasks",
                value=unknown,
                fix="see `ehr-r1 bench list` for the task keys",
            )
        tasks = {k: tasks[k] for k in wanted}
    if reported_only:
        tasks = {k: t for k, t in tasks.items() if t.paper.reported}
    return tasks
