"""Patient timelines on the genuine MIMIC-IV demo: ordering, both event definitions, names, undated rows."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from graphkit.ehr.events import TABLE_RANK
from graphkit.ehr.source import open_source
from graphkit.ehr.timeline import EVENT_COLUMNS, build_timeline
from graphkit.errors import ConfigError
from tests.records_data import (
    ED_STAY,
    FIRST_ADMISSION,
    SECOND_ADMISSION,
    SUBJECT,
    demo_lookups,
    demo_timeline,
    with_ed_and_notes,
)


@pytest.fixture(scope="module")
def clean():
    return demo_timeline("clean")


@pytest.fixture(scope="module")
def runs():
    return demo_timeline("ehr-r1")


def test_events_frame_columns_ids_and_order(clean, runs):
    for timeline in (clean, runs):
        events = timeline.events
        assert tuple(events.columns) == EVENT_COLUMNS
        assert events["event_id"].to_list() == list(range(events.height))
        ranked = events.with_columns(pl.col("table").cast(pl.String).replace_strict(TABLE_RANK).alias("rank"))
        ordered = ranked.sort("subject_id", "time", "rank", "event_id", maintain_order=True)
        assert ordered["event_id"].to_list() == events["event_id"].to_list()
        assert events["time"].null_count() == 0


def test_clean_event_is_the_rows_of_one_table_sharing_admission_and_time(clean, demo_dir):
    source = open_source(demo_dir)
    labs = source.scan("labevents", columns=["subject_id", "hadm_id", "charttime"]).drop_nulls("charttime").collect()
    expected = labs.group_by("subject_id", "hadm_id", "charttime").len().sort("subject_id", "hadm_id", "charttime")
    got = (clean.events.filter(pl.col("table") == "labevents")
           .select("subject_id", "hadm_id", pl.col("time").alias("charttime"), pl.col("n_rows").alias("len"))
           .sort("subject_id", "hadm_id", "charttime"))
    assert got.equals(expected)


def test_ehr_r1_event_is_a_run_of_one_table(runs, clean):
    events = runs.events
    same_table_in_a_row = events.filter(
        (pl.col("subject_id") == pl.col("subject_id").shift(1)) & (pl.col("table") == pl.col("table").shift(1)))
    assert same_table_in_a_row.is_empty()
    assert events["n_rows"].sum() == clean.events["n_rows"].sum()
    poe = events.filter((pl.col("subject_id") == SUBJECT) & (pl.col("table") == "poe"))
    block = poe.filter(pl.col("time") == dt.datetime(2157, 11, 19, 19, 2, 18))
    assert block["n_rows"].to_list() == [9]
    # two orders 35 s apart with nothing between them: one run, two clean events
    merged = poe.filter(pl.col("time") == dt.datetime(2157, 11, 19, 1, 47, 55))
    assert merged["n_rows"].to_list() == [2]
    apart = clean.events.filter((pl.col("subject_id") == SUBJECT) & (pl.col("table") == "poe")
                                & pl.col("time").is_between(dt.datetime(2157, 11, 19, 1, 47), dt.datetime(2157, 11, 19, 1, 49)))
    assert apart["n_rows"].to_list() == [1, 1]


def test_rows_without_a_time_are_counted_and_left_out(clean, runs, demo_dir):
    micro = open_source(demo_dir).scan("microbiologyevents", columns=["charttime"]).collect()
    undated = micro["charttime"].null_count()
    assert undated > 0
    for timeline in (clean, runs):
        assert timeline.undated == {"microbiologyevents": undated}
        placed = timeline.events.filter(pl.col("table") == "microbiologyevents")["n_rows"].sum()
        assert placed == micro.height - undated
        assert timeline.rows["microbiologyevents"]["charttime"].null_count() == 0


def test_diagnoses_are_placed_at_discharge_with_their_titles(clean, demo_dir):
    source = open_source(demo_dir)
    diagnoses = clean.events.filter(pl.col("table") == "diagnoses_icd")
    discharge = clean.admissions.select("hadm_id", pl.col("dischtime").alias("time"))
    joined = diagnoses.join(discharge, on="hadm_id", how="left", suffix="_discharge")
    assert (joined["time"] == joined["time_discharge"]).all()
    assert set(diagnoses["time_kind"].unique()) == {"derived"}
    titles = source.scan("d_icd_diagnoses").collect()
    one = source.scan("diagnoses_icd").filter(pl.col("hadm_id") == FIRST_ADMISSION).collect().sort("seq_num")
    expected = one.join(titles, on=["icd_version", "icd_code"], how="left", maintain_order="left")["long_title"]
    event = diagnoses.filter(pl.col("hadm_id") == FIRST_ADMISSION).row(0, named=True)
    assert sorted(event["items"]) == sorted(expected.to_list())
    assert sorted(event["codes"]) == sorted(f"{v}:{c}" for v, c in one.select("icd_version", "icd_code").iter_rows())


def test_lab_items_are_dictionary_labels_and_codes_are_itemids(clean, demo_dir):
    event = clean.events.filter((pl.col("subject_id") == SUBJECT) & (pl.col("table") == "labevents")
                                & (pl.col("time") == dt.datetime(2157, 11, 20, 8, 14))).row(0, named=True)
    assert event["items"] == ["Creatinine", "Estimated GFR (MDRD equation)"]
    assert event["codes"] == ["50912", "50920"]
    assert event["hadm_id"] == FIRST_ADMISSION and event["module"] == "hosp" and event["time_kind"] == "exact"
    transfers = clean.events.filter(pl.col("table") == "transfers")
    discharges = transfers.filter(pl.col("items").list.contains("discharge"))
    assert not discharges.is_empty()  # a discharge transfer has no care unit: its event type is the item


def test_a_subject_timeline_is_the_slice_of_the_whole(clean, demo_dir):
    lookups = demo_lookups()
    alone = build_timeline(lookups.source, subjects=[SUBJECT], lookups=lookups)
    whole = clean.subject_events(SUBJECT)
    assert alone.events.drop("event_id").equals(whole.drop("event_id"))
    assert alone.patients["subject_id"].to_list() == [SUBJECT]


def test_tables_option_and_bad_arguments(demo_dir):
    lookups = demo_lookups()
    only = build_timeline(lookups.source, subjects=[SUBJECT], tables=["labevents", "admissions"], lookups=lookups)
    assert set(only.events["table"].cast(pl.String).unique()) == {"labevents", "admissions"}
    with pytest.raises(ConfigError, match="definition"):
        build_timeline(lookups.source, definition="mimic", lookups=lookups)
    with pytest.raises(ConfigError, match="is not a timeline table"):
        build_timeline(lookups.source, tables=["d_labitems"], lookups=lookups)


def test_ed_rows_are_linked_to_the_admission_at_the_reference_times(tmp_path, demo_dir):
    source = open_source(with_ed_and_notes(demo_dir, tmp_path / "mimic"))
    timeline = build_timeline(source, subjects=[SUBJECT])
    ed = timeline.events.filter(pl.col("module") == "ed")
    assert set(ed["hadm_id"].to_list()) == {FIRST_ADMISSION}
    assert set(ed["stay_id"].to_list()) == {ED_STAY}
    times = dict(zip(ed["table"].cast(pl.String), ed["time"], strict=False))
    assert times["edstays"] == dt.datetime(2157, 11, 18, 17, 30)
    assert times["triage"] == dt.datetime(2157, 11, 18, 17, 30, 1)  # one second after arrival
    assert times["diagnosis"] == dt.datetime(2157, 11, 18, 23, 10)  # at ED departure
    medrecon = ed.filter(pl.col("table") == "medrecon").row(0, named=True)
    assert medrecon["n_rows"] == 2 and medrecon["items"] == ["levetiracetam", "aspirin"]
    assert medrecon["codes"] == ["00378562093", "00904198261"]  # NDCs keep their leading zeros
    notes = timeline.events.filter(pl.col("module") == "note")
    radiology = notes.filter(pl.col("table") == "radiology").sort("time")
    assert radiology["items"].to_list() == [["CT HEAD W/O CONTRAST"], []]
    assert radiology["hadm_id"].to_list() == [SECOND_ADMISSION, None]
    assert notes.filter(pl.col("table") == "discharge")["hadm_id"].to_list() == [FIRST_ADMISSION, SECOND_ADMISSION]
