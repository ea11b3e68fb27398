"""`ehr-r1 bench build` as jobs: shards give the same dataset as one job, a killed job resumes,
skipped tasks are counted, other options are refused, and the command line."""

from __future__ import annotations

import json
import logging
import shutil

import polars as pl
import pytest

from bench.builder import BuildConfig, build
from graphkit.errors import ConfigError
from tests.bench_build_data import DEMO_DIR, read_build, synth_cohort

TASKS = ("labevents", "chartevents", "radiology", "ED_Hospitalization", "Readmission_30day", "next_event")
CONFIG = BuildConfig(tasks=TASKS, per_task=25, balance=True, subjects_per_unit=10)


@pytest.fixture(scope="module")
def one_job(tmp_path_factory):
    out = tmp_path_factory.mktemp("one-job")
    result = build(synth_cohort(), out, CONFIG)
    assert result.finalized and result.units_total >= 3 and result.units_run == result.units_total
    return out


def _same_data(a, b) -> None:
    left, right = read_build(a), read_build(b)
    assert left.keys() == right.keys()
    for task in left:
        assert left[task].equals(right[task]), task


def test_sharded_jobs_write_the_same_dataset_as_one_job(one_job, tmp_path):
    out = tmp_path / "jobs"
    first = build(synth_cohort(), out, CONFIG, shard=(0, 2))
    assert not first.finalized and 0 < first.units_done < first.units_total
    assert not (out / "card.json").exists()
    second = build(synth_cohort(), out, CONFIG, shard=(1, 2))
    assert second.finalized and second.units_done == second.units_total
    assert first.units_run + second.units_run == second.units_total
    _same_data(one_job, out)
    card = json.loads((out / "card.json").read_text())
    assert card["config_hash"] == json.loads((one_job / "card.json").read_text())["config_hash"]
    # the per-task cap holds per split after the merge of units, and --balance split the labels
    for task in read_build(out).values():
        assert task.group_by("split").len()["len"].max() <= 25
    risk = read_build(out)["ED_Hospitalization"].filter(pl.col("split") == "train")
    per_label = risk.group_by("label").len()["len"].to_list()
    assert len(per_label) == 2 and max(per_label) == 25 // 2  # the rarer label has fewer: all of them


def test_a_killed_job_resumes_where_it_stopped(one_job, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(one_job, out)
    # as if the job died inside unit 1 (half-written parts, no marker) and before the dataset
    (out / "parts" / "unit-00001" / "done.json").unlink()
    (out / "parts" / "unit-00001" / "samples.parquet").write_bytes(b"torn")
    (out / "card.json").unlink()
    shutil.rmtree(out / "data")
    result = build(synth_cohort(), out, CONFIG)
    assert result.finalized and result.units_run == 1
    _same_data(one_job, out)
    again = build(synth_cohort(), out, CONFIG)  # nothing left to do but writing the dataset again
    assert again.units_run == 0 and again.finalized
    _same_data(one_job, out)


def test_an_out_folder_with_other_options_is_refused_unless_forced(one_job, tmp_path):
    out = tmp_path / "other"
    shutil.copytree(one_job, out)
    other = BuildConfig(tasks=("Readmission_30day",), seed=1, subjects_per_unit=10)
    with pytest.raises(ConfigError, match="another configuration"):
        build(synth_cohort(), out, other)
    result = build(synth_cohort(), out, other, force=True)
    assert result.finalized and sorted(p.name for p in (out / "data").iterdir()) == ["Readmission_30day"]
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds no bench build"):
        build(synth_cohort(), stranger, other, force=True)


def test_tasks_the_data_cannot_support_are_skipped_with_one_warning_and_counted(tmp_path, caplog):
    tasks = ("radiology", "pyxis", "medrecon", "prescriptions_atc", "chartevents", "services")
    with caplog.at_level(logging.WARNING, logger="bench.builder.plan"):
        result = build(DEMO_DIR, tmp_path / "b", BuildConfig(tasks=tasks, per_task=10))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4  # note module, ed module, the ATC table, the chartevents table: one each
    assert any("pyxis" in w and "medrecon" in w and "ed module" in w for w in warnings)
    assert result.card["skipped_tasks"] == {
        "radiology": "the source has no note module",
        "pyxis": "the source has no ed module",
        "medrecon": "the source has no ed module",
        "prescriptions_atc": "no NDC->ATC table (--atc)",
        "chartevents": "the source has no chartevents table",
    }
    assert list(result.card["tasks"]) == ["services"]


def test_the_reference_style_and_jsonl(tmp_path):
    out = tmp_path / "ehr-r1"
    build(DEMO_DIR, out, BuildConfig(tasks=("services",), per_task=5, style="ehr-r1", format="jsonl"))
    rows = pl.read_ndjson(out / "data" / "services" / "train.jsonl")
    assert (
        rows.height == 5 and rows["input"].str.contains("## Patient Demographics [None]", literal=True).all()
    )
    assert rows["input"].str.contains("Labotary Test Events").any()


def test_the_command_builds_and_refuses_bad_options_in_one_line(cli, tmp_path):
    out = tmp_path / "cli"
    result = cli(
        "bench",
        "build",
        "--mimic",
        DEMO_DIR,
        "--out",
        out,
        "--tasks",
        "services,Inpatient_Mortality",
        "--per-task",
        "20",
        "--balance",
    )
    assert result.exit_code == 0, result.output
    assert "OK:" in result.output and (out / "card.json").exists()
    card = json.loads((out / "card.json").read_text())
    assert card["tasks"]["Inpatient_Mortality"]["counts"]["train"] <= 20
    bad = cli("bench", "build", "--mimic", DEMO_DIR, "--out", tmp_path / "x", "--shard", "3/3")
    assert bad.exit_code == 2 and "--shard" in bad.output and "Traceback" not in bad.output
    unknown = cli("bench", "build", "--mimic", DEMO_DIR, "--out", tmp_path / "y", "--tasks", "nope")
    assert unknown.exit_code == 2 and "nope" in unknown.output
