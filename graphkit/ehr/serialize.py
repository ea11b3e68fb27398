"""The record serializer: a window of a patient's timeline as the markdown text models read.

A record is a demographics header, the previous discharge summary (note module), the admission,
then one block per event, oldest first::

    ## <Event name> [YYYY-MM-DD HH:MM:SS]
    - Key: Value                    (an event of one row)

    ## <Event name> [YYYY-MM-DD HH:MM:SS]
    | Key | Key |                   (an event of several rows)
    | ------ | ------ |
    | value | value |

Styles (``graphkit.ehr.events`` holds the per-table details): ``clean`` (default) and ``ehr-r1``
(the reference's exact text). A window is a subject, optionally an admission, and a time range
``start <= time < end``. Records are cut from the left to a token budget: the latest events are
kept, an event is never cut in the middle.

Fast path for many windows: ``Serializer.serialize_many(windows)`` renders each event of the shard
once (vectorized, per table) and assembles every window with polars.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from graphkit.ehr.events import (
    BLOCK,
    EHR_R1_DEMOGRAPHICS_NAME,
    EVENT_TABLES,
    LIST,
    LOOKUP,
    NONE,
    NUMBER,
    PANDAS_NA_STRINGS,
    TEXT,
    TIME_DATE,
    EventTable,
    Field,
    check_tables,
)
from graphkit.ehr.timeline import Timeline
from graphkit.ehr.tokens import TokenCounter, count_series, make_counter
from graphkit.errors import ConfigError, InputError

log = logging.getLogger(__name__)

STYLES = ("clean", "ehr-r1")
SEPARATOR = "\n\n"
# Before an event is rendered its tokens are guessed from its table's tokens per row, measured on
# a sample of that many events per table, a little low (see Serializer._candidates).
_COST_SAMPLE = 200
_COST_DISCOUNT = 0.8
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Columns of the frame returned by serialize_many (besides the window's own columns).
RESULT_COLUMNS = ("text", "n_tokens", "n_events", "n_events_dropped", "truncated", "over_budget", "event_ids")


@dataclass
class Record:
    """One serialized window."""

    text: str
    n_tokens: int  # by the serializer's counter
    n_events: int  # event blocks kept
    n_events_dropped: int  # oldest events left out to fit the budget
    truncated: bool  # something was left out to fit the budget (events or the previous discharge summary)
    over_budget: bool  # even the header (demographics and admission) does not fit the budget
    event_ids: list[int] = field(default_factory=list)


def check_style(style: str, where: str) -> None:
    if style not in STYLES:
        raise ConfigError("is not a record style", where=where, value=style, fix=f"use one of: {', '.join(STYLES)}")


def user_message(record: str, instruction: str) -> str:
    """The user turn of a sample, as the reference builds it: the record, a line break, the instruction."""
    return f"{record}\n{instruction}"


class Serializer:
    """Prints windows of one timeline in one style; event blocks are rendered once and reused."""

    def __init__(self, timeline: Timeline, style: str = "clean", tokenizer=None):
        check_style(style, "style")
        self.timeline = timeline
        self.style = style
        self.counter: TokenCounter = make_counter(tokenizer)
        self._separator_tokens = self.counter.count([SEPARATOR])[0]
        self._blocks = pl.DataFrame(schema={"event_id": pl.Int64, "text": pl.String, "n_tokens": pl.Int64})
        events = timeline.events
        self._tokens = np.full(events.height, -1, dtype=np.int64)  # per event id; -1: not rendered yet
        self._subject_first, self._keys = _search_keys(events)
        self._event_cols = events.select("event_id", "subject_id", "hadm_id", "table", "time")

    # ------------------------------------------------------------------ public API
    def serialize(
        self,
        subject_id: int,
        hadm_id: int | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        *,
        event_ids: Sequence[int] | None = None,
        max_tokens: int | None = None,
        unlinked: bool = True,
        include_admission: bool = True,
        include_discharge: bool = True,
        exclude_tables: Sequence[str] = (),
    ) -> Record:
        """One window; see ``serialize_many`` for the arguments. Raises InputError for an unknown id."""
        self._check_subject(subject_id, hadm_id)
        window = {"subject_id": [int(subject_id)], "hadm_id": [hadm_id], "start": [start], "end": [end]}
        schema = {
            "subject_id": pl.Int64,
            "hadm_id": pl.Int64,
            "start": pl.Datetime("us"),
            "end": pl.Datetime("us"),
        }
        if event_ids is not None:
            window["event_ids"] = [list(event_ids)]
            schema["event_ids"] = pl.List(pl.Int64)
        row = self.serialize_many(
            pl.DataFrame(window, schema=schema),
            max_tokens=max_tokens,
            unlinked=unlinked,
            include_admission=include_admission,
            include_discharge=include_discharge,
            exclude_tables=exclude_tables,
        ).row(0, named=True)
        return Record(**{k: row[k] for k in RESULT_COLUMNS})

    def serialize_many(
        self,
        windows: pl.DataFrame,
        *,
        max_tokens: int | None = None,
        unlinked: bool = True,
        include_admission: bool = True,
        include_discharge: bool = True,
        exclude_tables: Sequence[str] = (),
    ) -> pl.DataFrame:
        """Serialize many windows of this timeline; returns ``windows`` plus RESULT_COLUMNS, same order.

        ``windows`` columns: ``subject_id``; optional ``hadm_id``, ``start``, ``end`` (null = open);
        or ``event_ids`` (a list of event ids, used as given instead of the time range). An event
        is in a time window when ``start <= time < end`` and, with ``hadm_id``, when it belongs to
        that admission or (``unlinked``) has no admission and lies between the window's first and
        last event of the admission, as in the reference's context slices. The admission's own
        admissions row is printed in the header (``include_admission``), not as an event.
        ``max_tokens`` (or a ``max_tokens`` column): budget for the whole record text.
        """
        check_tables(exclude_tables, "exclude_tables")
        if "subject_id" not in windows.columns:
            raise ConfigError(
                "has no subject_id column", where="windows", fix="add the subject of each window"
            )
        frame = self._normalize(windows)
        pairs = self._select(frame, unlinked, exclude_tables)
        header = self._header(frame, include_admission, include_discharge)
        self._render(pl.concat([header["admission_event"], header["discharge_event"]]).drop_nulls())
        header = self._fixed_costs(frame, header, max_tokens)
        totals = pairs.group_by("window").agg(pl.len().cast(pl.Int64).alias("n_window_events"))
        pairs = self._candidates(pairs, header)
        result = self._assemble(frame, pairs, header.join(totals, on="window", how="left"), max_tokens)
        return windows.with_columns(result.select(RESULT_COLUMNS))

    def render_events(self, event_ids: Sequence[int] | pl.Series) -> pl.DataFrame:
        """The printed block of each event (``event_id``, ``text``, ``n_tokens``), in the given order."""
        ids = pl.Series("event_id", event_ids, dtype=pl.Int64)
        self._render(ids)
        return pl.DataFrame(ids).join(self._blocks, on="event_id", how="left", maintain_order="left")

    # ------------------------------------------------------------------ windows
    def _check_subject(self, subject_id: int, hadm_id: int | None) -> None:
        patients = self.timeline.patients
        if patients.filter(pl.col("subject_id") == subject_id).is_empty():
            sample = ", ".join(str(s) for s in patients["subject_id"].head(5).to_list())
            raise InputError(
                "is not a patient of this dataset",
                where="subject_id",
                value=subject_id,
                fix=f"use a subject_id of the patients table (e.g. {sample})",
            )
        if hadm_id is not None:
            admissions = self.timeline.admissions.filter(pl.col("subject_id") == subject_id)
            if admissions.filter(pl.col("hadm_id") == hadm_id).is_empty():
                known = ", ".join(str(h) for h in admissions["hadm_id"].to_list()) or "none"
                raise InputError(
                    f"is not an admission of subject {subject_id}",
                    where="hadm_id",
                    value=hadm_id,
                    fix=f"use one of this subject's admissions: {known}",
                )

    def _normalize(self, windows: pl.DataFrame) -> pl.DataFrame:
        cols = windows.columns
        frame = windows.select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("window"),
            pl.col("subject_id").cast(pl.Int64),
            (pl.col("hadm_id") if "hadm_id" in cols else pl.lit(None)).cast(pl.Int64).alias("hadm_id"),
            *[
                (pl.col(c) if c in cols else pl.lit(None)).cast(pl.Datetime("us")).alias(c)
                for c in ("start", "end")
            ],
            *([pl.col("event_ids").cast(pl.List(pl.Int64))] if "event_ids" in cols else []),
            *([pl.col("max_tokens").cast(pl.Int64).alias("budget")] if "max_tokens" in cols else []),
        )
        unknown = frame.join(self.timeline.patients.select("subject_id"), on="subject_id", how="anti")
        if not unknown.is_empty():
            raise InputError(
                "is not a patient of this timeline (wrong shard or subject)",
                where="windows.subject_id",
                value=unknown["subject_id"][0],
                fix="serialize each window with its shard's timeline",
            )
        # Event index range [lo, hi) of each window's time range within its subject's events.
        subject_index = pl.DataFrame(
            {"subject_id": self._subject_first[0], "_subject": np.arange(len(self._subject_first[0]))}
        )
        frame = frame.join(subject_index, on="subject_id", how="left", maintain_order="left")
        subject = frame["_subject"].fill_null(-1).to_numpy()
        lo = _search(self._keys, self._subject_first, subject, frame["start"], first=True)
        hi = _search(self._keys, self._subject_first, subject, frame["end"], first=False)
        return frame.with_columns(pl.Series("lo", lo), pl.Series("hi", hi)).drop("_subject")

    def _select(self, frame: pl.DataFrame, unlinked: bool, exclude_tables: Sequence[str]) -> pl.DataFrame:
        """(window, event_id) pairs of the events each window prints, in timeline order."""
        events = self._event_cols
        if "event_ids" in frame.columns:
            explicit = frame.filter(pl.col("event_ids").is_not_null())
            ranged = frame.filter(pl.col("event_ids").is_null())
        else:
            explicit, ranged = frame.clear(), frame
        candidates = (
            ranged.select("window", "hadm_id", pl.int_ranges("lo", "hi", dtype=pl.Int64).alias("event_id"))
            .explode("event_id", empty_as_null=False)
            .drop_nulls("event_id")
            .with_columns(_gather(events, "hadm_id").alias("event_hadm"), _gather(events, "table"))
        )
        admission_rows = pl.col("table") == "admissions"
        if self.style == "clean":  # the window's own admission is in the header; others stay events
            admission_rows = admission_rows & pl.col("event_hadm").eq_missing(pl.col("hadm_id"))
        candidates = candidates.filter(~admission_rows)
        if exclude_tables:
            candidates = candidates.filter(~pl.col("table").cast(pl.String).is_in(list(exclude_tables)))
        linked = pl.col("hadm_id").is_null() | (pl.col("event_hadm") == pl.col("hadm_id"))
        chosen = candidates.filter(linked)
        if unlinked:
            bounds = (
                chosen.filter(pl.col("hadm_id").is_not_null())
                .group_by("window")
                .agg(pl.col("event_id").min().alias("first"), pl.col("event_id").max().alias("last"))
            )
            loose = (
                candidates.filter(pl.col("hadm_id").is_not_null() & pl.col("event_hadm").is_null())
                .join(bounds, on="window", how="inner")
                .filter(pl.col("event_id").is_between("first", "last"))
                .drop("first", "last")
            )
            chosen = pl.concat([chosen, loose])
        pairs = chosen.select("window", "event_id")
        if not explicit.is_empty():
            given = (
                explicit.select("window", "event_ids")
                .explode("event_ids")
                .drop_nulls()
                .rename({"event_ids": "event_id"})
            )
            missing = given.join(events.select("event_id"), on="event_id", how="anti")
            if not missing.is_empty():
                raise InputError(
                    "is not an event of this timeline",
                    where="windows.event_ids",
                    value=missing["event_id"][0],
                    fix="take event ids from this timeline's events frame",
                )
            pairs = pl.concat([pairs, given])
        return pairs.sort("window", "event_id")

    def _header(self, frame: pl.DataFrame, include_admission: bool, include_discharge: bool) -> pl.DataFrame:
        """Per window: the demographics text and the event ids of the admission and previous discharge."""
        events = self._event_cols
        out = frame.select("window", "subject_id", "hadm_id", "end", "lo", "hi")
        if include_admission:
            admissions = events.filter(pl.col("table") == "admissions").select(
                pl.col("event_id").alias("admission_event"), "hadm_id", pl.col("time").alias("admittime")
            )
            out = out.join(admissions, on="hadm_id", how="left", maintain_order="left").with_columns(
                pl.when(pl.col("admission_event") < pl.col("hi"))
                .then(pl.col("admission_event"))
                .alias("admission_event")
            )
            out = out.unique("window", keep="first", maintain_order=True)
        else:
            out = out.with_columns(
                pl.lit(None, dtype=pl.Int64).alias("admission_event"),
                pl.lit(None, dtype=pl.Datetime("us")).alias("admittime"),
            )
        if include_discharge and (events["table"] == "discharge").any():
            notes = events.filter(pl.col("table") == "discharge").select(
                "subject_id",
                pl.col("event_id").alias("discharge_event"),
                pl.col("hadm_id").alias("note_hadm"),
            )
            # clean: the latest note of another admission before the window; ehr-r1: the latest note
            # before the window's end, shown only when it is of another admission (the reference's rule)
            limit = "lo" if self.style == "clean" else "hi"
            candidates = out.select("window", "subject_id", "hadm_id", limit).join(
                notes, on="subject_id", how="inner"
            )
            candidates = candidates.filter(pl.col("discharge_event") < pl.col(limit))
            if self.style == "clean":
                candidates = candidates.filter(pl.col("note_hadm").ne_missing(pl.col("hadm_id")))
            latest = candidates.sort("discharge_event").group_by("window").last()
            if self.style == "ehr-r1":
                latest = latest.filter(pl.col("note_hadm").ne_missing(pl.col("hadm_id")))
            out = out.join(
                latest.select("window", "discharge_event"), on="window", how="left", maintain_order="left"
            )
        else:
            out = out.with_columns(pl.lit(None, dtype=pl.Int64).alias("discharge_event"))
        demographics = self._demographics(out)
        return out.with_columns(demographics.alias("demographics"))

    def _demographics(self, windows: pl.DataFrame) -> pl.Series:
        patients = windows.select("window", "subject_id", "end", "admittime").join(
            self.timeline.patients, on="subject_id", how="left", maintain_order="left"
        )
        if self.style == "ehr-r1":
            lookups = self.timeline.lookups
            age = _ehr_r1_cell(Field("anchor_age", "anchor_age", NUMBER), "patients", lookups)
            lines = [
                pl.lit("- Anchor_Age: "),
                age,
                pl.lit("\n- Gender: "),
                _ehr_r1_cell(Field("gender", "gender"), "", None),
            ]
            text = pl.concat_str([pl.lit(f"## {EHR_R1_DEMOGRAPHICS_NAME} [None]\n"), *lines])
        else:
            when = pl.coalesce("end", "admittime")
            age = (
                pl.col("anchor_age")
                + pl.when(when.is_not_null()).then(when.dt.year() - pl.col("anchor_year")).otherwise(0)
            ).cast(pl.String)
            gender = pl.col("gender").replace_strict({"F": "Female", "M": "Male"}, default=pl.col("gender"))
            parts = [pl.concat_str(pl.lit("- Age: "), age), pl.concat_str(pl.lit("- Gender: "), gender)]
            body = pl.concat_list(parts).list.drop_nulls().list.join("\n")
            text = pl.concat_str(pl.lit(f"## {EHR_R1_DEMOGRAPHICS_NAME}\n"), body)
        return patients.select(text).to_series()

    # ------------------------------------------------------------------ assembly and truncation
    def _fixed_costs(self, frame: pl.DataFrame, header: pl.DataFrame, max_tokens: int | None) -> pl.DataFrame:
        """Header texts and tokens per window, its budget, and ``fixed_tokens`` (what always stays)."""
        blocks = self._blocks
        sep = self._separator_tokens
        header = (
            header.with_columns(count_series(self.counter, header["demographics"]).alias("demographics_tokens"))
            .join(
                blocks.select(pl.col("event_id").alias("admission_event"), pl.col("text").alias("admission_text"),
                              pl.col("n_tokens").alias("admission_tokens")),
                on="admission_event", how="left", maintain_order="left",
            )
            .join(
                blocks.select(pl.col("event_id").alias("discharge_event"), pl.col("text").alias("discharge_text"),
                              pl.col("n_tokens").alias("discharge_tokens")),
                on="discharge_event", how="left", maintain_order="left",
            )
        )
        budget = pl.lit(max_tokens, dtype=pl.Int64)
        if "budget" in frame.columns:
            header = header.join(frame.select("window", "budget"), on="window", how="left", maintain_order="left")
            budget = pl.coalesce("budget", budget)
        # demographics and admission, with the separators the style always prints
        fixed_parts = 3 if self.style == "ehr-r1" else 1 + pl.col("admission_text").is_not_null().cast(pl.Int64)
        return header.with_columns(
            budget.alias("budget"),
            (pl.col("demographics_tokens") + pl.col("admission_tokens").fill_null(0)
             + (fixed_parts - 1) * sep).alias("fixed_tokens"),
        )

    def _candidates(self, pairs: pl.DataFrame, header: pl.DataFrame) -> pl.DataFrame:
        """The pairs that can be printed within each window's budget, all rendered; older ones are dropped.

        Rendering is the costly step, so only events that may fit are rendered: newest first, an
        event is a candidate while the events newer than it (rendered: their tokens; not yet
        rendered: their row count times their table's tokens per row) leave room in the budget.
        Rendering candidates replaces estimates by true counts; this repeats until no new event
        becomes a candidate. Every event kept is then a candidate, and no older one could fit.
        """
        sep = self._separator_tokens
        limits = header.select("window", (pl.col("budget") - pl.col("fixed_tokens")).alias("room"))
        if limits["room"].is_null().all():
            self._render(pairs["event_id"])
            return pairs
        events = self.timeline.events
        pairs = pairs.join(limits, on="window", how="left", maintain_order="left").with_columns(
            _gather(events, "n_rows"), _gather(events, "table")
        ).join(self._row_costs(), on="table", how="left", maintain_order="left")
        estimate = (pl.col("row_cost") * pl.col("n_rows")).ceil().cast(pl.Int64)
        while True:
            rendered = pl.lit(pl.Series(self._tokens)).gather(pl.col("event_id"))
            costed = pairs.with_columns(pl.when(rendered >= 0).then(rendered).alias("n_tokens"))
            cost = pl.coalesce("n_tokens", estimate) + sep
            costed = costed.with_columns(
                (cost.reverse().cum_sum().reverse().over("window") - cost).alias("newer"))
            candidate = pl.col("room").is_null() | (pl.col("newer") < pl.col("room"))
            unrendered = costed.filter(candidate & pl.col("n_tokens").is_null())
            if unrendered.is_empty():
                return costed.filter(candidate).select("window", "event_id")
            self._render(unrendered["event_id"])

    def _row_costs(self) -> pl.DataFrame:
        """Per table, a slightly low guess of tokens per row, from a rendered sample of its events."""
        known = self.timeline.lookups.row_costs.get((self.style, self.counter.name))
        tables = self.timeline.events["table"].unique()
        if known is not None and tables.is_in(known["table"].implode()).all():
            return known
        events = self.timeline.events
        sample = events.filter(pl.int_range(pl.len()).over("table") < _COST_SAMPLE)
        blocks = self.render_events(sample["event_id"]).join(sample.select("event_id", "n_rows", "table"), on="event_id")
        costs = blocks.group_by("table").agg(
            (_COST_DISCOUNT * pl.col("n_tokens").sum() / pl.col("n_rows").sum()).alias("row_cost"))
        if known is not None:
            costs = pl.concat([known, costs.join(known, on="table", how="anti")])
        self.timeline.lookups.row_costs[(self.style, self.counter.name)] = costs
        return costs

    def _assemble(
        self, frame: pl.DataFrame, pairs: pl.DataFrame, header: pl.DataFrame, max_tokens: int | None
    ) -> pl.DataFrame:
        blocks = self._blocks
        sep = self._separator_tokens
        items = (
            pairs.join(blocks, on="event_id", how="left", maintain_order="left")
            .join(
                header.select("window", "budget", "fixed_tokens"),
                on="window",
                how="left",
                maintain_order="left",
            )
            .with_columns((pl.col("n_tokens") + sep).alias("cost"))
        )
        # newest first: an event is kept while everything newer than it fits as well
        items = items.with_columns(
            pl.col("cost").reverse().cum_sum().reverse().over("window").alias("newer_cost")
        ).with_columns(
            (
                pl.col("budget").is_null()
                | (pl.col("fixed_tokens") + pl.col("newer_cost") <= pl.col("budget"))
            ).alias("keep")
        )
        per_window = items.group_by("window", maintain_order=True).agg(
            pl.col("text").filter("keep").alias("texts"),
            pl.col("event_id").filter("keep").alias("event_ids"),
            pl.col("cost").filter("keep").sum().alias("events_tokens"),
        )
        out = header.join(per_window, on="window", how="left", maintain_order="left").with_columns(
            pl.col("texts").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.col("event_ids").fill_null(pl.lit([], dtype=pl.List(pl.Int64))),
            pl.col("events_tokens").fill_null(0),
        ).with_columns(
            (pl.col("n_window_events").fill_null(0) - pl.col("texts").list.len()).cast(pl.Int64).alias("n_events_dropped")
        )
        used = pl.col("fixed_tokens") + pl.col("events_tokens")
        discharge_fits = pl.col("discharge_text").is_not_null() & (
            pl.col("budget").is_null() | (used + pl.col("discharge_tokens") + sep <= pl.col("budget"))
        )
        out = out.with_columns(
            discharge_fits.alias("with_discharge"),
            (pl.col("discharge_text").is_not_null() & ~discharge_fits).alias("discharge_dropped"),
        )
        out = out.with_columns(
            self._join_parts().alias("text"),
            (used + pl.when("with_discharge").then(pl.col("discharge_tokens") + sep).otherwise(0)).alias(
                "n_tokens"
            ),
            pl.col("texts").list.len().cast(pl.Int64).alias("n_events"),
        ).with_columns(
            ((pl.col("n_events_dropped") > 0) | pl.col("discharge_dropped")).alias("truncated"),
            (pl.col("budget").is_not_null() & (pl.col("fixed_tokens") > pl.col("budget"))).alias(
                "over_budget"
            ),
        )
        if self.counter.exact and (max_tokens is not None or "budget" in frame.columns):
            out = self._enforce_exact(out)
        return out.sort("window")

    def _join_parts(self) -> pl.Expr:
        discharge = pl.when("with_discharge").then(pl.col("discharge_text"))
        if self.style == "ehr-r1":  # the reference joins all five parts, empty ones included
            head = [pl.col("demographics"), discharge.fill_null(""), pl.col("admission_text").fill_null("")]
            return pl.concat_list([*head, pl.col("texts")]).list.join(SEPARATOR)
        head = [pl.col("demographics"), discharge, pl.col("admission_text")]
        return pl.concat_list([*head, pl.col("texts")]).list.drop_nulls().list.join(SEPARATOR)

    def _enforce_exact(self, out: pl.DataFrame) -> pl.DataFrame:
        """With a real tokenizer: recount whole texts; drop the oldest kept events of any window still over."""
        counts = count_series(self.counter, out["text"])
        out = out.with_columns(counts.alias("n_tokens"))
        over = out.filter(
            pl.col("budget").is_not_null() & (pl.col("n_tokens") > pl.col("budget")) & ~pl.col("over_budget")
        )
        if over.is_empty():
            return out
        fixed = []
        for row in over.iter_rows(named=True):
            texts, ids = list(row["texts"]), list(row["event_ids"])
            while True:
                row["texts"], row["event_ids"] = texts, ids
                text = _join_row(row, self.style)
                n = self.counter.count([text])[0]
                if n <= row["budget"] or not texts:
                    break
                if row["with_discharge"]:
                    row["with_discharge"], row["discharge_dropped"] = False, True
                else:
                    texts, ids = texts[1:], ids[1:]
                    row["n_events_dropped"] += 1
            fixed.append(
                {
                    **row,
                    "text": text,
                    "n_tokens": n,
                    "n_events": len(texts),
                    "truncated": True,
                    "event_ids": ids,
                    "texts": texts,
                }
            )
        patch = pl.DataFrame(fixed, schema=out.schema)
        return out.update(patch, on="window")

    # ------------------------------------------------------------------ rendering
    def _render(self, event_ids: pl.Series) -> None:
        missing = (
            pl.DataFrame(event_ids.alias("event_id").cast(pl.Int64))
            .unique()
            .join(self._blocks.select("event_id"), on="event_id", how="anti")
        )
        if missing.is_empty():
            return
        events = self.timeline.events.join(missing, on="event_id", how="semi")
        rendered = []
        for table, group in events.group_by("table"):
            name = str(table[0])
            spec = EVENT_TABLES[name]
            rows = (self.timeline.rows[name].join(group.select("event_id"), on="event_id", how="semi")
                    .sort("event_id", "pos"))
            if self.style == "ehr-r1":
                texts = _render_ehr_r1(spec, group, rows, self.timeline)
            else:
                texts = _render_clean(spec, group, rows)
            rendered.append(texts)
        blocks = pl.concat(rendered).with_columns(
            count_series(self.counter, pl.concat(rendered)["text"]).alias("n_tokens")
        )
        self._blocks = pl.concat([self._blocks, blocks.select(self._blocks.columns)])
        self._tokens[blocks["event_id"].to_numpy()] = blocks["n_tokens"].to_numpy()


def _gather(events: pl.DataFrame, column: str) -> pl.Expr:
    """``events[column]`` of each row's ``event_id`` (event ids are the row numbers of the events frame)."""
    return pl.lit(events[column]).gather(pl.col("event_id")).alias(column)


def _join_row(row: dict, style: str) -> str:
    discharge = row["discharge_text"] if row["with_discharge"] else None
    if style == "ehr-r1":
        return SEPARATOR.join(
            [row["demographics"], discharge or "", row["admission_text"] or "", *row["texts"]]
        )
    return SEPARATOR.join(
        p for p in [row["demographics"], discharge, row["admission_text"], *row["texts"]] if p is not None
    )


def _search_keys(events: pl.DataFrame) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Sorted subjects with their first event index, and each event's time in seconds."""
    subjects = events["subject_id"].to_numpy()
    if len(subjects):
        starts = np.flatnonzero(np.r_[True, subjects[1:] != subjects[:-1]])
        first = (subjects[starts], np.r_[starts, len(subjects)])
    else:
        first = (np.array([], dtype=np.int64), np.array([0]))
    seconds = events["time"].dt.epoch("s").to_numpy()
    return first, seconds


def _search(
    seconds: np.ndarray,
    subject_first: tuple[np.ndarray, np.ndarray],
    subject: np.ndarray,
    bound: pl.Series,
    first: bool,
) -> np.ndarray:
    """Per window, the first event index (within its subject) whose time is >= ``bound``."""
    offsets = subject_first[1]
    out = np.zeros(len(subject), dtype=np.int64)
    known = subject >= 0
    lo = np.where(known, offsets[np.clip(subject, 0, None)], 0)
    hi = np.where(known, offsets[np.clip(subject, 0, None) + 1], 0)
    # ceil: a bound with a fraction of a second still excludes the event at the whole second before it
    values = bound.dt.epoch("us").cast(pl.Float64).to_numpy()
    for i in range(len(subject)):
        if not known[i]:
            continue
        if np.isnan(values[i]):
            out[i] = lo[i] if first else hi[i]
            continue
        target = -(-int(values[i]) // 1_000_000)
        out[i] = lo[i] + np.searchsorted(seconds[lo[i] : hi[i]], target, side="left")
    return out


# ---------------------------------------------------------------------- cells
def _float_text(column: pl.Expr) -> pl.Expr:
    """Python's str(float): polars agrees except below 1e-4, where Python switches to 1e-05 notation."""
    as_float = column.cast(pl.Float64)
    small = (as_float.abs() < 1e-4) & (as_float != 0)
    return (
        pl.when(small)
        .then(as_float.map_elements(repr, return_dtype=pl.String, skip_nulls=True))
        .otherwise(as_float.cast(pl.String))
    )


def _ehr_r1_cell(f: Field, table: str, lookups) -> pl.Expr:
    col = pl.col(f.column)
    if f.kind == NONE:
        return pl.lit("None")
    if f.kind == TEXT:
        text = col.cast(pl.String)
        return pl.when(text.is_null() | text.is_in(PANDAS_NA_STRINGS)).then(pl.lit("nan")).otherwise(text)
    if f.kind == NUMBER:
        if lookups.integral_column(table, f.column):
            return col.cast(pl.Int64).cast(pl.String).fill_null("nan")
        return _float_text(col).fill_null("nan")
    found = pl.col(f"{f.column}__found")
    if f.kind == LOOKUP:
        return pl.when(~found).then(pl.lit("None")).otherwise(col.cast(pl.String).fill_null("nan"))
    if f.kind == LIST:
        listed = col.map_elements(lambda names: str(list(names)), return_dtype=pl.String, skip_nulls=True)
        return pl.when(~found).then(pl.lit("None")).otherwise(listed)
    raise ValueError(f"no ehr-r1 printing for field kind {f.kind!r}")


# Values MIMIC writes for "nothing" (procedureevents.valueuom is the text "None"): blank in clean records.
_CLEAN_MISSING = ("None", "none", "nan", "NaN", "NULL", "null")


def _clean_cell(f: Field) -> pl.Expr:
    col = pl.col(f.column)
    if f.kind == NONE:
        return pl.lit(None, dtype=pl.String)
    if f.kind == NUMBER:  # six significant digits: ICU amounts carry float32 noise (10.416666977107525)
        as_float = col.cast(pl.Float64).round_sig_figs(6)
        integral = as_float == as_float.round(0)
        return (
            pl.when(integral & (as_float.abs() < 1e15))
            .then(as_float.cast(pl.Int64).cast(pl.String))
            .otherwise(as_float.cast(pl.String))
        )
    if f.kind == LIST:
        text = col.list.join(", ")
    elif f.kind == BLOCK:
        text = col.cast(pl.String).str.strip_chars()
        return pl.when(text.str.len_chars() > 0).then(text)
    else:
        text = col.cast(pl.String).str.replace_all(r"\s+", " ").str.strip_chars()
        text = pl.when(~text.is_in(_CLEAN_MISSING)).then(text)
    return pl.when(text.str.len_chars() > 0).then(text)


def _time_text(time: pl.Expr, spec: EventTable, style: str) -> pl.Expr:
    if style == "ehr-r1":
        return time.dt.strftime(_TIME_FORMAT) if spec.ehr_r1_dated else pl.lit("None")
    return time.dt.strftime("%Y-%m-%d" if spec.time_kind == TIME_DATE else _TIME_FORMAT)


def _titles(group: pl.DataFrame, spec: EventTable, style: str) -> pl.DataFrame:
    name = spec.ehr_r1_name if style == "ehr-r1" else spec.clean_name
    return group.select(
        "event_id",
        "n_rows",
        pl.concat_str(pl.lit(f"## {name} ["), _time_text(pl.col("time"), spec, style), pl.lit("]")).alias(
            "title"
        ),
    )


def _render_ehr_r1(
    spec: EventTable, group: pl.DataFrame, rows: pl.DataFrame, timeline: Timeline
) -> pl.DataFrame:
    if spec.ehr_r1_name is None:  # the reference has no printer for this table: its text is empty
        return group.select("event_id", pl.lit("").alias("text"))
    titles = _titles(group, spec, "ehr-r1")
    cells = [_ehr_r1_cell(f, spec.name, timeline.lookups) for f in spec.ehr_r1]
    labels = spec.ehr_r1_labels
    lines = [pl.concat_str(pl.lit(f"- {label}: "), cell) for label, cell in zip(labels, cells, strict=True)]
    kv = pl.concat_str(lines, separator="\n") if lines else pl.lit("")
    row_line = pl.concat_str(
        [pl.lit("| "), pl.concat_str(cells, separator=" | ") if cells else pl.lit(""), pl.lit(" |")]
    )
    head = f"| {' | '.join(labels)} |\n| {' | '.join(['------'] * len(labels))} |"
    per_row = rows.select("event_id", kv.alias("kv"), row_line.alias("line"))
    bodies = per_row.group_by("event_id", maintain_order=True).agg(
        pl.col("kv").first(), pl.col("line").str.join("\n")
    )
    return titles.join(bodies, on="event_id", how="left").select(
        "event_id",
        pl.concat_str(
            pl.col("title"),
            pl.lit("\n"),
            pl.when(pl.col("n_rows") == 1)
            .then(pl.col("kv"))
            .otherwise(pl.concat_str(pl.lit(head + "\n"), pl.col("line"))),
        ).alias("text"),
    )


def _render_clean(spec: EventTable, group: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    titles = _titles(group, spec, "clean")
    inline = [f for f in spec.clean if f.kind != BLOCK]
    blocks = [f for f in spec.clean if f.kind == BLOCK]
    cells = rows.select("event_id", *[_clean_cell(f).alias(f"c{i}") for i, f in enumerate(spec.clean)])
    cell = {f.label: pl.col(f"c{i}") for i, f in enumerate(spec.clean)}
    # one row as key lines, then its long texts: the body of a one-row event, and of each row of a note event
    lines = [pl.concat_str(pl.lit(f"- {f.label}: "), cell[f.label]) for f in inline] + [cell[f.label] for f in blocks]
    record = pl.concat_str(lines, separator="\n", ignore_nulls=True) if lines else pl.lit("")
    n_rows = cells.join(group.select("event_id", "n_rows"), on="event_id", how="left", maintain_order="left")["n_rows"]
    cells = cells.with_columns(n_rows)
    single = cells.filter((pl.col("n_rows") == 1) | pl.lit(bool(blocks) or not inline))
    bodies = [single.group_by("event_id", maintain_order=True).agg(
        record.filter(record.str.len_chars() > 0).str.join("\n\n").alias("body"))]
    if inline and not blocks:
        multi = cells.filter(pl.col("n_rows") > 1)
        present = multi.group_by("event_id").agg(
            [cell[f.label].is_not_null().any().alias(f"p{i}") for i, f in enumerate(inline)])
        multi = multi.join(present, on="event_id", how="left", maintain_order="left")
        shown = [pl.when(pl.col(f"p{i}")).then(cell[f.label].fill_null("")) for i, f in enumerate(inline)]
        head = [pl.when(pl.col(f"p{i}")).then(pl.lit(f.label)) for i, f in enumerate(inline)]
        table = multi.select(
            "event_id",
            pl.concat_str(head, separator=" | ", ignore_nulls=True).alias("head"),
            pl.sum_horizontal([pl.col(f"p{i}").cast(pl.Int32) for i in range(len(inline))]).alias("width"),
            pl.concat_str(pl.lit("| "), pl.concat_str(shown, separator=" | ", ignore_nulls=True), pl.lit(" |")).alias("line"),
        ).group_by("event_id", maintain_order=True).agg(
            pl.col("head").first(), pl.col("width").first(), pl.col("line").str.join("\n"))
        bodies.append(table.select(
            "event_id",
            pl.when(pl.col("width") == 0).then(pl.lit("")).otherwise(pl.concat_str(
                pl.lit("| "), pl.col("head"), pl.lit(" |\n| "),
                pl.lit("------").repeat_by(pl.col("width")).list.join(" | "), pl.lit(" |\n"), pl.col("line"),
            )).alias("body"),
        ))
    body = pl.concat(bodies)
    return titles.join(body, on="event_id", how="left").select(
        "event_id",
        pl.when(pl.col("body").fill_null("").str.len_chars() > 0)
        .then(pl.concat_str(pl.col("title"), pl.lit("\n"), pl.col("body")))
        .otherwise(pl.col("title")).alias("text"),
    )


def parse_time(text: str, where: str) -> dt.datetime:
    """A user-given time: ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM`` or ``YYYY-MM-DD HH:MM:SS`` (or with a T)."""
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError("is not a date or time", where=where, value=text,
                          fix="write it as YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS'") from None


def show_record(
    source,
    subject_id: int,
    *,
    hadm_id: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    style: str = "clean",
    max_tokens: int | None = None,
    tokenizer=None,
) -> Record:
    """One subject's record (an admission's with ``hadm_id``), events at ``since <= time < until``.

    Reads only that subject (its shard of a converted source). The event definition follows the
    style: ``clean`` events for the clean style, the reference's runs for ``ehr-r1``.
    """
    from graphkit.ehr.timeline import build_timeline

    check_style(style, "style")
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError("must be a positive number of tokens", where="max_tokens", value=max_tokens,
                          fix="pass a budget such as 8192, or no budget")
    if since is not None and until is not None and since >= until:
        raise ConfigError("is not before the end of the window", where="since", value=str(since),
                          fix=f"pass a time before {until}")
    patients = source.scan("patients", columns=["subject_id"])
    if patients.filter(pl.col("subject_id") == subject_id).collect().is_empty():
        sample = ", ".join(str(s) for s in patients.head(5).collect()["subject_id"].to_list())
        raise InputError("is not a patient of this dataset", where="subject_id", value=subject_id,
                         fix=f"use a subject_id of the patients table (e.g. {sample})")
    timeline = build_timeline(source, subjects=[subject_id], definition=style)
    return Serializer(timeline, style=style, tokenizer=tokenizer).serialize(
        subject_id, hadm_id, since, until, max_tokens=max_tokens)
