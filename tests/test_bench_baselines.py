"""Baselines on hand-made samples (tests/bench_eval_data.py), every number worked out by hand."""

from __future__ import annotations

import json

import pytest

from bench.baselines import block_values, count_features, record_events, run_baselines
from bench.evaluate import load_run
from graphkit.errors import ConfigError
from tests.bench_eval_data import ROWS, write_build


@pytest.fixture()
def runs(tmp_path):
    data = write_build(tmp_path / "bench")
    results = run_baselines(data, tmp_path / "baselines", n_resamples=100)
    return tmp_path / "baselines", results


def test_record_events_read_both_block_shapes():
    record = ROWS["labevents"]()["test"][0]["input"]
    events = record_events(record)
    assert [table for table, _ in events] == ["labevents", "prescriptions", "labevents"]
    assert block_values(events[-1][1]) == {"Item", "Value", "Glucose", "Lactate", "1.0"}
    assert block_values(events[1][1]) == {"Heparin"}
    ehr_r1_style = "## Patient Demographics\n- Age: 3\n\n## Labotary Test Events [None]\n- Item_Name: pH\n"
    assert record_events(ehr_r1_style) == [("labevents", "\n- Item_Name: pH\n")]


def test_most_frequent(runs):
    _, results = runs
    result = results["most-frequent"]
    lab = result["tasks"]["labevents"]
    # train gold: sodium 3, potassium 3, others 1; median set size 2 -> {potassium, sodium}
    assert result["model"]["fitted"]["labevents"] == {"k": 2, "prediction": ["Potassium", "Sodium"], "train_samples": 4}
    # test 11 {sodium, glucose}: P 1/2 R 1/2 F1 1/2; test 12 {potassium}: P 1/2 R 1 F1 2/3
    assert lab["metrics"]["precision"]["point"] == pytest.approx(0.5)
    assert lab["metrics"]["recall"]["point"] == pytest.approx(0.75)
    assert lab["metrics"]["f1"]["point"] == pytest.approx((0.5 + 2 / 3) / 2)
    # next_event: labevents twice, prescriptions once in train; test golds prescriptions, labevents
    assert result["tasks"]["next_event"]["metrics"]["accuracy"]["point"] == pytest.approx(0.5)
    assert result["skipped_tasks"] == {"Inpatient_Mortality": "a decision-task baseline"}


def test_repeat_last(runs):
    _, results = runs
    result = results["repeat-last"]
    # test 11: last lab event {glucose, lactate} vs {sodium, glucose}: F1 1/2; test 12: no lab event, empty: 0
    lab = result["tasks"]["labevents"]
    assert lab["metrics"]["f1"]["point"] == pytest.approx(0.25) and lab["n_no_answer"] == 0
    assert result["tasks"]["next_event"]["metrics"]["accuracy"]["point"] == 1.0
    predictions = {e["id"]: e["prediction"] for e in load_run(runs[0] / "repeat-last").predictions()}
    assert predictions["labevents/test/011"] == ["Glucose", "Lactate"] and predictions["labevents/test/012"] == []
    assert predictions["next_event/test/011"] == ["prescriptions"]


def test_logreg_ranks_by_the_count_features(runs):
    _, results = runs
    risk = results["logreg"]["tasks"]["Inpatient_Mortality"]
    # train: dying patients had three heparin events, the others none; test 14 had one
    p = {e["id"][-3:]: e["p_yes"] for e in load_run(runs[0] / "logreg").predictions()}
    assert p["011"] == pytest.approx(p["013"]) and p["013"] > p["014"] > p["012"]
    assert risk["metrics"]["auroc"]["point"] == 1.0 and risk["metrics"]["auprc"]["point"] == 1.0
    assert risk["p_yes_sources"] == {"logreg": 4}
    assert results["logreg"]["model"]["fitted"]["Inpatient_Mortality"]["train_prevalence"] == 0.5
    assert set(results["logreg"]["skipped_tasks"]) == {"labevents", "next_event"}
    features = count_features(ROWS["Inpatient_Mortality"]()["test"][3])
    assert features["events:prescriptions"] == pytest.approx(0.6931471805599453)
    assert features["item:prescriptions:Heparin"] == 1.0 and "events:labevents" in features


def test_a_one_class_train_split_scores_its_prevalence(tmp_path):
    data = write_build(tmp_path / "bench", ("Inpatient_Mortality",))
    train = data / "data" / "Inpatient_Mortality" / "train.jsonl"
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    train.write_text("".join(json.dumps({**row, "label": "no"}) + "\n" for row in rows))
    result = run_baselines(data, tmp_path / "out", ["logreg"], n_resamples=10)["logreg"]
    assert result["model"]["fitted"]["Inpatient_Mortality"]["constant"] == 0.0
    assert result["tasks"]["Inpatient_Mortality"]["metrics"]["auroc"]["point"] == 0.5


def test_baseline_runs_have_the_result_format(runs):
    folder, results = runs
    for name in ("most-frequent", "repeat-last", "logreg"):
        run = load_run(folder / name)
        assert run.results["kind"] == "baseline" and run.name == name
        for field in ("config_hash", "task_versions", "seed", "package_version", "data"):
            assert field in run.results
        assert run.results["data"]["card_hash"] and json.loads((folder / name / "run.json").read_text())["name"] == name
        lines = list(run.predictions())
        assert [e["i"] for e in lines] == list(range(len(lines)))
        assert all(e["status"] == "ok" for e in lines)
    assert results["logreg"]["summary"]["risk"]["mean_primary"] == 1.0


def test_unknown_baseline(tmp_path):
    with pytest.raises(ConfigError, match="unknown baseline"):
        run_baselines(write_build(tmp_path / "bench"), tmp_path / "out", ["oracle"])


def test_the_cli_writes_one_run_per_baseline(cli, tmp_path):
    data = write_build(tmp_path / "bench")
    result = cli("bench", "baseline", "--data", data, "--out", tmp_path / "out", "--which", "most-frequent,logreg",
                 "--bootstrap", "20")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["logreg", "most-frequent"]
    assert "labevents" in result.output and "baseline logreg" in result.output
