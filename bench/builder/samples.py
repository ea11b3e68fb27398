"""Candidate samples of one task over one unit of subjects, read from the task's YAML definition.

A candidate is an anchor (an event of the anchor table, or a stay/admission interval), its context
window, and its target (decision: the item names of the anchor event) or label (risk: yes/no).
Everything is vectorized over all anchors of the unit: polars joins for targets and labels,
``EventWindows`` for context sizes. Candidates that fail a rule are counted per reason, never
silently dropped.

Leakage rules enforced here, for every task whatever its YAML says:
- a context holds only events strictly before its end (decision: the target's time, which the
  target event itself has, so it is never in its own context);
- a risk label comes with the time of the data that decides it (``evidence``: the death, the
  discharge, the next admission or stay...); a candidate whose evidence lies before its context
  end is skipped, so no label can be read off its input.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

import polars as pl

from bench.builder.items import ITEM_RULES, ITEM_SCHEMA, ItemRule
from bench.builder.windows import EventWindows
from bench.taskdef import (
    ANY_TABLE,
    AdmittedFromEd,
    AnyOf,
    Bound,
    DeathInHospital,
    DeathWithin,
    EdReturnWithin,
    IcuAdmissionWithin,
    IcuLosAtLeast,
    IcuReadmission,
    LosExceeds,
    ReadmissionWithin,
    TaskDef,
)
from graphkit.ehr.events import EVENT_TABLES
from graphkit.ehr.source import MimicSource
from graphkit.ehr.timeline import Timeline
from graphkit.errors import ConfigError

log = logging.getLogger(__name__)

US = pl.Datetime("us")
ONE_SECOND = dt.timedelta(seconds=1)

# skip reasons (card keys)
NO_TARGET = "no target item"
TOO_MANY_ITEMS = "more target items than max_items"
TOO_FEW_EVENTS = "fewer context events than min_events"
# kept apart because such a context can only hold the subject's other events without an admission
# (an outpatient lab, an OMR row of a day not wholly inside a stay), which rarely reach min_events
TOO_FEW_EVENTS_NO_ADMISSION = "fewer context events than min_events (anchor outside any admission)"
TOO_MANY_EVENTS = "more context events than max_events"
ADMISSION_BEFORE_CONTEXT = "admission starts before the context window"
DISCHARGE_IN_CONTEXT = "discharge before the context end (sample rule)"
DEATH_IN_CONTEXT = "death before the context end (sample rule)"
LABEL_IN_CONTEXT = "label decided before the context end"
NO_ANCHOR_TIME = "anchor without a time"
SAME_TIME = "another event at the same time comes first"

CANDIDATE_COLUMNS = {
    "task": pl.String,
    "subject_id": pl.Int64,
    "hadm_id": pl.Int64,  # the window's admission (null: the window spans admissions)
    "stay_id": pl.Int64,
    "anchor_table": pl.String,
    "anchor_event": pl.Int64,  # event_id of the anchor event in this unit's timeline (null: interval)
    "anchor_time": US,
    "context_start": US,
    "context_end": US,  # exclusive
    "same_admission": pl.Boolean,
    "n_context": pl.Int64,
    "target_items": pl.List(ITEM_SCHEMA),
    "weight_items": pl.List(pl.String),  # what inverse-frequency weighting counts
}


@dataclass
class Unit:
    """The subjects of one unit of work: their timeline, windows and the small tables labels need."""

    source: MimicSource
    timeline: Timeline
    shard: int | None
    subjects: list[int] | None
    atc: pl.DataFrame | None = None  # ndc (11 digits), atc_name
    _tables: dict[str, pl.DataFrame] = field(default_factory=dict)

    @cached_property
    def windows(self) -> EventWindows:
        return EventWindows(self.timeline.events)

    def table(self, name: str, columns: list[str]) -> pl.DataFrame:
        """Rows of a subject table for this unit's subjects (cached per table and columns)."""
        key = f"{name}:{','.join(columns)}"
        if key not in self._tables:
            spec = self.source.spec(name)
            frame = self.source.scan(name, columns=columns, shard=None if spec.is_dictionary else self.shard)
            if self.subjects is not None and "subject_id" in columns:
                frame = frame.filter(pl.col("subject_id").is_in(self.subjects))
            self._tables[key] = frame.collect()
        return self._tables[key]

    @cached_property
    def admissions(self) -> pl.DataFrame:
        return self.table(
            "admissions",
            ["subject_id", "hadm_id", "admittime", "dischtime", "deathtime", "hospital_expire_flag"],
        )

    @cached_property
    def death_times(self) -> pl.DataFrame:
        """subject_id, death_time: the in-hospital deathtime, else patients.dod at 00:00 (date only)."""
        in_hospital = (
            self.admissions.filter(pl.col("deathtime").is_not_null())
            .group_by("subject_id")
            .agg(pl.col("deathtime").min())
        )
        dod = self.table("patients", ["subject_id", "dod"]).select(
            "subject_id", pl.col("dod").cast(US).alias("dod")
        )
        return (
            dod.join(in_hospital, on="subject_id", how="full", coalesce=True)
            .select("subject_id", pl.coalesce("deathtime", "dod").alias("death_time"))
            .filter(pl.col("death_time").is_not_null())
        )


