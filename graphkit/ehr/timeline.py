"""Patient timelines: every event of a subject across tables, time-sorted, tied to hadm_id / stay_id.

One ``Timeline`` covers one shard of a source (or a few subjects) and is columnar throughout: an
events frame (one row per event) for vectorized window and target selection, and per table the
rows of those events with their names resolved from the dictionary tables, for the serializer.
Nothing is held as one Python object per row or per event.

Two event definitions:

- ``clean``: the rows of one table sharing (subject, admission, timestamp).
- ``ehr-r1``: the reference's definition, a run of consecutive rows of one table in the
  time-sorted timeline (it can span several timestamps and admissions).

Rows are sorted by (subject, time, table order of ``events.TABLE_ORDER``, row order in the file).
A row's time comes from its table's time column (``events.EventTable.time``); date-only tables
are placed at 00:00:00 (``time_kind`` "date"); diagnoses_icd and drgcodes at the admission's
dischtime, ED triage one second after ED arrival and ED diagnoses at ED departure ("derived", the
reference's rules). A row whose time is missing is never placed by guesswork: it is left out of
the timeline and counted in ``Timeline.undated``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from graphkit.ehr.events import (
    EVENT_TABLES,
    LIST,
    LOOKUP,
    TABLE_ORDER,
    TABLE_RANK,
    EventTable,
    check_tables,
)
from graphkit.ehr.source import MimicSource, shard_of
from graphkit.errors import ConfigError

log = logging.getLogger(__name__)

DEFINITIONS = ("clean", "ehr-r1")
_ITEM_SEPARATOR = "\x1f"  # joins a row's several item names (radiology exam names) until its event is built
TABLE_ENUM = pl.Enum(list(TABLE_ORDER))
MODULE_ENUM = pl.Enum(["hosp", "icu", "ed", "note"])

# Columns of the events frame (documented in docs/interfaces.md §2).
EVENT_COLUMNS = (
    "event_id",
    "subject_id",
    "hadm_id",
    "stay_id",
    "module",
    "table",
    "time",
    "time_kind",
    "n_rows",
    "items",
    "codes",
)


@dataclass
class CodeMappings:
    """Optional groupings the reference prints as "Atc Type" / "Ccs Type" (``None`` without them).

    ``atc``: columns ``ndc`` (11 digits, leading zeros) and ``atc_name``; ``ccs_diagnoses`` and
    ``ccs_procedures``: columns ``icd_version`` (int), ``icd_code`` (str) and ``ccs_name``.
    """

    atc: pl.DataFrame | None = None
    ccs_diagnoses: pl.DataFrame | None = None
    ccs_procedures: pl.DataFrame | None = None


@dataclass
class Lookups:
    """Dictionary tables of a source (small, never sharded), loaded once and shared by its shards."""

    source: MimicSource
    lab_items: pl.DataFrame  # itemid, item_name
    icu_items: pl.DataFrame  # itemid, item_name
    icd_diagnoses: pl.DataFrame  # icd_version, icd_code, icd_name
    icd_procedures: pl.DataFrame  # icd_version, icd_code, icd_name
    hcpcs: pl.DataFrame  # hcpcs_cd, d_hcpcs_name
    mappings: CodeMappings = field(default_factory=CodeMappings)
    _integral: dict[tuple[str, str], bool] = field(default_factory=dict, repr=False)
    # learnt by graphkit.ehr.serialize once per source: tokens per row of each table, per (style, counter)
    row_costs: dict[tuple[str, str], pl.DataFrame] = field(default_factory=dict, repr=False)

    def integral_column(self, table: str, column: str) -> bool:
        """Whether pandas.read_csv would have read the whole column as int64 (complete and integral).

        The reference printed such values as "100", and every other number as a float ("100.0").
        Decided on the whole table, not the shard, so every shard prints alike.
        """
        key = (table, column)
        if key not in self._integral:
            col = pl.col(column)
            stats = (
                self.source.scan(table, columns=[column])
                .select(
                    col.null_count().alias("nulls"),
                    (col.cast(pl.Float64) != col.cast(pl.Float64).floor()).sum().alias("fractional"),
                )
                .collect()
            )
            self._integral[key] = bool(stats["nulls"][0] == 0 and (stats["fractional"][0] or 0) == 0)
        return self._integral[key]


def load_lookups(source: MimicSource, mappings: CodeMappings | None = None) -> Lookups:
    """Read the dictionary tables that turn codes into names (d_labitems, d_items, d_icd_*, d_hcpcs)."""

    def frame(table: str, exprs: list[pl.Expr]) -> pl.DataFrame:
        return (
            source.scan(table)
            .select(exprs)
            .unique(subset=[e.meta.output_name() for e in exprs[:-1]], keep="first", maintain_order=True)
            .collect()
        )

    return Lookups(
        source=source,
        lab_items=frame("d_labitems", [pl.col("itemid"), pl.col("label").alias("item_name")]),
        icu_items=frame("d_items", [pl.col("itemid"), pl.col("label").alias("item_name")]),
        icd_diagnoses=frame(
            "d_icd_diagnoses",
            [pl.col("icd_version"), pl.col("icd_code"), pl.col("long_title").alias("icd_name")],
        ),
        icd_procedures=frame(
            "d_icd_procedures",
            [pl.col("icd_version"), pl.col("icd_code"), pl.col("long_title").alias("icd_name")],
        ),
        hcpcs=frame(
            "d_hcpcs", [pl.col("code").alias("hcpcs_cd"), pl.col("short_description").alias("d_hcpcs_name")]
        ),
        mappings=mappings or CodeMappings(),
    )


@dataclass
class Timeline:
    """The events of one shard (or of a few subjects) of a source, under one event definition."""

    definition: str
    events: pl.DataFrame  # EVENT_COLUMNS, sorted by event_id; event_id follows timeline order per subject
    rows: dict[str, pl.DataFrame]  # per table, file order: event_id, pos (row within event), row_nr (rank in file order), printed columns
    patients: pl.DataFrame  # subject_id, gender, anchor_age, anchor_year
    admissions: pl.DataFrame  # subject_id, hadm_id, admittime, dischtime
    undated: dict[str, int]  # per table: rows left out because they have no usable time
    lookups: Lookups
    shard: int | None = None

    @property
    def subjects(self) -> pl.Series:
        return self.patients["subject_id"]

    def subject_events(self, subject_id: int) -> pl.DataFrame:
        return self.events.filter(pl.col("subject_id") == subject_id)


def build_timeline(
    source: MimicSource,
    *,
    shard: int | None = None,
    subjects: Sequence[int] | None = None,
    definition: str = "clean",
    lookups: Lookups | None = None,
    tables: Sequence[str] | None = None,
) -> Timeline:
    """The timeline of one shard of ``source`` (all of it when ``shard`` is None), or of ``subjects``.

    ``tables`` limits the timeline to some tables (default: every timeline table present).
    """
    if definition not in DEFINITIONS:
        raise ConfigError(
            "is not an event definition",
            where="definition",
            value=definition,
            fix=f"use one of: {', '.join(DEFINITIONS)}",
        )
    lookups = lookups or load_lookups(source)
    wanted = list(TABLE_ORDER) if tables is None else [t for t in TABLE_ORDER if t in set(tables)]
    check_tables(tables or (), "tables")
    present = [t for t in wanted if source.has(t)]
    if shard is None and subjects is not None and source.n_shards > 1:
        shards = {shard_of(s, source.n_shards) for s in subjects}
        shard = shards.pop() if len(shards) == 1 else None
    reader = _Reader(source, lookups, shard, None if subjects is None else [int(s) for s in subjects])

    prepared = [reader.prepare(EVENT_TABLES[name]) for name in present]
    frames = pl.collect_all(prepared + [reader.patients(), reader.admissions()])
    table_rows = dict(zip(present, frames[: len(present)], strict=True))
    patients, admissions = frames[len(present) :]

    undated = {name: int(rows["time"].null_count()) for name, rows in table_rows.items()}
    undated = {name: n for name, n in undated.items() if n}
    if undated:
        log.info("rows without a usable time left out of the timeline: %s", undated)
    table_rows = {name: rows.filter(pl.col("time").is_not_null()) for name, rows in table_rows.items()}

    events, event_ids, positions = _assign_events(table_rows, definition)
    rows, offset = {}, 0
    for name, frame in table_rows.items():
        rows[name] = frame.drop("subject_id", "hadm_id", "stay_id", "item", "code").with_columns(
            pl.Series("event_id", event_ids[offset : offset + frame.height]),
            pl.Series("pos", positions[offset : offset + frame.height]),
        )
        offset += frame.height
    return Timeline(
        definition=definition,
        events=events,
        rows=rows,
        patients=patients,
        admissions=admissions,
        undated=undated,
        lookups=lookups,
        shard=shard,
    )


def iter_timelines(
    source: MimicSource,
    *,
    definition: str = "clean",
    lookups: Lookups | None = None,
    tables: Sequence[str] | None = None,
    batch_subjects: int | None = 2000,
) -> Iterator[Timeline]:
    """Timelines covering a whole cohort: one per shard, in shard order, and within a shard of a
    converted source one per ``batch_subjects`` patients (in subject order), which bounds memory
    whatever the shard size. A raw folder is one shard and is never batched (each batch would
    parse its CSV files again): convert large data first.
    """
    lookups = lookups or load_lookups(source)
    batched = batch_subjects is not None and source.kind == "converted"
    for shard in range(source.n_shards):
        shard_arg = shard if source.n_shards > 1 else None
        if not batched:
            yield build_timeline(source, shard=shard_arg, definition=definition, lookups=lookups, tables=tables)
            continue
        subjects = source.scan("patients", columns=["subject_id"], shard=shard_arg).collect()["subject_id"].sort()
        for start in range(0, len(subjects), batch_subjects):
            batch = subjects[start : start + batch_subjects].to_list()
            yield build_timeline(source, shard=shard_arg, subjects=batch, definition=definition, lookups=lookups,
                                 tables=tables)


def _assign_events(table_rows: dict[str, pl.DataFrame], definition: str) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The events frame, and for every row (tables concatenated in ``table_rows`` order) its event and
    its position within the event."""
    keys = pl.concat(
        [
            frame.select(
                "subject_id", "hadm_id", "stay_id", "time", pl.lit(TABLE_RANK[name], dtype=pl.UInt8).alias("tbl"),
                "row_nr", "item", "code",
            )
            for name, frame in table_rows.items()
        ],
        how="vertical",
    )
    if definition == "clean":
        order = ["subject_id", "time", "tbl", "hadm_id", "row_nr"]
        group = ["subject_id", "time", "tbl", "hadm_id"]
    else:
        order = ["subject_id", "time", "tbl", "row_nr"]
        group = ["subject_id", "tbl"]
    # sort the key columns only (a permutation), the text columns stay where they are
    permutation = keys.select(pl.arg_sort_by(order, nulls_last=True)).to_series()
    ordered = keys.select(group)[permutation]
    starts = pl.any_horizontal([pl.col(c).ne_missing(pl.col(c).shift(1)) for c in group])
    sorted_ids = ordered.select((starts.cum_sum() - 1).cast(pl.Int64)).to_series().to_numpy()
    n = len(sorted_ids)
    first = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]) if n else np.array([], dtype=np.int64)
    rows = permutation.to_numpy()
    event_ids = np.empty(n, dtype=np.int64)
    positions = np.empty(n, dtype=np.int64)
    event_ids[rows] = sorted_ids
    positions[rows] = np.arange(n) - first[sorted_ids] if n else sorted_ids
    events = keys.select("subject_id", "hadm_id", "stay_id", "time", "tbl")[rows[first]].with_columns(
        pl.Series("event_id", np.arange(len(first), dtype=np.int64)),
        pl.Series("n_rows", np.diff(np.r_[first, n]), dtype=pl.UInt32),
    )
    lists = (
        keys.select("item", "code")[rows]
        .with_columns(pl.Series("event_id", sorted_ids))
        .group_by("event_id", maintain_order=True)
        .agg(pl.col("item").drop_nulls().alias("items"), pl.col("code").drop_nulls().alias("codes"))
    )
    events = events.with_columns(lists["items"], lists["codes"])
    if (events["tbl"] == TABLE_RANK["radiology"]).any():  # exam names travel joined per row: one item per name
        events = events.with_columns(
            pl.when(pl.col("tbl") == TABLE_RANK["radiology"])
            .then(pl.col("items").list.join(_ITEM_SEPARATOR).str.split(_ITEM_SEPARATOR)
                  .list.eval(pl.element().filter(pl.element() != "")))
            .otherwise(pl.col("items"))
            .alias("items")
        )
    kinds = pl.DataFrame(
        {
            "tbl": [TABLE_RANK[t] for t in TABLE_ORDER],
            "table": pl.Series([t for t in TABLE_ORDER], dtype=TABLE_ENUM),
            "module": pl.Series([EVENT_TABLES[t].module for t in TABLE_ORDER], dtype=MODULE_ENUM),
            "time_kind": [EVENT_TABLES[t].time_kind for t in TABLE_ORDER],
        },
        schema_overrides={"tbl": pl.UInt8},
    )
    events = events.join(kinds, on="tbl", how="left").select(EVENT_COLUMNS).sort("event_id")
    return events, event_ids, positions


