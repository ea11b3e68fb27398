"""EHR-Bench task definitions: all 45 load and validate; broken files are named with key and fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bench.taskdef import TASKS_DIR, load_tasks, parse_task_file, task_files, validate_paths
from graphkit.errors import TaskError

# The task keys of the reference code (scripts/data_configs/ehr_bench_*.json of MAGIC-AI4Med/EHR-R1).
REFERENCE_DECISION_KEYS = {
    "admissions", "omr", "emar", "procedures_icd", "procedures_ccs", "diagnoses_icd", "diagnoses_ccs",
    "labevents", "microbiologyevents", "services", "transfers", "poe", "radiology", "prescriptions",
    "prescriptions_atc", "pyxis", "medrecon", "medrecon_atc", "diagnosis", "diagnosis_ccs", "chartevents",
    "ingredientevents", "datetimeevents", "procedureevents", "inputevents", "outputevents", "next_event",
}  # fmt: skip
REFERENCE_RISK_KEYS = {
    "ED_Hospitalization", "ED_Inpatient_Mortality", "ED_ICU_Tranfer_12hour", "ED_Reattendance_3day",
    "ED_Critical_Outcomes", "Readmission_30day", "Readmission_60day", "Inpatient_Mortality",
    "LengthOfStay_3day", "LengthOfStay_7day", "ICU_Mortality_1day", "ICU_Mortality_2day", "ICU_Mortality_3day",
    "ICU_Mortality_7day", "ICU_Mortality_14day", "ICU_Stay_7day", "ICU_Stay_14day", "ICU_Readmission",
}  # fmt: skip


@pytest.fixture(scope="module")
def tasks():
    return load_tasks()


def test_all_45_tasks_load(tasks):
    assert len(tasks) == 45
    assert sum(t.family == "decision" for t in tasks.values()) == 27
    assert sum(t.family == "risk" for t in tasks.values()) == 18
    assert len(task_files()) == 45


def test_every_reference_key_has_exactly_one_task(tasks):
    decision = {t.reference.key for t in tasks.values() if t.family == "decision"}
    risk = {t.reference.key for t in tasks.values() if t.family == "risk"}
    assert decision == REFERENCE_DECISION_KEYS
    assert risk == REFERENCE_RISK_KEYS


def test_42_reported_in_paper(tasks):
    reported = {k for k, t in tasks.items() if t.paper.reported}
    assert len(reported) == 42
    assert set(tasks) - reported == {"next_event", "chartevents", "pyxis"}
    assert sum(tasks[k].family == "decision" for k in reported) == 24


@pytest.mark.parametrize("path", task_files(), ids=lambda p: p.stem)
def test_each_bundled_file_validates_on_its_own(path):
    task, problems = parse_task_file(path)
    assert problems == []
    assert task.key == path.stem
    assert path.parent.name == task.family


def test_instructions_are_the_reference_wording(tasks):
    assert tasks["labevents"].instruction == (
        "Given the sequence of events that have occurred in a hospital, please give the next "
        "Labotary Test Events suggestion for the patients."
    )
    assert tasks["Readmission_30day"].instruction.endswith("readmitted to the hospital within 30 days")
    for task in tasks.values():
        assert task.instruction.startswith(
            "Given the sequence of events that have occurred in a hospital, please "
        )


def test_decision_contexts_end_strictly_before_the_target(tasks):
    for task in tasks.values():
        if task.family == "decision":
            assert task.context.end.ref == "anchor" and task.context.end.hours <= 0
            assert not task.context.end_inclusive
            assert task.thinking and task.output_type in ("set", "class")
        else:
            assert not task.thinking and task.output_type == "binary" and task.metric == "auroc"


def test_grouped_targets_use_a_mapping(tasks):
    mapped = {k: t.target.mapping for k, t in tasks.items() if t.target is not None and t.target.mapping}
    assert mapped == {
        "procedures_ccs": "ccs_px",
        "diagnoses_ccs": "ccs_dx",
        "diagnosis_ccs": "ccs_dx",
        "prescriptions_atc": "atc",
        "medrecon_atc": "atc",
    }


def test_load_tasks_filters(tasks):
    assert set(load_tasks(family="risk")) == {k for k, t in tasks.items() if t.family == "risk"}
    assert list(load_tasks(keys=["omr", "labevents"])) == ["omr", "labevents"]
    with pytest.raises(TaskError, match="unknown task key"):
        load_tasks(keys=["labs"])
    with pytest.raises(TaskError, match="unknown task family"):
        load_tasks(family="decisions")


# --- broken files ---------------------------------------------------------------------------


def _write(tmp_path: Path, edit, name: str = "labevents", family: str = "decision") -> Path:
    data = yaml.safe_load((TASKS_DIR / family / f"{name}.yaml").read_text())
    edit(data)
    folder = tmp_path / family
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{data['key']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _problems(path):
    _, problems = validate_paths([path])
    return [(p.key, p.problem, p.fix) for p in problems]


def test_unknown_key_is_named_with_a_fix(tmp_path):
    path = _write(tmp_path, lambda d: d["context"].update(window_hours=24))
    [(key, problem, fix)] = _problems(path)
    assert key == "context.window_hours"
    assert "not permitted" in problem and "remove" in fix


def test_missing_field(tmp_path):
    path = _write(tmp_path, lambda d: d.pop("instruction"))
    assert _problems(path) == [("instruction", "Field required", "add this key")]


def test_bad_window(tmp_path):
    path = _write(tmp_path, lambda d: d["context"].update(start={"ref": "anchor", "hours": 2}))
    [(key, problem, fix)] = _problems(path)
    assert key == "context" and "window is empty" in problem and "start earlier than end" in fix


def test_decision_context_may_not_reach_the_target(tmp_path):
    path = _write(tmp_path, lambda d: d["context"].update(end={"ref": "anchor", "hours": 1}))
    [(key, problem, _)] = _problems(path)
    assert key == "context.end" and "strictly before" in problem


def test_bad_metric(tmp_path):
    path = _write(tmp_path, lambda d: d.update(metric="f1"))
    [(key, problem, fix)] = _problems(path)
    assert key == "metric" and "set_f1" in fix


def test_metric_must_fit_the_output_type(tmp_path):
    path = _write(tmp_path, lambda d: d.update(metric="auroc"))
    [(key, problem, fix)] = _problems(path)
    assert key == "metric" and "does not score output_type 'set'" in problem and "set_f1" in fix


def test_unknown_label_kind(tmp_path):
    path = _write(
        tmp_path, lambda d: d["label"].update(kind="death_soon"), name="ICU_Mortality_1day", family="risk"
    )
    [(key, problem, fix)] = _problems(path)
    assert key == "label" and "kind" in fix and "death_within" in fix


def test_unknown_table_column_and_module(tmp_path):
    def edit(d):
        d["target"]["field"] = "item"
        d["requires"]["tables"].append("labevent")
        d["anchor"]["time_from"] = {"table": "icustays", "column": "intime"}

    problems = {key: (problem, fix) for key, problem, fix in _problems(_write(tmp_path, edit))}
    assert "has no column 'item'" in problems["target.field"][0]
    assert "unknown MIMIC-IV table 'labevent'" in problems["requires.tables.2"][0]
    assert "module 'icu'" in problems["anchor.time_from.table"][0]
    assert "add icu to requires.modules" in problems["anchor.time_from.table"][1]


def test_file_name_and_folder_must_match(tmp_path):
    data = yaml.safe_load((TASKS_DIR / "decision" / "omr.yaml").read_text())
    (tmp_path / "risk").mkdir()
    path = tmp_path / "risk" / "omr_copy.yaml"
    path.write_text(yaml.safe_dump(data))
    keys = {key for key, _, _ in _problems(path)}
    assert keys == {"key", "family"}


def test_invalid_yaml_and_duplicates_and_any_of(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("key: [unclosed\n")
    [(key, problem, fix)] = _problems(broken)
    assert key.startswith("line") and "not valid YAML" in problem

    folder = tmp_path / "set"
    folder.mkdir()
    shutil.copy(TASKS_DIR / "risk" / "ED_Critical_Outcomes.yaml", folder / "ED_Critical_Outcomes.yaml")
    problems = _problems(folder)
    assert [key for key, _, _ in problems] == ["label.tasks.0", "label.tasks.1"]

    sub = folder / "again"
    sub.mkdir()
    shutil.copy(TASKS_DIR / "risk" / "ED_Critical_Outcomes.yaml", sub / "ED_Critical_Outcomes.yaml")
    assert any("also defined in" in problem for _, problem, _ in _problems(folder))


def test_cli_validate_reports_file_key_and_fix(cli, tmp_path):
    path = _write(tmp_path, lambda d: (d.update(metric="f1"), d.update(colour="red")))
    result = cli("bench", "validate", path)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 2
    for line in lines:
        assert line.startswith(f"error: {path}: ")
        assert "; fix: " in line
    assert any(": metric: " in line for line in lines) and any(": colour: " in line for line in lines)


def test_cli_validate_and_list_bundled(cli):
    result = cli("bench", "validate")
    assert result.exit_code == 0 and "45 task(s) valid" in result.output
    listing = yaml.safe_load(cli("bench", "list", "--json", "--reported").output)
    assert len(listing) == 42 and all(row["reported_in_paper"] for row in listing)