@dataclass
class Candidates:
    frame: pl.DataFrame  # CANDIDATE_COLUMNS + label
    skipped: Counter
    anchors: int  # anchors with a target or label, before context rules


def candidates(task: TaskDef, unit: Unit, tasks: dict[str, TaskDef]) -> Candidates:
    """Every candidate sample of ``task`` in ``unit`` that passes the task's rules."""
    skipped: Counter = Counter()
    if task.family == "decision":
        frame = _decision_anchors(task, unit, skipped)
    else:
        frame = _risk_anchors(task, unit, tasks, skipped)
    anchors = frame.height
    frame = _count_and_filter(task, unit, frame, skipped)
    frame = frame.with_columns(pl.lit(task.key).alias("task"))
    label_type = pl.List(pl.String) if task.output_type == "set" else pl.String
    columns = {**CANDIDATE_COLUMNS, "label": label_type}
    frame = frame.select(
        [pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c) for c, t in columns.items()]
    )
    return Candidates(frame=frame, skipped=skipped, anchors=anchors)


# ---------------------------------------------------------------------- decision tasks


def _decision_anchors(task: TaskDef, unit: Unit, skipped: Counter) -> pl.DataFrame:
    target = task.target
    assert target is not None
    events = unit.timeline.events
    _check_anchor_time(task)
    if task.anchor.table == ANY_TABLE:
        anchors = events.select(
            pl.col("event_id").alias("anchor_event"),
            "subject_id",
            "hadm_id",
            "stay_id",
            pl.col("time").alias("anchor_time"),
            pl.col("table").cast(pl.String).alias("anchor_table"),
        )
        # events at the same time share one context: only the first in timeline order is "the next"
        first = anchors.unique(
            subset=["subject_id", "hadm_id", "anchor_time"], keep="first", maintain_order=True
        )
        skipped[SAME_TIME] += anchors.height - first.height
        anchors = first
        # the target items (the anchor event's own items) are added once samples are chosen
        anchors = anchors.with_columns(
            pl.lit(None, dtype=pl.List(ITEM_SCHEMA)).alias("target_items"),
            pl.col("anchor_table").alias("label"),
            pl.concat_list(pl.col("anchor_table")).alias("weight_items"),
        )
        return _with_window(task, unit, anchors)
    anchors = events.filter(pl.col("table") == task.anchor.table).select(
        pl.col("event_id").alias("anchor_event"),
        "subject_id",
        "hadm_id",
        "stay_id",
        pl.col("time").alias("anchor_time"),
        pl.lit(task.anchor.table).alias("anchor_table"),
    )
    targets = _targets(task, unit, anchors["anchor_event"])
    with_target = anchors.join(targets, on="anchor_event", how="inner")
    skipped[NO_TARGET] += anchors.height - with_target.height
    if target.max_items is not None:
        fits = with_target.filter(pl.col("label").list.len() <= target.max_items)
        skipped[TOO_MANY_ITEMS] += with_target.height - fits.height
        with_target = fits
    with_target = with_target.with_columns(pl.col("label").alias("weight_items"))
    if task.output_type == "class":
        with_target = with_target.with_columns(pl.col("label").list.first().alias("label"))
    return _with_window(task, unit, with_target)


