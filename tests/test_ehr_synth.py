"""`ehr-r1 ehr synth`: schema conformity, determinism, referential integrity, label prevalence."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from graphkit.ehr.schema import load_schema
from graphkit.ehr.source import open_source
from graphkit.ehr.synth import MARKER, synthesize
from graphkit.errors import ConfigError

COHORT_PATIENTS = 120
COHORT_SEED = 3


@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "cohort"
    synthesize(out, patients=COHORT_PATIENTS, seed=COHORT_SEED)
    return out


@pytest.fixture(scope="session")
def tables(cohort):
    source = open_source(cohort)
    return {name: source.scan(name).collect() for name in source.tables}


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# ------------------------------------------------------------------------------- conformity


def test_cohort_passes_ehr_check_with_every_module_and_task(cohort):
    from graphkit.ehr.check import check

    report = check(cohort)
    assert report.modules == frozenset({"hosp", "icu", "ed", "note"})
    assert {t.table for t in report.tables} == set(load_schema().tables)
    assert report.warnings == []
    assert report.disabled() == []


def test_every_table_a_task_reads_has_rows(tables):
    for name, frame in tables.items():
        if name == "hcpcsevents":  # about one admission in twenty has HCPCS rows
            continue
        assert frame.height > 0, name


def test_content_comes_from_the_demo_dictionaries(tables):
    labs = set(tables["d_labitems"]["itemid"])
    items = set(tables["d_items"]["itemid"])
    codes = set(
        zip(tables["d_icd_diagnoses"]["icd_code"], tables["d_icd_diagnoses"]["icd_version"], strict=True)
    )
    assert set(tables["labevents"]["itemid"]) <= labs
    for name in (
        "chartevents",
        "inputevents",
        "outputevents",
        "datetimeevents",
        "procedureevents",
        "ingredientevents",
    ):
        assert set(tables[name]["itemid"]) <= items, name
    diagnoses = tables["diagnoses_icd"]
    assert set(zip(diagnoses["icd_code"], diagnoses["icd_version"], strict=True)) <= codes
    ed = tables["diagnosis"]
    assert set(zip(ed["icd_code"], ed["icd_version"], strict=True)) <= codes
    # chart items carry values: numbers for numeric items, words for text items
    chart = tables["chartevents"]
    assert chart["value"].null_count() == 0
    assert 60 < chart.filter(pl.col("itemid") == 220045)["valuenum"].median() < 110  # heart rate


def test_notes_are_marked_synthetic_and_built_from_the_record(tables):
    discharge, radiology = tables["discharge"], tables["radiology"]
    for text in (discharge["text"], radiology["text"]):
        assert text.str.starts_with("[SYNTHETIC NOTE").all()
        assert not text.str.contains(r"\bnan\b|\bnull\b").any()
    first = (
        tables["diagnoses_icd"]
        .filter(pl.col("seq_num") == 1)
        .join(tables["d_icd_diagnoses"], on=["icd_code", "icd_version"])
    )
    joined = discharge.join(first, on="hadm_id")
    assert joined.height == discharge.height
    assert all(
        title.lower() in text for title, text in zip(joined["long_title"], joined["text"], strict=True)
    )
    exams = tables["radiology_detail"].filter(pl.col("field_name") == "exam_name")
    assert set(exams["note_id"]) == set(radiology["note_id"])


# ------------------------------------------------------------------------------ determinism


def test_same_patients_and_seed_give_identical_bytes(tmp_path):
    """Also across processes and polars thread counts (joins and group-bys may reorder rows)."""
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    synthesize(first, patients=15, seed=11)
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"from graphkit.ehr.synth import synthesize; synthesize({str(second)!r}, 15, seed=11)",
        ],
        check=True,
        env={**os.environ, "POLARS_MAX_THREADS": "1", "PYTHONHASHSEED": "1"},
    )
    synthesize(other, patients=15, seed=12)
    assert _digests(first) == _digests(second)
    changed = {k for k, v in _digests(other).items() if _digests(first)[k] != v}
    assert "hosp/labevents.csv.gz" in changed and "hosp/d_labitems.csv.gz" not in changed


def test_a_larger_cohort_starts_with_the_smaller_one_chunk_by_chunk(tmp_path, monkeypatch):
    from graphkit.ehr.synth import cohort as cohort_module

    monkeypatch.setattr(cohort_module, "CHUNK_PATIENTS", 10)
    synthesize(tmp_path / "small", patients=10, seed=5)
    synthesize(tmp_path / "large", patients=25, seed=5)
    small, large = open_source(tmp_path / "small"), open_source(tmp_path / "large")
    for name in ("admissions", "labevents", "chartevents", "edstays", "discharge"):
        head = large.scan(name).filter(
            pl.col("subject_id").is_in(small.scan(name).collect()["subject_id"].unique().implode())
        )
        assert head.collect().equals(small.scan(name).collect()), name


def test_parquet_holds_the_same_cohort_as_csv(tmp_path):
    synthesize(tmp_path / "csv", patients=8, seed=2)
    synthesize(tmp_path / "pq", patients=8, seed=2, fmt="parquet")
    csv, parquet = open_source(tmp_path / "csv"), open_source(tmp_path / "pq")
    assert (tmp_path / "pq" / "icu" / "chartevents.parquet").exists()
    for name in ("patients", "admissions", "labevents", "chartevents", "triage", "radiology", "d_items"):
        assert csv.scan(name).collect().equals(parquet.scan(name).collect()), name


# ----------------------------------------------------------------------- referential integrity


def test_ids_are_unique(tables):
    for name, column in [
        ("patients", "subject_id"),
        ("admissions", "hadm_id"),
        ("icustays", "stay_id"),
        ("edstays", "stay_id"),
        ("transfers", "transfer_id"),
        ("labevents", "labevent_id"),
        ("microbiologyevents", "microevent_id"),
        ("poe", "poe_id"),
        ("pharmacy", "pharmacy_id"),
        ("emar", "emar_id"),
        ("discharge", "note_id"),
        ("radiology", "note_id"),
    ]:
        frame = tables[name]
        assert frame[column].null_count() == 0 and frame[column].n_unique() == frame.height, (name, column)
    assert set(tables["icustays"]["stay_id"]).isdisjoint(tables["edstays"]["stay_id"])


def test_every_row_belongs_to_a_known_patient_and_admission_of_that_patient(tables):
    patients = set(tables["patients"]["subject_id"])
    admissions = tables["admissions"].select("hadm_id", pl.col("subject_id").alias("owner"))
    for name, frame in tables.items():
        if "subject_id" not in frame.columns:
            continue
        assert set(frame["subject_id"]) <= patients, name
        if "hadm_id" in frame.columns:
            linked = frame.drop_nulls("hadm_id").join(admissions, on="hadm_id", how="left")
            assert linked["owner"].null_count() == 0, name
            assert (linked["owner"] == linked["subject_id"]).all(), name


def _outside(frame: pl.DataFrame, column: str, start: str, end: str) -> int:
    return frame.filter((pl.col(column) < pl.col(start)) | (pl.col(column) > pl.col(end))).height


def test_events_fall_inside_their_admission(tables):
    windows = tables["admissions"].select("hadm_id", "admittime", "dischtime")
    for name, column in [
        ("labevents", "charttime"),
        ("microbiologyevents", "charttime"),
        ("emar", "charttime"),
        ("poe", "ordertime"),
        ("pharmacy", "starttime"),
        ("prescriptions", "starttime"),
        ("services", "transfertime"),
        ("radiology", "charttime"),
        ("discharge", "charttime"),
        ("icustays", "intime"),
        ("icustays", "outtime"),
    ]:
        rows = tables[name].drop_nulls(["hadm_id", column]).join(windows, on="hadm_id")
        assert _outside(rows, column, "admittime", "dischtime") == 0, (name, column)
    ward = tables["transfers"].filter(pl.col("eventtype") != "ED").join(windows, on="hadm_id")
    assert _outside(ward, "intime", "admittime", "dischtime") == 0
    for name in ("procedures_icd", "hcpcsevents"):
        rows = (
            tables[name]
            .join(windows, on="hadm_id")
            .with_columns(pl.col("admittime").dt.date(), pl.col("dischtime").dt.date())
        )
        assert _outside(rows, "chartdate", "admittime", "dischtime") == 0, name
    ordered = (
        tables["admissions"]
        .sort("subject_id", "admittime")
        .with_columns(pl.col("dischtime").shift(1).over("subject_id").alias("previous"))
    )
    assert ordered.filter(pl.col("admittime") < pl.col("previous")).height == 0


def test_icu_and_ed_events_fall_inside_their_stay(tables):
    icu = tables["icustays"].select("stay_id", "intime", "outtime")
    for name, column in [
        ("chartevents", "charttime"),
        ("inputevents", "starttime"),
        ("ingredientevents", "starttime"),
        ("outputevents", "charttime"),
        ("datetimeevents", "charttime"),
        ("procedureevents", "starttime"),
    ]:
        rows = tables[name].join(icu, on="stay_id", how="left")
        assert rows["intime"].null_count() == 0, name
        assert _outside(rows, column, "intime", "outtime") == 0, name
    ed = tables["edstays"].select("stay_id", "intime", "outtime")
    for name in ("vitalsign", "medrecon", "pyxis"):
        rows = tables[name].join(ed, on="stay_id", how="left")
        assert rows["intime"].null_count() == 0, name
        assert _outside(rows, "charttime", "intime", "outtime") == 0, name
    for name in ("triage", "diagnosis"):
        assert set(tables[name]["stay_id"]) <= set(ed["stay_id"]), name
    assert tables["triage"].height == ed.height


def test_ed_stays_match_their_admission_and_precede_it(tables):
    admissions = tables["admissions"]
    admitted = tables["edstays"].drop_nulls("hadm_id").join(admissions, on="hadm_id")
    assert admitted.height == admissions["edregtime"].is_not_null().sum()
    assert (admitted["intime"] == admitted["edregtime"]).all()
    assert (admitted["outtime"] == admitted["edouttime"]).all()
    assert (admitted["intime"] < admitted["admittime"]).all()
    assert (admitted["disposition"] == "ADMITTED").all()
    alone = (
        tables["edstays"]
        .filter(pl.col("hadm_id").is_null())
        .join(
            admissions.select(
                "subject_id", pl.coalesce("edregtime", "admittime").alias("start"), "dischtime"
            ),
            on="subject_id",
        )
    )
    assert (
        alone.filter((pl.col("intime") < pl.col("dischtime")) & (pl.col("outtime") > pl.col("start"))).height
        == 0
    )


def test_icu_stays_are_icu_transfers(tables):
    icu = tables["icustays"]
    matched = icu.join(
        tables["transfers"].select("hadm_id", "intime", "careunit"), on=["hadm_id", "intime"], how="left"
    )
    assert matched.height == icu.height
    assert (matched["careunit"] == matched["first_careunit"]).all()
    assert (icu["los"] > 0).all()


def test_order_links_hold(tables):
    assert set(tables["emar_detail"]["emar_id"]) <= set(tables["emar"]["emar_id"])
    assert set(tables["prescriptions"]["pharmacy_id"]) <= set(tables["pharmacy"]["pharmacy_id"])
    assert set(tables["emar"]["poe_id"]) <= set(tables["poe"]["poe_id"])
    assert set(tables["poe_detail"]["poe_id"]) <= set(tables["poe"]["poe_id"])
    assert set(tables["pharmacy"]["poe_id"].drop_nulls()) <= set(tables["poe"]["poe_id"])
    assert set(tables["ingredientevents"]["orderid"]) <= set(tables["inputevents"]["orderid"])
    assert set(tables["discharge_detail"]["note_id"]) <= set(tables["discharge"]["note_id"])
    assert tables["discharge"]["hadm_id"].n_unique() == tables["admissions"].height
    omr = tables["omr"]
    assert omr.select("subject_id", "chartdate", "result_name", "seq_num").is_unique().all()
    poe = tables["poe"]
    assert poe.select((pl.col("poe_id") == pl.format("{}-{}", "subject_id", "poe_seq")).all()).item()


def test_deaths_are_consistent(tables):
    admissions, patients = tables["admissions"], tables["patients"]
    died = admissions["hospital_expire_flag"] == 1
    assert (died == admissions["deathtime"].is_not_null()).all()
    assert (died == (admissions["discharge_location"] == "DIED")).all()
    deaths = admissions.filter(pl.col("deathtime").is_not_null()).join(patients, on="subject_id")
    assert (deaths["deathtime"] == deaths["dischtime"]).all()
    assert (deaths["deathtime"].dt.date() == deaths["dod"]).all()
    dead = patients.drop_nulls("dod").select("subject_id", "dod")
    for name, column in [
        ("admissions", "dischtime"),
        ("labevents", "charttime"),
        ("edstays", "outtime"),
        ("omr", "chartdate"),
    ]:
        rows = tables[name].join(dead, on="subject_id")
        day = pl.col(column) if rows.schema[column] == pl.Date else pl.col(column).dt.date()
        assert rows.filter(day > pl.col("dod")).height == 0, name


# -------------------------------------------------------------------------- label prevalence


def _rate(mask: pl.Series) -> float:
    return float(mask.mean()) if mask.len() else 0.0


def test_risk_labels_are_not_trivial(tables):
    """Every EHR-Bench risk family needs both labels in the cohort."""
    admissions, icu, ed = tables["admissions"], tables["icustays"], tables["edstays"]
    stay_days = (admissions["dischtime"] - admissions["admittime"]).dt.total_hours() / 24
    following = (
        admissions.sort("subject_id", "admittime")
        .with_columns(pl.col("admittime").shift(-1).over("subject_id").alias("next"))
        .filter(pl.col("hospital_expire_flag") == 0)
    )
    gap_days = (following["next"] - following["dischtime"]).dt.total_hours() / 24
    icu_deaths = icu.join(admissions, on="hadm_id").filter(pl.col("outtime") == pl.col("deathtime"))
    icu_per_admission = icu.group_by("hadm_id").len()["len"]
    visits = ed.sort("subject_id", "intime").with_columns(
        pl.col("intime").shift(-1).over("subject_id").alias("next")
    )
    first_icu = icu.group_by("hadm_id").agg(pl.col("intime").min().alias("icu_in"))
    ed_to_icu = ed.join(first_icu, on="hadm_id", how="left").with_columns(
        ((pl.col("icu_in") - pl.col("outtime")).dt.total_hours() <= 12).fill_null(False).alias("icu12")
    )["icu12"]
    rates = {
        "in-hospital mortality": _rate(admissions["hospital_expire_flag"] == 1),
        "ICU death": icu_deaths.height / icu.height,
        "length of stay > 3 days": _rate(stay_days > 3),
        "length of stay > 7 days": _rate(stay_days > 7),
        "readmission within 30 days": _rate((gap_days <= 30).fill_null(False)),
        "readmission within 60 days": _rate((gap_days <= 60).fill_null(False)),
        "ICU readmission": _rate(icu_per_admission > 1),
        "ICU stay > 7 days": _rate(icu["los"] > 7),
        "ED visit admitted": _rate(ed["hadm_id"].is_not_null()),
        "ED return within 72 h": _rate(
            ((visits["next"] - visits["outtime"]).dt.total_hours() <= 72).fill_null(False)
        ),
        "ED to ICU within 12 h": _rate(ed_to_icu),
    }
    for label, rate in rates.items():
        assert 0 < rate < 1, (label, rate)
    assert 0.01 < rates["in-hospital mortality"] < 0.2
    assert 0.05 < rates["readmission within 30 days"] < 0.5


# ------------------------------------------------------------------------------- bad options


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"patients": 0}, "--patients"),
        ({"patients": -5}, "--patients"),
        ({"patients": True}, "--patients"),
        ({"patients": 1_000_001}, "--patients"),
        ({"patients": 3, "seed": -1}, "--seed"),
        ({"patients": 3, "fmt": "xlsx"}, "--format"),
    ],
)
def test_bad_options_are_refused_before_writing(tmp_path, kwargs, where):
    with pytest.raises(ConfigError) as error:
        synthesize(tmp_path / "out", **kwargs)
    assert error.value.where == where
    assert not (tmp_path / "out").exists()


def test_existing_folders_are_protected(tmp_path, cli):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = cli("ehr", "synth", taken, "--patients", "2")
    assert result.exit_code == 2
    assert "exists and is not empty" in result.output and "--force" in result.output
    result = cli("ehr", "synth", taken, "--patients", "2", "--force")
    assert result.exit_code == 2 and MARKER in result.output
    assert (taken / "notes.txt").read_text() == "mine"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert cli("ehr", "synth", a_file, "--patients", "2").exit_code == 2


def test_force_replaces_an_earlier_cohort(tmp_path, cli):
    out = tmp_path / "cohort"
    assert cli("ehr", "synth", out, "--patients", "2", "--seed", "1").exit_code == 0
    before = _digests(out)
    result = cli("ehr", "synth", out, "--patients", "3", "--seed", "1", "--force")
    assert result.exit_code == 0, result.output
    assert "3 synthetic patients" in result.output
    assert _digests(out) != before
    assert open_source(out).scan("patients").collect().height == 3


def test_chart_pool_is_derived_from_a_chartevents_csv(tmp_path):
    from graphkit.ehr.synth import chart_pool

    source = tmp_path / "chartevents.csv"
    source.write_text(
        "subject_id,hadm_id,stay_id,caregiver_id,charttime,storetime,itemid,value,valuenum,valueuom,warning\n"
        "1,2,3,,2150-01-01 10:00:00,,220045,80,80.0,bpm,\n"
        "1,2,3,,2150-01-01 10:00:00,,220048,,,,\n"
        "1,2,,,2150-01-01 11:00:00,,220045,98.59999847,98.59999847,bpm,\n"
    )
    target = tmp_path / "pool.parquet"
    assert chart_pool.derive(source, target) == 2
    pool = chart_pool.load(target)
    assert pool.columns == list(chart_pool.COLUMNS)
    assert pool["valuenum"].to_list() == [80.0, None]