class _Reader:
    """Scans one table of a shard and adds what printing needs: names for codes, times, links."""

    def __init__(self, source: MimicSource, lookups: Lookups, shard: int | None, subjects: list[int] | None):
        self.source = source
        self.lookups = lookups
        self.shard = shard
        self.subjects = subjects

    def scan(self, table: str, columns: list[str]) -> pl.LazyFrame:
        frame = self.source.scan(table, columns=columns, shard=self.shard)
        if self.subjects is not None:
            # the range lets parquet skip row groups (converted shards are sorted by subject)
            subject = pl.col("subject_id")
            frame = frame.filter(subject.is_between(min(self.subjects), max(self.subjects)) & subject.is_in(self.subjects))
        return frame

    def patients(self) -> pl.LazyFrame:
        return self.scan("patients", ["subject_id", "gender", "anchor_age", "anchor_year"]).sort("subject_id")

    def admissions(self) -> pl.LazyFrame:
        return self.scan("admissions", ["subject_id", "hadm_id", "admittime", "dischtime"]).sort(
            "subject_id", "admittime"
        )

    def prepare(self, spec: EventTable) -> pl.LazyFrame:
        table_spec = self.source.spec(spec.name)
        printed = {f.column for f in spec.ehr_r1 + spec.clean} | {spec.time, spec.item, spec.code}
        raw = [
            c
            for c in table_spec.columns
            if c in printed or c in _LINK_COLUMNS or c in _NEEDS.get(spec.name, ())
        ]
        # the row number keeps the file order of rows sharing a time
        frame = self.scan(spec.name, raw).with_row_index("row_nr")
        frame = _DERIVE.get(spec.name, _no_derivation)(self, frame)
        frame = self._add_lookups(spec, frame)
        names = frame.collect_schema().names()
        item = pl.col(spec.item).cast(pl.String) if spec.item else pl.lit(None, dtype=pl.String)
        if spec.item and dict(frame.collect_schema())[spec.item] == pl.List(pl.String):
            item = pl.col(spec.item).list.join(_ITEM_SEPARATOR)  # split again per event (_assign_events)
        return frame.with_columns(
            pl.col(spec.time).cast(pl.Datetime("us")).alias("time"),
            (pl.col("hadm_id") if "hadm_id" in names else pl.lit(None, dtype=pl.Int64)).alias("hadm_id"),
            (pl.col("stay_id") if "stay_id" in names else pl.lit(None, dtype=pl.Int64)).alias("stay_id"),
            item.alias("item"),
            (pl.col(spec.code).cast(pl.String) if spec.code else pl.lit(None, dtype=pl.String)).alias("code"),
        )

    def _add_lookups(self, spec: EventTable, frame: pl.LazyFrame) -> pl.LazyFrame:
        columns = {f.column for f in spec.ehr_r1 + spec.clean if f.kind in (LOOKUP, LIST)}
        lk = self.lookups
        if "item_name" in columns:
            items = lk.lab_items if spec.name == "labevents" else lk.icu_items
            frame = _lookup(frame, items.lazy(), ["itemid"], "item_name")
        if "icd_name" in columns:
            titles = lk.icd_diagnoses if spec.name == "diagnoses_icd" else lk.icd_procedures
            frame = _lookup(frame, titles.lazy(), ["icd_version", "icd_code"], "icd_name")
        if "ccs_name" in columns:
            table = lk.mappings.ccs_procedures if spec.name == "procedures_icd" else lk.mappings.ccs_diagnoses
            frame = _optional_lookup(frame, table, ["icd_version", "icd_code"], "ccs_name")
        if "atc_name" in columns:
            frame = frame.with_columns(pl.col("ndc").str.zfill(11).alias("_ndc11"))
            atc = None if lk.mappings.atc is None else lk.mappings.atc.rename({"ndc": "_ndc11"})
            frame = _optional_lookup(frame, atc, ["_ndc11"], "atc_name").drop("_ndc11")
        if "exam_names" in columns:
            frame = self._exam_names(frame)
        return frame

    def _exam_names(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        if not self.source.has("radiology_detail"):
            return frame.with_columns(
                pl.lit(None, dtype=pl.List(pl.String)).alias("exam_names"),
                pl.lit(False).alias("exam_names__found"),
            )
        names = (
            self.scan(
                "radiology_detail", ["note_id", "subject_id", "field_name", "field_value", "field_ordinal"]
            )
            .filter(pl.col("field_name") == "exam_name")
            .sort("note_id", "field_ordinal")
            .group_by("note_id", maintain_order=True)
            .agg(pl.col("field_value").unique(maintain_order=True).alias("exam_names"))
            .with_columns(pl.lit(True).alias("exam_names__found"))
        )
        return frame.join(names, on="note_id", how="left").with_columns(
            pl.col("exam_names__found").fill_null(False)
        )

    def ed_stays(self) -> pl.LazyFrame:
        return self.scan("edstays", ["subject_id", "stay_id", "hadm_id", "intime", "outtime"]).select(
            "stay_id", "hadm_id", "intime", "outtime"
        )


def _lookup(frame: pl.LazyFrame, table: pl.LazyFrame, on: list[str], name: str) -> pl.LazyFrame:
    """Left join a dictionary; ``<name>__found`` tells a missing code ("None") from an empty name ("nan")."""
    table = table.with_columns(pl.lit(True).alias(f"{name}__found"))
    return frame.join(table, on=on, how="left", maintain_order="left").with_columns(
        pl.col(f"{name}__found").fill_null(False)
    )


def _optional_lookup(
    frame: pl.LazyFrame, table: pl.DataFrame | None, on: list[str], name: str
) -> pl.LazyFrame:
    if table is None:
        return frame.with_columns(
            pl.lit(None, dtype=pl.String).alias(name), pl.lit(False).alias(f"{name}__found")
        )
    cast = {"icd_version": pl.Int64, "icd_code": pl.String, "_ndc11": pl.String, name: pl.String}
    table = table.select([pl.col(c).cast(cast[c]) for c in [*on, name]]).unique(subset=on, keep="first")
    return _lookup(frame, table.lazy(), on, name)


def _no_derivation(reader: _Reader, frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame


def _at_discharge(reader: _Reader, frame: pl.LazyFrame) -> pl.LazyFrame:
    discharge = reader.scan("admissions", ["subject_id", "hadm_id", "dischtime"]).select(
        "hadm_id", "dischtime"
    )
    frame = frame.join(discharge, on="hadm_id", how="left", maintain_order="left")
    if "icd_code" in frame.collect_schema().names():
        frame = frame.with_columns(_icd_key())
    return frame


def _icd_key() -> pl.Expr:
    return pl.concat_str(pl.col("icd_version").cast(pl.String), pl.lit(":"), pl.col("icd_code")).alias(
        "icd_key"
    )


def _ed_linked(reader: _Reader, frame: pl.LazyFrame) -> pl.LazyFrame:
    stays = reader.ed_stays().select(
        "stay_id",
        "hadm_id",
        (pl.col("intime") + pl.duration(seconds=1)).alias("triage_time"),
        pl.col("outtime").alias("ed_outtime"),
    )
    frame = frame.join(stays, on="stay_id", how="left", maintain_order="left")
    if "icd_code" in frame.collect_schema().names():
        frame = frame.with_columns(_icd_key())
    return frame


def _with(**exprs: pl.Expr):
    def derive(reader: _Reader, frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.with_columns(**exprs)

    return derive


def _hcpcs(reader: _Reader, frame: pl.LazyFrame) -> pl.LazyFrame:
    frame = frame.join(reader.lookups.hcpcs.lazy(), on="hcpcs_cd", how="left", maintain_order="left")
    return frame.with_columns(pl.coalesce("short_description", "d_hcpcs_name").alias("hcpcs_name"))


# The measured value as written, unless it is missing or de-identified ("___"): then the number.
_MEASURED = (
    pl.when(pl.col("value").is_null() | pl.col("value").str.contains(r"^[_\s]*$"))
    .then(pl.col("valuenum").cast(pl.String))
    .otherwise(pl.col("value"))
)

_DERIVE = {
    "transfers": _with(transfer_item=pl.coalesce("careunit", "eventtype")),
    "labevents": _with(lab_value=_MEASURED),
    "chartevents": _with(chart_value=_MEASURED),
    "datetimeevents": _with(datetime_value=pl.col("value").dt.strftime("%Y-%m-%d %H:%M:%S")),
    "procedures_icd": _with(icd_key=_icd_key()),
    "diagnoses_icd": _at_discharge,
    "drgcodes": _at_discharge,
    "hcpcsevents": _hcpcs,
    "triage": _ed_linked,
    "medrecon": _ed_linked,
    "pyxis": _ed_linked,
    "vitalsign": _ed_linked,
    "diagnosis": _ed_linked,
}

# Raw columns scanned besides the printed ones: ids that tie rows to admissions and stays, and
# the inputs of derived columns.
_LINK_COLUMNS = ("subject_id", "hadm_id", "stay_id")
_NEEDS = {
    "transfers": ("careunit", "eventtype"),
    "labevents": ("itemid", "value", "valuenum"),
    "chartevents": ("itemid", "value", "valuenum"),
    "datetimeevents": ("itemid", "value"),
    "procedureevents": ("itemid",),
    "inputevents": ("itemid",),
    "ingredientevents": ("itemid",),
    "outputevents": ("itemid",),
    "procedures_icd": ("icd_code", "icd_version"),
    "diagnoses_icd": ("icd_code", "icd_version"),
    "diagnosis": ("icd_code", "icd_version"),
    "hcpcsevents": ("hcpcs_cd", "short_description"),
    "radiology": ("note_id",),
    "prescriptions": ("ndc",),
    "medrecon": ("ndc",),
}
