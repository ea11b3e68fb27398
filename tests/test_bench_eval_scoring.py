"""The evaluator's pieces on hand-made inputs: SPECs, prompts, per-sample and per-task scoring."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.evaluate.prompts import messages
from bench.evaluate.results import finite, load_run
from bench.evaluate.scoring import (
    ranked_auroc,
    score_probability,
    score_text,
    step_auprc,
    summary,
    task_metrics,
)
from bench.evaluate.spec import parse_model_spec
from bench.metrics import auprc, auroc
from bench.taskdef import load_tasks
from graphkit.errors import ConfigError, InputError


@pytest.mark.parametrize(("text", "kind", "target", "model"), [
    ("openai:http://127.0.0.1:8000/v1@Qwen/Qwen3-8B", "openai", "http://127.0.0.1:8000/v1", "Qwen/Qwen3-8B"),
    ("openai:http://localhost:8000/v1/@m@2", "openai", "http://localhost:8000/v1", "m@2"),
    ("openai:https://[::1]:9000/v1", "openai", "https://[::1]:9000/v1", None),
    ("hf:/models/x", "hf", "/models/x", None),
    ("vllm:Qwen/Qwen3-8B", "vllm", "Qwen/Qwen3-8B", None),
])
def test_specs(text, kind, target, model):
    spec = parse_model_spec(text)
    assert (spec.kind, spec.target, spec.model) == (kind, target, model)


def test_a_bare_folder_is_a_local_model(tmp_path):
    assert parse_model_spec(str(tmp_path)).kind == "hf"


@pytest.mark.parametrize(("text", "message"), [
    ("", "no model given"), ("/no/such/folder", "neither a model folder nor a SPEC"),
    ("http://127.0.0.1:8000/v1", "needs the openai: prefix"), ("openai:127.0.0.1:8000", "is not openai:BASE_URL"),
    ("openai:http://user:key@127.0.0.1:8000/v1@m", "credentials"), ("hf:", "names no model"),
])
def test_bad_specs_are_one_line_errors(text, message):
    with pytest.raises(ConfigError, match=message) as error:
        parse_model_spec(text)
    assert "user:key" not in str(error.value)  # a credential in the URL is never echoed


def test_model_options_are_checked_and_typed():
    spec = parse_model_spec("openai:http://127.0.0.1:1/v1@m", {"retries": 5, "timeout": 3, "template_kwargs": "false"})
    assert spec.option("retries") == 5 and spec.option("timeout") == 3.0 and spec.option("template_kwargs") is False
    assert spec.option("backoff") == 1.0
    for options, message in (({"device": "cpu"}, "not an option of openai"), ({"retries": "many"}, "must be a int"),
                              ({"retries": -1}, "must not be negative"), ({"logit_bias": "on"}, "auto or off")):
        with pytest.raises(ConfigError, match=message):
            parse_model_spec("openai:http://127.0.0.1:1/v1@m", options)
    # transport options and the URL do not identify the model; the name and answer options do
    a = parse_model_spec("openai:http://127.0.0.1:1/v1@m", {"retries": 1}).describe(answers_only=True)
    b = parse_model_spec("openai:http://127.0.0.1:2/v1@m", {"retries": 9}).describe(answers_only=True)
    c = parse_model_spec("openai:http://127.0.0.1:2/v1@m", {"top_logprobs": 5}).describe(answers_only=True)
    assert a == b != c


def test_prompts_are_the_training_format_plus_the_switch():
    plain = messages("## Patient Demographics\n- Age: 60", "Predict.", thinking=True, output_type="set")
    assert plain == [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": "## Patient Demographics\n- Age: 60\nPredict.\n/think"}]
    risk = messages("R", "Will it?", thinking=False, output_type="binary", candidates=["yes", "no"], switch=True)
    assert risk[-1]["content"] == ('R\nWill it?\nChoose your answer from this candidate list: ["yes", "no"].\n'
                                   "Answer with exactly one option from the candidate list and nothing else.\n/no_think")
    bare = messages("R", "I", thinking=True, output_type="class", switch=False, system=None)
    assert bare == [{"role": "user", "content": "R\nI"}]


def test_sample_scores_follow_the_answer_rules():
    gold = ["Sodium", "Glucose"]
    scored = score_text("set", True, gold, "<think>a\n</think>x</think>\n1. sodium\n- SODIUM\n\nUrea\n")
    assert scored["answer"] == ["sodium", "urea"]
    assert scored["scores"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    missing = score_text("set", True, gold, "<think>never closed")
    assert missing["answer"] is None and missing["scores"]["f1"] == 0.0
    assert score_text("set", False, gold, "Sodium\\nGlucose")["scores"]["f1"] == 1.0  # a literal \n splits
    assert score_text("class", True, "labevents", "</think>\nLabevents\nemar")["scores"] == {"accuracy": 1.0}
    assert score_text("class", True, "labevents", "</think>\nlabevents please")["scores"] == {"accuracy": 0.0}
    assert score_probability("yes", 0.5) == {"answer": "yes", "scores": {"accuracy": 1.0}}
    assert score_probability("Yes", 0.49) == {"answer": "no", "scores": {"accuracy": 0.0}}


def test_fast_auc_statistics_equal_scikit_learn():
    rng = np.random.default_rng(7)
    for n in (2, 3, 10, 57, 400):
        for trial in range(20):
            labels = rng.integers(0, 2, n)
            scores = rng.integers(0, 4, n) / 3 if trial % 2 else rng.random(n)
            if labels.min() == labels.max():
                assert math.isnan(ranked_auroc(labels, scores)) and math.isnan(step_auprc(labels, scores))
                continue
            assert ranked_auroc(labels, scores) == pytest.approx(auroc(labels, scores), abs=1e-12)
            assert step_auprc(labels, scores) == pytest.approx(auprc(labels, scores), abs=1e-12)


def entry(i, status="ok", **fields):
    return {"i": i, "id": f"s{i}", "task": "t", "status": status, "error": None if status == "ok" else "HTTP 503 after 3 attempts",
            "scores": {}, "answer": None, **fields}


def test_task_metrics_leave_failed_samples_out_and_count_them():
    tasks = load_tasks(keys=["labevents", "Inpatient_Mortality", "next_event"])
    lab = task_metrics(tasks["labevents"], [
        entry(0, scores={"precision": 1.0, "recall": 0.5, "f1": 2 / 3}, answer=["a"]),
        entry(1, scores={"precision": 0.0, "recall": 0.0, "f1": 0.0}, answer=None),
        entry(2, "failed"),
    ], n_resamples=100, seed=1)
    assert (lab["n"], lab["n_scored"], lab["n_failed"], lab["n_no_answer"]) == (3, 2, 1, 1)
    assert lab["failures"] == {"HTTP 503 after 3 attempts": 1}
    assert lab["metrics"]["f1"]["point"] == pytest.approx(1 / 3) and lab["primary"] == "f1"
    assert lab["metrics"]["recall"]["point"] == pytest.approx(0.25)
    one_class = task_metrics(tasks["Inpatient_Mortality"], [
        entry(0, label="no", p_yes=0.3, p_yes_source="logits", scores={"accuracy": 1.0}),
        entry(1, label="no", p_yes=0.7, p_yes_source="logits", scores={"accuracy": 0.0}),
    ], n_resamples=20)
    assert math.isnan(one_class["metrics"]["auroc"]["point"]) and one_class["metrics"]["auroc"]["skipped"] == 20
    assert one_class["metrics"]["accuracy"]["point"] == 0.5 and one_class["prevalence"] == 0.0
    assert finite(one_class)["metrics"]["auroc"]["point"] is None  # written as null, the JSON stays standard
    empty = task_metrics(tasks["next_event"], [entry(0, "failed")])
    assert empty["metrics"] == {} and empty["n_failed"] == 1
    overview = summary({"labevents": lab, "Inpatient_Mortality": one_class, "next_event": empty})
    assert overview["decision"] == {"tasks": 2, "tasks_averaged": 1, "mean_primary": pytest.approx(1 / 3)}
    assert overview["risk"]["tasks_averaged"] == 0 and math.isnan(overview["risk"]["mean_primary"])
    assert overview["samples"] == 6 and overview["failed"] == 2


def test_loading_a_run_folder_checks_what_it_reads(tmp_path):
    with pytest.raises(InputError, match="no results.json"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(InputError, match="unfinished"):
        load_run(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(InputError, match="not an ehr-r1 bench result file"):
        load_run(tmp_path)


def test_bounded_map_keeps_a_window_and_draws_lazily():
    import asyncio

    from graphkit.aio import bounded_map

    drawn: list[int] = []
    in_flight = peak = 0

    def items():
        for i in range(20):
            drawn.append(i)
            yield i

    async def work(i):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (i % 3))
        in_flight -= 1
        return i * i

    async def run():
        results = []
        async for item, result in bounded_map(work, items(), 4):
            results.append((item, result))
            assert len(drawn) <= len(results) + 4  # never more drawn than finished + window
        return results

    results = asyncio.run(run())
    assert sorted(results) == [(i, i * i) for i in range(20)] and peak == 4