def _check_anchor_time(task: TaskDef) -> None:
    """The timeline places each table's events at one time; the anchor must name that time."""
    anchor = task.anchor
    if anchor.table == ANY_TABLE:
        return
    spec = EVENT_TABLES.get(anchor.table)
    if spec is None:
        raise ConfigError(
            "is not a timeline table, so it cannot anchor a decision task",
            where=f"task {task.key}: anchor.table",
            value=anchor.table,
            fix="anchor on a table of graphkit.ehr.events.TABLE_ORDER",
        )
    if anchor.time is not None and anchor.time != spec.time:
        raise ConfigError(
            f"the timeline places {anchor.table} events at {spec.time!r}",
            where=f"task {task.key}: anchor.time",
            value=anchor.time,
            fix=f"use time: {spec.time}",
        )
    if anchor.time is None and anchor.time_from is not None and spec.time_kind != "derived":
        raise ConfigError(
            f"{anchor.table} rows have a time of their own ({spec.time!r})",
            where=f"task {task.key}: anchor.time_from",
            value=anchor.time_from.model_dump(),
            fix=f"use time: {spec.time}",
        )


def _item_rule(table: str, field_name: str) -> ItemRule | None:
    rules = ITEM_RULES.get(table, ())
    for rule in rules:
        if field_name in rule.key or field_name == rule.name:
            return rule
    return rules[0] if rules else None


def _targets(task: TaskDef, unit: Unit, anchor_events: pl.Series) -> pl.DataFrame:
    """anchor_event, label (names in first-appearance order), target_items, from the YAML's target."""
    target = task.target
    assert target is not None
    rows = unit.timeline.rows.get(target.table)
    empty = pl.DataFrame(
        schema={"anchor_event": pl.Int64, "label": pl.List(pl.String), "target_items": pl.List(ITEM_SCHEMA)}
    )
    if rows is None or rows.is_empty():
        return empty
    rows = rows.join(pl.DataFrame({"event_id": anchor_events}), on="event_id", how="semi")
    needed = [target.field, *([target.fallback_field] if target.fallback_field else [])]
    if target.mapping and target.mapping.startswith("ccs"):
        needed.append("icd_version")
    if target.name_from is not None:
        needed += list(target.name_from.key)
    missing = [c for c in dict.fromkeys(needed) if c not in rows.columns]
    if missing:
        raise ConfigError(
            f"the timeline rows of {target.table} have no column {missing[0]!r}",
            where=f"task {task.key}: target",
            value=missing,
            fix=f"use a column the timeline keeps for {target.table}: {sorted(rows.columns)}",
        )
    rule = _item_rule(target.table, target.field)
    key_columns = list(rule.key) if rule else []
    frame = rows.select("event_id", "pos", *dict.fromkeys(needed + key_columns))
    if rule is not None:
        for column in rule.key:
            if isinstance(frame.schema[column], pl.List):
                frame = frame.explode(column)
    named = _target_names(task, unit, frame)
    if rule is not None:
        key = pl.concat_str(
            [pl.lit(rule.key_prefix), *[pl.col(c).cast(pl.String) for c in rule.key]], separator=":"
        )
    else:
        key = pl.concat_str([pl.lit(target.table), pl.col("target_name")], separator=":")
    named = named.filter(pl.col("target_name").is_not_null() & (pl.col("target_name").str.len_chars() > 0))
    named = named.with_columns(
        pl.struct(
            pl.lit(target.table).alias("table"),
            pl.coalesce(
                key, pl.concat_str([pl.lit(target.table), pl.col("target_name")], separator=":")
            ).alias("key"),
            pl.col("target_name").alias("name"),
        )
        .cast(ITEM_SCHEMA)
        .alias("item")
    )
    return (
        named.sort("event_id", "pos", maintain_order=True)
        .group_by("event_id", maintain_order=True)
        .agg(
            pl.col("target_name").unique(maintain_order=True).alias("label"),
            pl.col("item").unique(maintain_order=True).alias("target_items"),
        )
        .rename({"event_id": "anchor_event"})
    )


