"""OMR rows (a chartdate, no hadm_id) in `bench build`: which admission they belong to, and the omr task.

Before OMR rows were tied to an admission, every omr candidate of the MIMIC-IV demo was skipped for
lack of same-admission context. The demo checks recompute the linking rule from the raw csv files
(plain polars), never through the builder's code.
"""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from bench.builder.dated_rows import link_whole_day_stays, unlinked_date_tables
from bench.builder.samples import TOO_FEW_EVENTS, TOO_FEW_EVENTS_NO_ADMISSION, TOO_MANY_EVENTS
from graphkit.ehr.timeline import Timeline
from tests.bench_build_data import DEMO_DIR

DAY = dt.timedelta(days=1)


def _at(day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(2150, 1, 1, hour, minute) + (day - 1) * DAY


def _timeline(events: list[tuple[int, int | None, str, dt.datetime]], admissions: list[tuple]) -> Timeline:
    frame = pl.DataFrame(
        [(i, *e) for i, e in enumerate(sorted(events, key=lambda e: (e[0], e[3])))],
        schema={
            "event_id": pl.Int64,
            "subject_id": pl.Int64,
            "hadm_id": pl.Int64,
            "table": pl.String,
            "time": pl.Datetime("us"),
        },
        orient="row",
    )
    stays = pl.DataFrame(
        admissions,
        schema={
            "subject_id": pl.Int64,
            "hadm_id": pl.Int64,
            "admittime": pl.Datetime("us"),
            "dischtime": pl.Datetime("us"),
        },
        orient="row",
    )
    return Timeline(
        definition="clean",
        events=frame,
        rows={},
        patients=pl.DataFrame(),
        admissions=stays,
        undated={},
        lookups=None,  # type: ignore[arg-type]  # linking reads events and admissions only
    )


def test_an_omr_row_joins_only_the_one_admission_covering_its_whole_date():
    admissions = [
        (1, 100, _at(1, 10), _at(4, 9)),  # in hospital all of days 2 and 3
        (2, 200, _at(1), _at(3)),  # admitted at 00:00 of day 1, discharged at 24:00 of day 2
        (3, 300, _at(1, 8), _at(10, 8)),  # overlaps 301: days 4 and 5 lie wholly in both
        (3, 301, _at(3, 12), _at(6, 12)),
    ]
    expected = {  # (subject, day) -> admission of the OMR row dated that day
        (1, 1): None,  # admission day: the date cannot tell whether before or after admittime
        (1, 2): 100,
        (1, 3): 100,
        (1, 4): None,  # discharge day
        (1, 9): None,  # outside every stay
        (2, 1): 200,
        (2, 2): 200,
        (2, 3): None,  # the day after a discharge at exactly 00:00
        (3, 2): 300,
        (3, 4): None,  # two stays cover it: no guess between them
        (3, 8): 300,
        (4, 2): None,  # a subject without admissions
    }
    events = [(s, None, "omr", _at(d)) for s, d in expected]
    events += [
        (1, None, "labevents", _at(2, 9)),  # an outpatient lab keeps its missing admission
        (1, 100, "labevents", _at(2, 10)),
    ]
    timeline = _timeline(events, admissions)
    linked = link_whole_day_stays(timeline, ["omr"])
    got = {
        (s, (t - _at(1)).days + 1): h
        for s, h, t in linked.events.filter(pl.col("table") == "omr")
        .select("subject_id", "hadm_id", "time")
        .rows()
    }
    assert got == expected
    others = linked.events.filter(pl.col("table") != "omr")
    assert others.equals(timeline.events.filter(pl.col("table") != "omr"))
    # only the admission is filled in: order, ids and times stay those of the timeline
    assert linked.events.drop("hadm_id").equals(timeline.events.drop("hadm_id"))
    assert timeline.events["hadm_id"].null_count() == len(expected) + 1  # the input is left alone


def test_only_date_only_tables_without_an_admission_column_are_linked():
    from graphkit.ehr.source import open_source

    # procedures_icd and hcpcsevents are date-only too, but carry their own hadm_id
    assert unlinked_date_tables(open_source(DEMO_DIR)) == ["omr"]


def _csv(name: str) -> pl.DataFrame:
    return pl.read_csv(DEMO_DIR / "hosp" / f"{name}.csv.gz", infer_schema_length=0)


@pytest.fixture(scope="module")
def omr_build(tmp_path_factory):
    from bench.builder import BuildConfig, build

    out = tmp_path_factory.mktemp("omr") / "samples"
    build(DEMO_DIR, out, BuildConfig(tasks=["omr"]))
    rows = pl.concat([pl.read_parquet(p) for p in sorted((out / "data" / "omr").glob("*.parquet"))])
    card = json.loads((out / "card.json").read_text())["tasks"]["omr"]
    # the rule written out again: the one admission whose stay holds the whole chartdate
    days = (
        _csv("omr")
        .select(
            pl.col("subject_id").cast(pl.Int64), pl.col("chartdate").str.to_datetime("%Y-%m-%d").alias("day")
        )
        .unique()
    )
    stays = _csv("admissions").select(
        pl.col("subject_id").cast(pl.Int64),
        pl.col("hadm_id").cast(pl.Int64),
        pl.col("admittime").str.to_datetime("%Y-%m-%d %H:%M:%S"),
        pl.col("dischtime").str.to_datetime("%Y-%m-%d %H:%M:%S"),
    )
    covering = (
        days.join(stays, on="subject_id")
        .filter((pl.col("admittime") <= pl.col("day")) & (pl.col("day") + DAY <= pl.col("dischtime")))
        .group_by("subject_id", "day")
        .agg(pl.col("hadm_id").first(), pl.len().alias("stays"))
        .filter(pl.col("stays") == 1)
        .drop("stays")
    )
    return {"rows": rows, "card": card, "days": days, "covering": covering}


def test_the_demo_omr_task_has_samples_each_in_the_stay_covering_its_date(omr_build):
    rows, covering = omr_build["rows"], omr_build["covering"]
    assert rows.height > 0
    assert (rows["anchor_time"] == rows["anchor_time"].dt.truncate("1d")).all()
    assert (rows["context_start"] == rows["anchor_time"] - DAY).all()
    assert rows["n_context_events"].is_between(11, 99).all()
    placed = rows.select("subject_id", pl.col("anchor_time").alias("day"), "hadm_id").join(
        covering, on=["subject_id", "day"], how="left", suffix="_expected"
    )
    assert placed["hadm_id"].null_count() == 0
    assert (placed["hadm_id"] == placed["hadm_id_expected"]).all(), placed


def test_the_card_tells_omr_rows_outside_a_stay_from_short_contexts(omr_build):
    card, days, covering = omr_build["card"], omr_build["days"], omr_build["covering"]
    skipped = card["skipped"]
    assert card["anchors"] == days.height
    # on the demo no OMR date outside a stay has 11 other events without an admission the day before
    assert skipped[TOO_FEW_EVENTS_NO_ADMISSION] == days.height - covering.height
    kept = sum(card["counts"].values())
    assert kept + skipped.get(TOO_FEW_EVENTS, 0) + skipped.get(TOO_MANY_EVENTS, 0) == covering.height
