"""`ehr-r1 ehr check`: the genuine demo passes; each kind of broken input is one clear line, exit 2."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from graphkit.ehr.check import TASKS, check
from graphkit.ehr.schema import load_schema
from graphkit.ehr.source import open_source
from graphkit.errors import SchemaError
from tests.ehr_demo_copy import demo_copy, read_csv_gz, replace_in_table, write_csv_gz


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(root.rglob("*"))
    }


@pytest.fixture()
def broken(demo_dir, tmp_path, workspace_dir):
    """A symlinked demo copy to break, plus a CLI runner that asserts the failure contract."""
    copy = demo_copy(demo_dir, tmp_path / "mimic")

    def fails(cli, target: Path = copy) -> str:
        before = _snapshot(tmp_path)
        result = cli("ehr", "check", target)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and "; fix: " in lines[0], result.output
        assert _snapshot(tmp_path) == before, "check wrote something"
        assert not workspace_dir.exists()
        return lines[0]

    return copy, fails


# ---------------------------------------------------------------- the genuine demo


def test_demo_passes_with_counts_and_task_families(demo_dir):
    report = check(demo_dir)
    rows = {t.table: t.rows for t in report.tables}
    assert rows["labevents"] == 107727 and rows["admissions"] == 275 and rows["d_icd_diagnoses"] == 109775
    assert len(report.tables) == 30 and report.modules == frozenset({"hosp", "icu"})
    assert {t.table: t.untimed_rows for t in report.tables}["microbiologyevents"] == 183
    disabled = set(report.disabled())
    assert disabled == {
        "chartevents",
        "radiology",
        "medrecon",
        "medrecon_atc",
        "pyxis",
        "diagnosis",
        "diagnosis_ccs",
        "ED_Hospitalization",
        "ED_Inpatient_Mortality",
        "ED_ICU_Transfer_12hour",
        "ED_Reattendance_3day",
        "ED_Critical_Outcomes",
    }
    assert {"Readmission_30day", "Inpatient_Mortality", "ICU_Mortality_1day", "labevents"} <= set(
        report.enabled()
    )
    # one warning per missing optional module or table, each naming what it switches off
    assert len(report.warnings) == 3
    assert report.warnings[0].startswith("ed/ (MIMIC-IV-ED 2.2) not found: 10 task(s) switched off")
    assert "Readmission_30day, Readmission_60day use structured data" in report.warnings[1]
    assert report.warnings[2] == "icu/chartevents not found: 1 task(s) switched off: chartevents"


def test_task_needs_mirror_the_bench_task_files(repo_root):
    """graphkit cannot import bench; its copy of each task's data needs must equal bench's YAML."""
    assert len(TASKS) == 45 and sum(t.family == "decision" for t in TASKS) == 27
    mine = {t.key: (t.family, set(t.tables), set(t.optional)) for t in TASKS}
    theirs = {}
    for path in sorted((repo_root / "bench" / "tasks").glob("*/*.yaml")):
        task = yaml.safe_load(path.read_text())
        requires = task["requires"]
        optional_modules = set(requires.get("optional_modules", []))
        modules = {t: load_schema().table(t).module for t in requires["tables"]}
        required = {t for t in requires["tables"] if modules[t] not in optional_modules}
        theirs[task["key"]] = (task["family"], required, set(requires["tables"]) - required)
    assert mine == theirs


def test_cli_prints_counts_tasks_and_one_warning_per_missing_module(cli, demo_dir, workspace_dir):
    result = cli("ehr", "check", demo_dir)
    assert result.exit_code == 0, result.output
    assert "107,727" in result.output and "labevents" in result.output
    assert "needs icu/chartevents" in result.output and "needs ed/edstays" in result.output
    assert result.output.count("warning:") == 3
    assert "OK: 30 tables, 729,638 rows valid (modules: hosp, icu)" in result.output
    assert "33 of 45 tasks enabled" in result.output
    assert not workspace_dir.exists()


def test_present_optional_modules_enable_their_tasks(demo_dir, tmp_path):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    (copy / "ed").mkdir()
    headers = {
        "edstays": "subject_id,hadm_id,stay_id,intime,outtime,gender,race,arrival_transport,disposition\n"
        "10000032,22595853,33258284,2180-05-06 19:17:00,2180-05-06 23:30:00,F,WHITE,AMBULANCE,ADMITTED\n",
        "triage": "subject_id,stay_id,temperature,heartrate,resprate,o2sat,sbp,dbp,pain,acuity,chiefcomplaint\n",
        "vitalsign": "subject_id,stay_id,charttime,temperature,heartrate,resprate,o2sat,sbp,dbp,rhythm,pain\n",
        "medrecon": "subject_id,stay_id,charttime,name,gsn,ndc,etc_rn,etccode,etcdescription\n",
        "pyxis": "subject_id,stay_id,charttime,med_rn,name,gsn_rn,gsn\n",
        "diagnosis": "subject_id,stay_id,seq_num,icd_code,icd_version,icd_title\n",
    }
    for table, text in headers.items():
        write_csv_gz(copy / "ed" / f"{table}.csv.gz", text)
    report = check(copy)
    assert "ed" in report.modules and "pyxis" in report.enabled() and "ED_Hospitalization" in report.enabled()
    assert len(report.warnings) == 2 + 5  # note/ and chartevents, plus one per header-only ED table
    assert "ed/triage.csv.gz: the table has no rows" in report.warnings


def test_not_null_violations_warn_but_pass(demo_dir, tmp_path):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    text = read_csv_gz(copy / "hosp" / "omr.csv.gz").replace(",Height (Inches),", ",,", 1)
    write_csv_gz(copy / "hosp" / "omr.csv.gz", text)
    report = check(copy)
    assert (
        "hosp/omr.csv.gz: column 'result_name' is NOT NULL in the published schema but empty in 1 row(s)"
        in (report.warnings)
    )


def test_fractional_seconds_are_valid_and_read_as_written(demo_dir, tmp_path):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    replace_in_table(copy, "hosp/admissions.csv.gz", "2180-05-06 22:23:00", "2180-05-06 22:23:00.250")
    check(copy)
    times = open_source(copy).scan("admissions", columns=["admittime"]).collect()["admittime"]
    assert datetime(2180, 5, 6, 22, 23, 0, 250000) in times.to_list()


# ---------------------------------------------------------------- bad input: one line, exit 2, nothing written


def test_missing_folder(cli, broken, tmp_path):
    _, fails = broken
    line = fails(cli, tmp_path / "no-such-dir")
    assert "no-such-dir: does not exist" in line


def test_not_mimic_at_all(cli, broken, tmp_path):
    _, fails = broken
    other = tmp_path / "holiday"
    other.mkdir()
    (other / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    line = fails(cli, other)
    assert (
        "holiday: is not a MIMIC-IV folder" in line
        and "fix: pass the folder that holds hosp/ and icu/" in line
    )


def test_missing_table(cli, broken):
    copy, fails = broken
    (copy / "icu" / "icustays.csv.gz").unlink()
    line = fails(cli)
    assert "icu/icustays.csv.gz: table file is missing; fix: add icu/icustays.csv.gz" in line


def test_missing_column(cli, broken):
    copy, fails = broken
    replace_in_table(copy, "hosp/patients.csv.gz", "anchor_year_group", "year_group")
    line = fails(cli)
    assert "hosp/patients.csv.gz: column 'anchor_year_group': required column is missing" in line
    assert "(got ['subject_id', 'gender', 'anchor_age', 'anchor_year', 'year_group', 'dod'])" in line


def test_wrong_type(cli, broken):
    copy, fails = broken
    text = read_csv_gz(copy / "hosp" / "labevents.csv.gz")
    lines = text.split("\n")
    fields = lines[5].split(",")
    fields[4] = "5O931"  # itemid with a letter O
    lines[5] = ",".join(fields)
    write_csv_gz(copy / "hosp" / "labevents.csv.gz", "\n".join(lines))
    line = fails(cli)
    assert (
        "hosp/labevents.csv.gz: column 'itemid': is not a valid int in data row 5 (got '5O931');"
        " fix: write whole numbers only" in line
    )


def test_unparseable_timestamp(cli, broken):
    copy, fails = broken
    replace_in_table(copy, "hosp/admissions.csv.gz", "2180-05-06 22:23:00", "2180-05-32 22:23:00")
    line = fails(cli)
    assert "hosp/admissions.csv.gz: column 'admittime': unparseable timestamp in data row" in line
    assert "(got '2180-05-32 22:23:00'); fix: write timestamps as YYYY-MM-DD HH:MM:SS" in line


def test_unparseable_date(cli, broken):
    copy, fails = broken
    replace_in_table(copy, "hosp/omr.csv.gz", "2146-12-01", "12/01/2146")
    line = fails(cli)
    assert "hosp/omr.csv.gz: column 'chartdate'" in line and "(got '12/01/2146')" in line
    assert "fix: write dates as YYYY-MM-DD" in line


def test_missing_patient_id(cli, broken):
    copy, fails = broken
    lines = read_csv_gz(copy / "hosp" / "services.csv.gz").split("\n")
    lines[1] = "," + lines[1].split(",", 1)[1]
    write_csv_gz(copy / "hosp" / "services.csv.gz", "\n".join(lines))
    line = fails(cli)
    assert "hosp/services.csv.gz: column 'subject_id': the patient column is empty in 1 row(s)" in line


def test_truncated_gzip(cli, broken, demo_dir):
    copy, fails = broken
    target = copy / "hosp" / "labevents.csv.gz"
    data = (demo_dir / "hosp" / "labevents.csv.gz").read_bytes()
    target.unlink()
    target.write_bytes(data[: len(data) // 2])
    line = fails(cli)
    assert (
        "hosp/labevents.csv.gz: cannot be read to the end (Compressed file ended before the end-of-stream"
        in line
    )
    assert "fix: the file is truncated or corrupt; download it again" in line


def test_empty_file(cli, broken):
    copy, fails = broken
    (copy / "hosp" / "d_labitems.csv.gz").unlink()
    (copy / "hosp" / "d_labitems.csv.gz").write_bytes(b"")
    line = fails(cli)
    assert "hosp/d_labitems.csv.gz: file is empty (0 bytes); fix: download or copy this file again" in line


def test_library_raises_the_same_errors(demo_dir, tmp_path):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    lines = read_csv_gz(copy / "icu" / "icustays.csv.gz").split("\n")
    lines[3] = lines[3].rsplit(",", 1)[0] + ",long"
    write_csv_gz(copy / "icu" / "icustays.csv.gz", "\n".join(lines))
    with pytest.raises(
        SchemaError, match=r"icu/icustays.csv.gz: column 'los': is not a valid float in data row 3"
    ):
        check(copy)