def _target_names(task: TaskDef, unit: Unit, frame: pl.DataFrame) -> pl.DataFrame:
    """Rows plus ``target_name``: the mapped group, the dictionary name, or the field itself."""
    target = task.target
    assert target is not None
    if target.mapping in ("ccs_dx", "ccs_px"):
        from bench.mappings import load_ccs

        ccs = load_ccs("dx" if target.mapping == "ccs_dx" else "px").frame()
        ccs = ccs.select(
            pl.col("icd_version").cast(pl.Int64),
            pl.col("icd_code").alias(target.field),
            pl.col("ccs_label").alias("target_name"),
        ).unique(subset=["icd_version", target.field], keep="first")
        return frame.with_columns(pl.col("icd_version").cast(pl.Int64)).join(
            ccs, on=["icd_version", target.field], how="left", maintain_order="left"
        )
    if target.mapping == "atc":
        if unit.atc is None:
            raise ConfigError(
                "needs an NDC->ATC table",
                where=f"task {task.key}",
                fix="pass --atc PATH (see `ehr-r1 bench atc-from-umls`)",
            )
        from bench.mappings import normalize_ndc

        codes = frame.select(pl.col(target.field).cast(pl.String)).unique().drop_nulls()
        normal = pl.DataFrame(
            {target.field: codes[target.field], "_ndc11": [normalize_ndc(c) for c in codes[target.field]]},
            schema={target.field: pl.String, "_ndc11": pl.String},
        )
        atc = unit.atc.select(pl.col("ndc").alias("_ndc11"), pl.col("atc_name").alias("target_name"))
        return (
            frame.with_columns(pl.col(target.field).cast(pl.String))
            .join(normal, on=target.field, how="left", maintain_order="left")
            .join(atc, on="_ndc11", how="left", maintain_order="left")
            .drop("_ndc11")
        )
    if target.name_from is not None:
        source = target.name_from
        columns = list(dict.fromkeys([*source.key, source.column, *(source.where or {})]))
        lookup = (
            unit.table(source.table, columns)
            if "subject_id" not in unit.source.spec(source.table).columns
            else (unit.table(source.table, ["subject_id", *columns]).drop("subject_id"))
        )
        for column, value in (source.where or {}).items():
            lookup = lookup.filter(pl.col(column).cast(pl.String) == value)
        lookup = lookup.select(*source.key, pl.col(source.column).cast(pl.String).alias("target_name"))
        if unit.source.spec(source.table).is_dictionary:
            lookup = lookup.unique(subset=list(source.key), keep="first", maintain_order=True)
        lookup = lookup.with_columns([pl.col(k).cast(frame.schema[k]) for k in source.key])
        return frame.join(lookup, on=list(source.key), how="left", maintain_order="left")
    name = pl.col(target.field).cast(pl.String)
    if target.fallback_field:
        name = pl.coalesce(name, pl.col(target.fallback_field).cast(pl.String))
    return frame.with_columns(name.alias("target_name"))


# ---------------------------------------------------------------------- risk tasks


