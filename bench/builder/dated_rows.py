"""Admissions for the date-only rows that carry no hadm_id (omr): the stay that covers their whole date.

The timeline leaves such rows without an admission, so a same-admission context around them holds
only the subject's other rows without one (a few OMR dates, outpatient labs) and never reaches a
task's min_events: on the MIMIC-IV demo every omr candidate was skipped. A row is linked only when
its admission began at or before the date's 00:00 and ended at or after its 24:00: the patient was
in hospital the whole day, so the row was charted during that stay. Rows of an admission or discharge day
(charted before or after the stay, the date cannot tell) and rows of days outside every stay stay
without an admission; so does a day two overlapping stays both cover. The rows keep their time
(00:00 of the date): only their admission is filled in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl

from graphkit.ehr.events import EVENT_TABLES, TIME_DATE
from graphkit.ehr.source import MimicSource
from graphkit.ehr.timeline import Timeline

ONE_DAY = dt.timedelta(days=1)


def unlinked_date_tables(source: MimicSource) -> list[str]:
    """Timeline tables of ``source`` whose rows have only a date and no hadm_id column."""
    return [
        name
        for name, spec in EVENT_TABLES.items()
        if spec.time_kind == TIME_DATE and source.has(name) and "hadm_id" not in source.spec(name).columns
    ]


def link_whole_day_stays(timeline: Timeline, tables: list[str]) -> Timeline:
    """``timeline`` with the events of ``tables`` tied to the admission that covers their whole date."""
    events = timeline.events
    dated = events.filter(pl.col("table").cast(pl.String).is_in(tables) & pl.col("hadm_id").is_null())
    if dated.is_empty():
        return timeline
    stays = timeline.admissions.select(
        "subject_id", pl.col("hadm_id").alias("_stay"), "admittime", "dischtime"
    )
    covering = (
        dated.select("event_id", "subject_id", "time")
        .join(stays, on="subject_id", how="inner")
        .filter((pl.col("admittime") <= pl.col("time")) & (pl.col("time") + ONE_DAY <= pl.col("dischtime")))
        .group_by("event_id")
        .agg(pl.col("_stay").first(), pl.len().alias("_stays"))
        .filter(pl.col("_stays") == 1)
        .select("event_id", "_stay")
    )
    if covering.is_empty():
        return timeline
    linked = (
        events.join(covering, on="event_id", how="left", maintain_order="left")
        .with_columns(pl.coalesce("hadm_id", "_stay").alias("hadm_id"))
        .drop("_stay")
    )
    return dataclasses.replace(timeline, events=linked)
