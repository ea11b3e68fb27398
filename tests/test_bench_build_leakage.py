"""Leakage guarantees of `ehr-r1 bench build`, each checked on the MIMIC-IV demo AND a synthetic cohort.

The checks read the built rows and the source tables directly (plain polars, the csv module); they
never call the builder's own window or label code, so a bug there cannot hide itself.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
from collections import defaultdict

import polars as pl
import pytest

from tests.bench_build_data import DEMO_DIR, demo_build, read_build, synth_build, synth_cohort

HEADER_BLOCKS = ("Patient Demographics", "Discharge Summary", "Admission")


@pytest.fixture(scope="module", params=["demo", "synth"])
def built(request):
    if request.param == "demo":
        return {"name": "demo", "source": DEMO_DIR, "rows": read_build(demo_build())}
    return {"name": "synth", "source": synth_cohort(), "rows": read_build(synth_build())}


def _all_rows(rows: dict[str, pl.DataFrame]) -> pl.DataFrame:
    keep = [
        "id",
        "task",
        "family",
        "split",
        "subject_id",
        "hadm_id",
        "stay_id",
        "anchor_time",
        "context_start",
        "context_end",
        "input",
        "output",
    ]
    return pl.concat([frame.select(keep) for frame in rows.values()], how="vertical")


def _table(source, name: str, columns: list[str]) -> pl.DataFrame:
    for module in ("hosp", "icu", "ed", "note"):
        for suffix in (".parquet", ".csv.gz", ".csv"):
            path = source / module / f"{name}{suffix}"
            if path.exists():
                frame = (
                    pl.read_parquet(path)
                    if suffix == ".parquet"
                    else pl.read_csv(path, infer_schema_length=0)
                )
                frame = frame.rename({c: c.lower() for c in frame.columns}).select(columns)
                casts = []
                for column in columns:
                    if column.endswith("_id"):
                        casts.append(pl.col(column).cast(pl.Int64))
                    elif column in ("admittime", "dischtime", "deathtime", "intime", "outtime", "dod"):
                        if frame.schema[column].is_temporal():
                            casts.append(pl.col(column).cast(pl.Datetime("us")))
                            continue
                        text = pl.col(column).cast(pl.String)
                        casts.append(
                            pl.coalesce(
                                text.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False),
                                text.str.to_datetime("%Y-%m-%d", strict=False),
                            )
                            .cast(pl.Datetime("us"))
                            .alias(column)
                        )
                    else:
                        casts.append(pl.col(column))
                return frame.with_columns(casts)
    raise FileNotFoundError(name)


def test_builds_cover_the_families_they_can(built):
    rows = built["rows"]
    assert sum(f.height for f in rows.values()) > 500
    tasks = set(rows)
    assert {
        "labevents",
        "next_event",
        "Inpatient_Mortality",
        "Readmission_30day",
        "ICU_Mortality_7day",
    } <= tasks
    if built["name"] == "synth":  # the modules only the synthetic cohort has
        assert {"chartevents", "radiology", "ED_Hospitalization", "pyxis"} <= tasks
        assert rows["ED_Hospitalization"].height > 0 and rows["chartevents"].height > 0


def test_no_subject_in_two_splits_and_the_split_is_the_documented_hash(built):
    rows = _all_rows(built["rows"])
    per_subject = rows.group_by("subject_id").agg(pl.col("split").unique())
    assert per_subject["split"].list.len().max() == 1
    # the rule of bench/splits.py, written out again here: SHA-256 of "ehr-r1/split/<id>", 0.8/0.1/0.1
    for subject, splits in per_subject.iter_rows():
        point = int.from_bytes(hashlib.sha256(f"ehr-r1/split/{subject}".encode()).digest()[:8], "big") / 2**64
        assert splits[0] == ("train" if point < 0.8 else "val" if point < 0.9 else "test")


def test_ehr_bench_and_ehr_ins_share_no_subject(built):
    rows = _all_rows(built["rows"])
    bench = set(rows.filter(pl.col("split") == "test")["subject_id"].to_list())
    ins = set(rows.filter(pl.col("split") == "train")["subject_id"].to_list())
    val = set(rows.filter(pl.col("split") == "val")["subject_id"].to_list())
    assert bench and ins
    assert not bench & ins and not bench & val and not ins & val


def test_no_duplicate_samples(built):
    rows = _all_rows(built["rows"])
    assert rows["id"].n_unique() == rows.height
    anchors = rows.select(
        "task", "subject_id", "hadm_id", "stay_id", "anchor_time", pl.col("id").str.split("/").list.get(4)
    )
    assert anchors.unique().height == rows.height
    # and no sample of one task is a copy of another of the same task (same input, same anchor)
    assert rows.select("task", "input", "anchor_time").unique().height == rows.height


def test_every_event_in_an_input_lies_in_its_window_and_before_the_target(built):
    rows = _all_rows(built["rows"])
    decision = rows.filter(pl.col("family") == "decision")
    # a decision context ends exactly at its target's time (exclusive), so the target is never in it
    assert (decision["context_end"] == decision["anchor_time"]).all()
    blocks = (
        rows.select(
            "id",
            "context_start",
            "context_end",
            pl.col("input").str.extract_all(r"(?m)^## [^\n]*\[[0-9: -]+\]$").alias("block"),
        )
        .explode("block")
        .drop_nulls("block")
        .with_columns(
            pl.col("block").str.extract(r"^## (.*) \[").alias("name"),
            pl.col("block").str.extract(r"\[([0-9: -]+)\]$").alias("stamp"),
        )
        .with_columns(
            pl.when(pl.col("stamp").str.len_chars() == 10)
            .then(pl.col("stamp") + " 00:00:00")
            .otherwise(pl.col("stamp"))
            .str.to_datetime("%Y-%m-%d %H:%M:%S")
            .alias("time")
        )
    )
    assert blocks.height > rows.height  # every record has dated blocks
    late = blocks.filter(pl.col("time") >= pl.col("context_end"))
    assert late.is_empty(), late.head(5)
    events = blocks.filter(~pl.col("name").is_in(HEADER_BLOCKS))
    early = events.filter(pl.col("time") < pl.col("context_start"))
    assert early.is_empty(), early.head(5)


def test_risk_labels_use_only_data_after_the_context_end(built):
    source = built["source"]
    rows = built["rows"]
    admissions = _table(
        source, "admissions", ["subject_id", "hadm_id", "admittime", "dischtime", "deathtime"]
    )
    icu = _table(source, "icustays", ["subject_id", "hadm_id", "stay_id", "intime", "outtime"])
    patients = _table(source, "patients", ["subject_id", "dod"])
    deaths = (
        admissions.group_by("subject_id")
        .agg(pl.col("deathtime").min())
        .join(patients, on="subject_id", how="full", coalesce=True)
        .select("subject_id", pl.coalesce("deathtime", "dod").alias("death"))
    )
    checked = 0

    def assert_after(frame: pl.DataFrame, column: str, what: str) -> None:
        nonlocal checked
        bad = frame.filter(pl.col(column).is_not_null() & (pl.col(column) < pl.col("context_end")))
        assert bad.is_empty(), (
            f"{what} before the context end: {bad.select('id', column, 'context_end').head(3)}"
        )
        checked += frame.filter(pl.col(column).is_not_null()).height

    for key in ("Inpatient_Mortality", "LengthOfStay_3day", "LengthOfStay_7day"):
        frame = rows[key].join(admissions.drop("subject_id"), on="hadm_id", how="left")
        assert_after(frame, "dischtime", f"{key}: the discharge")
        assert_after(frame, "deathtime", f"{key}: the death")
    for key in ("ICU_Stay_7day", "ICU_Stay_14day"):
        frame = rows[key].join(icu.select("stay_id", "outtime"), on="stay_id", how="left")
        assert_after(frame, "outtime", f"{key}: the ICU discharge")
    # "no ICU readmission" is known at the hospital discharge
    no_return = (
        rows["ICU_Readmission"]
        .filter(pl.col("label") == "no")
        .join(admissions.select("hadm_id", "dischtime"), on="hadm_id", how="left")
    )
    assert_after(no_return, "dischtime", "ICU_Readmission: the hospital discharge")
    for key in ("ICU_Mortality_1day", "ICU_Mortality_7day", "ICU_Mortality_14day"):
        assert_after(rows[key].join(deaths, on="subject_id", how="left"), "death", f"{key}: the death")
    later_stays = (
        rows["ICU_Readmission"]
        .join(
            icu.select("hadm_id", pl.col("stay_id").alias("other"), pl.col("intime").alias("other_in")),
            on="hadm_id",
        )
        .filter((pl.col("other") != pl.col("stay_id")) & (pl.col("other_in") > pl.col("anchor_time")))
    )
    assert_after(later_stays, "other_in", "ICU_Readmission: the next ICU stay")
    for key in ("Readmission_30day", "Readmission_60day"):
        own = rows[key].join(
            admissions.select("hadm_id", pl.col("admittime").alias("own_admit")), on="hadm_id", how="left"
        )
        nxt = own.join(
            admissions.select("subject_id", pl.col("admittime").alias("next_admit")), on="subject_id"
        ).filter(pl.col("next_admit") > pl.col("own_admit"))
        assert_after(nxt, "next_admit", f"{key}: a later admission")
    if "ED_Hospitalization" in rows:
        ed = _table(source, "edstays", ["subject_id", "hadm_id", "stay_id", "intime", "outtime"])
        for key in (
            "ED_Hospitalization",
            "ED_Inpatient_Mortality",
            "ED_ICU_Transfer_12hour",
            "ED_Critical_Outcomes",
        ):
            linked = (
                rows[key]
                .drop("hadm_id")
                .join(ed.select("stay_id", "hadm_id"), on="stay_id", how="left")
                .join(admissions.select("hadm_id", "admittime"), on="hadm_id", how="left")
            )
            assert_after(linked, "admittime", f"{key}: the admission the ED stay led to")
            # an ED sample's window spans admissions: its row names none (it would give the label away)
            assert rows[key]["hadm_id"].null_count() == rows[key].height
        nxt = (
            rows["ED_Reattendance_3day"]
            .join(
                ed.select("subject_id", pl.col("stay_id").alias("other"), pl.col("intime").alias("other_in")),
                on="subject_id",
            )
            .filter((pl.col("other") != pl.col("stay_id")) & (pl.col("other_in") > pl.col("anchor_time")))
        )
        assert_after(nxt, "other_in", "ED_Reattendance_3day: the next ED visit")
    assert checked > 50


# ---------------------------------------------------------------------------- independent labels (demo)


def _parse(text: str) -> dt.datetime | None:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S") if text else None


@pytest.fixture(scope="module")
def demo_label_build(tmp_path_factory):
    from bench.builder import BuildConfig, build

    out = tmp_path_factory.mktemp("labels")
    build(DEMO_DIR, out, BuildConfig(tasks=("Inpatient_Mortality", "Readmission_30day")))
    return read_build(out)


def _admissions_csv() -> list[dict]:
    with gzip.open(DEMO_DIR / "hosp" / "admissions.csv.gz", "rt", newline="") as handle:
        return list(csv.DictReader(handle))


def test_in_hospital_mortality_agrees_with_a_plain_computation(demo_label_build):
    died = {int(r["hadm_id"]): r["hospital_expire_flag"] == "1" for r in _admissions_csv()}
    rows = demo_label_build["Inpatient_Mortality"]
    assert rows.height > 100 and rows["hadm_id"].n_unique() == rows.height
    mismatches = [
        (h, label) for h, label in rows.select("hadm_id", "label").iter_rows() if (label == "yes") != died[h]
    ]
    assert not mismatches
    assert rows.filter(pl.col("label") == "yes").height >= 5  # the demo has in-hospital deaths to find


def test_30_day_readmission_agrees_with_a_plain_computation(demo_label_build):
    by_subject: dict[int, list[tuple[dt.datetime, dt.datetime, int]]] = defaultdict(list)
    for r in _admissions_csv():
        by_subject[int(r["subject_id"])].append(
            (_parse(r["admittime"]), _parse(r["dischtime"]), int(r["hadm_id"]))
        )
    expected = {}
    for stays in by_subject.values():
        stays.sort()
        for i, (_, discharge, hadm) in enumerate(stays):
            later = [admit for admit, _, _ in stays[i + 1 :]]
            # no note module in the demo: anchored at dischtime; readmitted = next admission within 30 days
            expected[hadm] = bool(later) and (later[0] - discharge) < dt.timedelta(days=30)
    rows = demo_label_build["Readmission_30day"]
    assert rows.height > 100 and rows["hadm_id"].n_unique() == rows.height
    assert (
        rows["anchor_time"]
        == rows["hadm_id"].replace_strict(
            {h: d for s in by_subject.values() for _, d, h in s}, return_dtype=pl.Datetime("us")
        )
    ).all()
    mismatches = [
        (h, label)
        for h, label in rows.select("hadm_id", "label").iter_rows()
        if (label == "yes") != expected[h]
    ]
    assert not mismatches
    assert rows.filter(pl.col("label") == "yes").height >= 10