def _risk_anchors(task: TaskDef, unit: Unit, tasks: dict[str, TaskDef], skipped: Counter) -> pl.DataFrame:
    anchor = task.anchor
    if anchor.kind == "interval":
        spec = unit.source.spec(anchor.table)
        columns = [
            "subject_id",
            "hadm_id",
            *(["stay_id"] if "stay_id" in spec.columns else []),
            anchor.start,
            anchor.end,
        ]
        anchors = unit.table(anchor.table, columns).select(
            "subject_id",
            "hadm_id",
            (pl.col("stay_id") if "stay_id" in columns else pl.lit(None, pl.Int64)).alias("stay_id"),
            pl.col(anchor.start).cast(US).alias("anchor_time"),
            pl.col(anchor.end).cast(US).alias("anchor_end"),
            pl.lit(anchor.table).alias("anchor_table"),
            pl.lit(None, pl.Int64).alias("anchor_event"),
        )
    elif unit.source.has(anchor.table) and anchor.table in EVENT_TABLES:
        _check_anchor_time(task)
        anchors = unit.timeline.events.filter(pl.col("table") == anchor.table).select(
            "subject_id",
            "hadm_id",
            "stay_id",
            pl.col("time").alias("anchor_time"),
            pl.lit(None, US).alias("anchor_end"),
            pl.lit(anchor.table).alias("anchor_table"),
            pl.col("event_id").alias("anchor_event"),
        )
    else:
        fallback = anchor.fallback_anchor
        if fallback is None:
            raise ConfigError(
                f"the source has no {anchor.table} table and the task has no fallback_anchor",
                where=f"task {task.key}: anchor",
                fix="add fallback_anchor: {table, column}, or give a source with that table",
            )
        anchors = unit.table(fallback.table, ["subject_id", "hadm_id", fallback.column]).select(
            "subject_id",
            "hadm_id",
            pl.lit(None, pl.Int64).alias("stay_id"),
            pl.col(fallback.column).cast(US).alias("anchor_time"),
            pl.lit(None, US).alias("anchor_end"),
            pl.lit(fallback.table).alias("anchor_table"),
            pl.lit(None, pl.Int64).alias("anchor_event"),
        )
    timed = anchors.filter(pl.col("anchor_time").is_not_null())
    skipped[NO_ANCHOR_TIME] += anchors.height - timed.height
    frame = _with_window(task, unit, timed)
    frame = _label(task, task.label, unit, frame, tasks)
    frame = frame.with_columns(pl.concat_list(pl.col("label")).alias("weight_items"))
    for rule in task.sample_rules:
        frame = _apply_rule(rule, unit, frame, skipped)
    decided_late = frame.filter(pl.col("evidence").is_null() | (pl.col("evidence") >= pl.col("context_end")))
    skipped[LABEL_IN_CONTEXT] += frame.height - decided_late.height
    return decided_late.with_columns(pl.lit([], dtype=pl.List(ITEM_SCHEMA)).alias("target_items"))


def _apply_rule(rule: str, unit: Unit, frame: pl.DataFrame, skipped: Counter) -> pl.DataFrame:
    if rule == "discharge_after_context_end":
        joined = frame.join(
            unit.admissions.select(
                pl.col("hadm_id").alias("anchor_hadm"), pl.col("dischtime").alias("_disch")
            ),
            on="anchor_hadm",
            how="left",
            maintain_order="left",
        )
        kept = joined.filter(pl.col("_disch").is_null() | (pl.col("_disch") >= pl.col("context_end")))
        skipped[DISCHARGE_IN_CONTEXT] += joined.height - kept.height
        return kept.drop("_disch")
    if rule == "death_not_before_context_end":
        joined = frame.join(unit.death_times, on="subject_id", how="left", maintain_order="left")
        kept = joined.filter(pl.col("death_time").is_null() | (pl.col("death_time") >= pl.col("context_end")))
        skipped[DEATH_IN_CONTEXT] += joined.height - kept.height
        return kept.drop("death_time")
    raise ConfigError(
        "unknown sample rule", where="sample_rules", value=rule, fix="see bench/taskdef.py SampleRule"
    )


