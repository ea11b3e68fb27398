"""End to end on a real build of the MIMIC-IV demo (`bench build` -> `bench eval` / `bench baseline`
-> `bench report`): an oracle endpoint that answers each sample's gold scores perfectly, so every
link of the chain (rows, prompts, parsing, gold normalization, P(yes)) is checked on real data."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from bench.baselines import run_baselines
from bench.evaluate import EvalConfig, evaluate, load_run, parse_model_spec
from bench.report import write_report
from generators.mockserver import MockOpenAIServer
from graphkit.hashing import file_hash
from tests.bench_build_data import demo_build

LIMIT = 3


@pytest.fixture(scope="module")
def build():
    return demo_build()


def gold_by_record(build) -> dict[str, object]:
    """user-turn prefix (record + instruction) -> label, for every test sample of the build."""
    answers = {}
    for path in sorted((build / "data").glob("*/test.parquet")):
        for record, instruction, label in pl.read_parquet(path).select("input", "instruction", "label").iter_rows():
            answers[f"{record}\n{instruction}"] = label
    return answers


def oracle(answers: dict[str, object]):
    def respond(body: dict):
        user = body["messages"][-1]["content"].rsplit("\n/", 1)[0]
        label = answers[user]
        if body.get("max_tokens") == 1:
            p = 0.9 if label == "yes" else 0.1
            tops = [{"token": "yes", "logprob": math.log(p)}, {"token": "no", "logprob": math.log(1 - p)}]
            return {"content": "yes" if p > 0.5 else "no", "logprobs": {"content": [{**tops[0], "top_logprobs": tops}]}}
        items = label if isinstance(label, list) else [label]
        return "<think>\nI know the answer.\n</think>\n\n" + "\n".join(items)

    return respond


def test_an_oracle_scores_perfectly_on_the_demo_build(build, tmp_path):
    with MockOpenAIServer(oracle(gold_by_record(build)), model="m") as server:
        run = evaluate(build, parse_model_spec(f"openai:{server.base_url}@m", {"backoff": 0}), tmp_path / "run",
                       EvalConfig(limit=LIMIT, n_resamples=20))
    card = json.loads((build / "card.json").read_text())
    results = run.results
    assert results["data"]["card_hash"] == file_hash(build / "card.json")
    assert results["data"]["build_config_hash"] == card["config_hash"]
    tested = {key: entry["counts"].get("test", 0) for key, entry in card["tasks"].items()}
    assert set(results["tasks"]) == set(tested)
    for key, count in tested.items():  # versions are read from the rows (none without rows)
        assert results["task_versions"][key] == (card["task_versions"][key] if count else None)
    assert run.failed == 0
    for key, task in results["tasks"].items():
        assert task["n"] == min(LIMIT, tested[key]), key
        if not task["n"]:
            continue
        if task["family"] == "decision":
            assert task["metrics"][task["primary"]]["point"] == 1.0, key
            assert task["n_no_answer"] == 0
        else:
            labels = {e["label"] for e in load_run(tmp_path / "run").predictions(key)}
            auroc = task["metrics"]["auroc"]["point"]
            assert (auroc == 1.0) if labels == {"yes", "no"} else math.isnan(auroc), key
            assert task["metrics"]["accuracy"]["point"] == 1.0 and task["p_yes_sources"] == {"logprobs": task["n"]}


def test_baselines_and_report_on_the_demo_build(build, tmp_path):
    results = run_baselines(build, tmp_path / "baselines", n_resamples=20)
    card = json.loads((build / "card.json").read_text())
    decision = {k for k, e in card["tasks"].items() if e["family"] == "decision" and e["counts"].get("test")}
    risk = {k for k, e in card["tasks"].items() if e["family"] == "risk" and e["counts"].get("test")}
    for name in ("most-frequent", "repeat-last"):
        scored = {k for k, t in results[name]["tasks"].items() if t["n"]}
        assert scored <= decision and risk.isdisjoint(scored)
        for key in scored:
            f = results[name]["tasks"][key]["metrics"][results[name]["tasks"][key]["primary"]]["point"]
            assert 0.0 <= f <= 1.0
    # the last event of a lab-heavy stay predicts some of the next lab tests
    assert results["repeat-last"]["tasks"]["labevents"]["metrics"]["f1"]["point"] > 0.05
    logreg = results["logreg"]["tasks"]
    assert {k for k, t in logreg.items() if t["n"]} == risk
    report = write_report([tmp_path / "baselines" / n for n in ("most-frequent", "repeat-last", "logreg")],
                          tmp_path / "report")
    assert "scores-decision.png" in report["plots"] and (tmp_path / "report" / "report.md").stat().st_size > 1000