def _ref(ref: str) -> pl.Expr:
    return {
        "anchor": pl.col("anchor_time"),
        "anchor_end": pl.col("anchor_end"),
        "admission_start": pl.col("_admittime"),
        "context_end": pl.col("context_end"),
    }[ref]


def _hours(hours: float) -> pl.Expr:
    return pl.duration(microseconds=round(hours * 3_600_000_000))


def _days(days: float) -> pl.Expr:
    return pl.duration(microseconds=round(days * 86_400_000_000))


def _with_window(task: TaskDef, unit: Unit, anchors: pl.DataFrame) -> pl.DataFrame:
    """Adds context_start, context_end (exclusive), the window's admission and ``_admittime``."""
    context = task.context
    if "anchor_end" not in anchors.columns:
        anchors = anchors.with_columns(pl.lit(None, US).alias("anchor_end"))
    frame = anchors.join(
        unit.admissions.select("hadm_id", pl.col("admittime").alias("_admittime")),
        on="hadm_id",
        how="left",
        maintain_order="left",
    )

    def bound(b: Bound) -> pl.Expr:
        return _ref(b.ref) + _hours(b.hours)

    end = bound(context.end)
    if context.end_inclusive:
        end = end + pl.duration(seconds=1)
    if context.end_at_linked_admission:
        end = (
            pl.when(pl.col("_admittime").is_not_null() & (pl.col("_admittime") < end))
            .then(pl.col("_admittime"))
            .otherwise(end)
        )
    frame = frame.with_columns(
        bound(context.start).alias("context_start"),
        end.alias("context_end"),
        pl.lit(context.same_admission).alias("same_admission"),
        pl.col("hadm_id").alias("anchor_hadm"),
    )
    if not context.same_admission:
        frame = frame.with_columns(pl.lit(None, pl.Int64).alias("hadm_id"))
    return frame


def _count_and_filter(task: TaskDef, unit: Unit, frame: pl.DataFrame, skipped: Counter) -> pl.DataFrame:
    context = task.context
    frame = frame.filter(pl.col("context_start").is_not_null() & pl.col("context_end").is_not_null())
    if context.require_admission_start_in_context:
        kept = frame.filter(
            pl.col("_admittime").is_null() | (pl.col("_admittime") >= pl.col("context_start"))
        )
        skipped[ADMISSION_BEFORE_CONTEXT] += frame.height - kept.height
        frame = kept
    counts = unit.windows.count(window_query(frame), excluded_tables(task, unit))
    frame = frame.with_columns(pl.Series("n_context", counts, dtype=pl.Int64))
    too_few = frame.filter(pl.col("n_context") < context.min_events)
    outside = too_few.filter(pl.col("same_admission") & pl.col("hadm_id").is_null()).height
    skipped[TOO_FEW_EVENTS_NO_ADMISSION] += outside
    skipped[TOO_FEW_EVENTS] += too_few.height - outside
    enough = frame.filter(pl.col("n_context") >= context.min_events)
    if context.max_events is not None:
        fits = enough.filter(pl.col("n_context") <= context.max_events)
        skipped[TOO_MANY_EVENTS] += enough.height - fits.height
        enough = fits
    return enough


def window_query(frame: pl.DataFrame) -> pl.DataFrame:
    """Candidate rows as the context-window queries ``Unit.windows`` counts and lists."""
    return frame.select(
        "subject_id",
        "hadm_id",
        pl.col("context_start").alias("start"),
        pl.col("context_end").alias("end"),
        "same_admission",
    )


def excluded_tables(task: TaskDef, unit: Unit) -> frozenset[str]:
    """Tables a task's context leaves out: its exclude_tables, and admissions rows shown in the header."""
    excluded = set(task.context.exclude_tables)
    # A window's own admission is the record header, never an event; the ehr-r1 style drops the
    # other admissions rows too (the reference's rule), the clean style keeps them as events.
    if task.context.same_admission or unit.timeline.definition == "ehr-r1":
        excluded.add("admissions")
    return frozenset(excluded)


# ---------------------------------------------------------------------- labels


def _decide(frame: pl.DataFrame, yes: pl.Expr, evidence: pl.Expr, added: list[str]) -> pl.DataFrame:
    """``frame`` (``added`` holds its helper columns) plus ``label`` and ``evidence``."""
    return (
        frame.with_columns(yes.fill_null(False).alias("_yes"))
        .with_columns(
            pl.when(pl.col("_yes")).then(pl.lit("yes")).otherwise(pl.lit("no")).alias("label"),
            evidence.alias("evidence"),
        )
        .drop("_yes", *added)
    )


def _first_after(frame: pl.DataFrame, others: pl.DataFrame, keys: list[str], after: pl.Expr) -> pl.DataFrame:
    """``frame`` plus ``_t``: the earliest ``others._t`` among rows matching on ``keys`` where ``after`` holds.

    ``after`` may use the candidate's ``anchor_time`` and ``stay_id`` (e.g. another stay, later).
    """
    anchor = [*keys, "anchor_time", "stay_id"]
    first = (
        frame.select(anchor)
        .unique()
        .join(others, on=keys, how="inner")
        .filter(after)
        .group_by(anchor)
        .agg(pl.col("_t").min())
    )
    return frame.join(first, on=anchor, how="left", maintain_order="left", nulls_equal=True)


def _label(task: TaskDef, label, unit: Unit, frame: pl.DataFrame, tasks: dict[str, TaskDef]) -> pl.DataFrame:
    """Adds ``label`` ("yes"/"no") and ``evidence`` (time of the data that decides it, or null)."""
    adm = unit.admissions.rename({"hadm_id": "anchor_hadm"})
    found = pl.col("_t").is_not_null()
    when_found = pl.when(found).then(pl.col("_t"))

    if isinstance(label, AdmittedFromEd):
        joined = frame.join(
            adm.select("anchor_hadm", "subject_id", pl.col("admittime").alias("_t")),
            on=["anchor_hadm", "subject_id"],
            how="left",
            maintain_order="left",
        )
        return _decide(joined, found, when_found, ["_t"])

    if isinstance(label, DeathInHospital):
        columns = ["dischtime", "deathtime", "hospital_expire_flag"]
        joined = frame.join(
            adm.select("anchor_hadm", *columns), on="anchor_hadm", how="left", maintain_order="left"
        )
        died = (pl.col("hospital_expire_flag") == 1) | pl.col("deathtime").is_not_null()
        # a death is decided when it happens; survival at the discharge
        evidence = (
            pl.when(died.fill_null(False)).then(pl.coalesce("deathtime", "dischtime")).otherwise("dischtime")
        )
        return _decide(joined, died, evidence, columns)

    if isinstance(label, IcuAdmissionWithin):
        icu = unit.table("icustays", ["hadm_id", "intime"]).select(
            pl.col("hadm_id").alias("anchor_hadm"), pl.col("intime").cast(US).alias("_t")
        )
        joined = _first_after(frame, icu, ["anchor_hadm"], pl.col("_t") >= pl.col("anchor_time"))
        within = pl.col("_t") < _ref(label.origin) + _hours(label.hours)
        return _decide(joined, within, pl.when(within).then(pl.col("_t")), ["_t"])

    if isinstance(label, EdReturnWithin):
        ed = unit.table("edstays", ["subject_id", "stay_id", "intime"]).select(
            "subject_id", pl.col("stay_id").alias("_other"), pl.col("intime").cast(US).alias("_t")
        )
        later = (pl.col("_t") > pl.col("anchor_time")) & (pl.col("_other") != pl.col("stay_id"))
        joined = _first_after(frame, ed, ["subject_id"], later)
        within = pl.col("_t") < _ref(label.origin) + _hours(label.hours)
        return _decide(joined, within, pl.when(within).then(pl.col("_t")), ["_t"])

    if isinstance(label, AnyOf):
        parts = {}
        for i, key in enumerate(label.tasks):
            part = _label(tasks[key], tasks[key].label, unit, frame, tasks)
            parts[f"_y{i}"] = part["label"] == "yes"
            parts[f"_e{i}"] = part["evidence"]
        n = len(label.tasks)
        any_yes = pl.any_horizontal([f"_y{i}" for i in range(n)])
        # yes: decided by the first component that is yes; no: by the last component to be decided
        evidence = (
            pl.when(any_yes)
            .then(pl.min_horizontal([pl.when(pl.col(f"_y{i}")).then(pl.col(f"_e{i}")) for i in range(n)]))
            .otherwise(pl.max_horizontal([f"_e{i}" for i in range(n)]))
        )
        return _decide(frame.with_columns(**parts), any_yes, evidence, list(parts))

    if isinstance(label, ReadmissionWithin):
        base = frame.join(
            adm.select("anchor_hadm", pl.col("admittime").alias("_own")),
            on="anchor_hadm",
            how="left",
            maintain_order="left",
        ).with_columns(pl.coalesce("_own", "anchor_time").alias("_own"))
        later = adm.select("subject_id", pl.col("admittime").alias("_t"))
        nxt = (
            base.select("subject_id", "_own")
            .unique()
            .join(later, on="subject_id", how="inner")
            .filter(pl.col("_t") > pl.col("_own"))
            .group_by("subject_id", "_own")
            .agg(pl.col("_t").min())
        )
        joined = base.join(nxt, on=["subject_id", "_own"], how="left", maintain_order="left")
        within = pl.col("_t") < _ref(label.origin) + _days(label.days)
        return _decide(joined, within, pl.when(within).then(pl.col("_t")), ["_t", "_own"])

    if isinstance(label, LosExceeds):
        joined = frame.join(
            adm.select("anchor_hadm", "admittime", "dischtime"),
            on="anchor_hadm",
            how="left",
            maintain_order="left",
        )
        longer = (pl.col("dischtime") - pl.col("admittime")) > _days(label.days)
        return _decide(joined, longer, pl.col("dischtime"), ["admittime", "dischtime"])

    if isinstance(label, DeathWithin):
        joined = frame.join(unit.death_times, on="subject_id", how="left", maintain_order="left")
        within = pl.col("death_time") < _ref(label.origin) + _days(label.days)
        return _decide(joined, within, pl.when(within).then(pl.col("death_time")), ["death_time"])

    if isinstance(label, IcuLosAtLeast):
        longer = (pl.col("anchor_end") - pl.col("anchor_time")) >= _days(label.days)
        return _decide(frame, longer, pl.col("anchor_end"), [])

    if isinstance(label, IcuReadmission):
        icu = unit.table("icustays", ["hadm_id", "stay_id", "intime"]).select(
            pl.col("hadm_id").alias("anchor_hadm"),
            pl.col("stay_id").alias("_other"),
            pl.col("intime").cast(US).alias("_t"),
        )
        later = (pl.col("_t") > pl.col("anchor_time")) & (pl.col("_other") != pl.col("stay_id"))
        joined = _first_after(frame, icu, ["anchor_hadm"], later).join(
            adm.select("anchor_hadm", pl.col("dischtime").alias("_disch")),
            on="anchor_hadm",
            how="left",
            maintain_order="left",
        )
        # a return is decided when it happens; no return at the hospital discharge
        return _decide(joined, found, pl.coalesce("_t", "_disch"), ["_t", "_disch"])

    raise ConfigError("unknown label kind", where=f"task {task.key}: label", value=type(label).__name__)
