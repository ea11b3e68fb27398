"""`bench eval` against the loopback mock OpenAI-compatible server: scoring end to end with numbers
worked out by hand, P(yes) from log-probabilities and its fallbacks, retries, failed samples,
resume after kill -9, and the remote-endpoint guard."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from bench.evaluate import EvalConfig, evaluate, load_run, parse_model_spec
from generators.mockserver import Fault, MockOpenAIServer
from graphkit.errors import ConfigError, EndpointError, RemoteEndpointRefused
from tests.bench_eval_data import marker_of, write_build

FAST = {"backoff": 0.0, "retries": 2}


def answer_of(body: dict) -> str:
    content = body["messages"][-1]["content"]
    if "next event" in content:
        return "<think>\nthe drip is due\n</think>\n\nPrescriptions"
    return "<think>\nlabs again\n</think>\n\n- Sodium\nLACTATE\nsodium\nUrea"


def logprob_answer(p_yes: float, *, listed=("yes", "no")) -> dict:
    tops = [{"token": t, "logprob": math.log(p_yes if t.strip().lower() == "yes" else 1 - p_yes)} for t in listed]
    tops.append({"token": "maybe", "logprob": math.log(1e-4)})
    chosen = max(tops, key=lambda t: t["logprob"])
    return {"content": chosen["token"], "logprobs": {"content": [{**chosen, "top_logprobs": tops}]}}


def responder(body: dict):
    if body.get("max_tokens") == 1:
        return logprob_answer(marker_of(body))
    return answer_of(body)


def recorder(bodies: list[dict]):
    """`responder` that keeps every request body."""

    def recording(body: dict):
        bodies.append(body)
        return responder(body)

    return recording


@pytest.fixture()
def data(tmp_path):
    return write_build(tmp_path / "bench")


def spec(server, **options):
    return parse_model_spec(f"openai:{server.base_url}@m", {**FAST, **options})


def test_scores_match_hand_computed_numbers(data, tmp_path):
    with MockOpenAIServer(responder, model="m") as server:
        run = evaluate(data, spec(server), tmp_path / "run", EvalConfig(n_resamples=200))
    tasks = run.results["tasks"]
    lab = tasks["labevents"]["metrics"]
    # sample 11: {sodium, lactate, urea} vs {sodium, glucose}: P 1/3, R 1/2, F1 0.4; sample 12: nothing right
    assert lab["precision"]["point"] == pytest.approx(1 / 6)
    assert lab["recall"]["point"] == pytest.approx(1 / 4)
    assert lab["f1"]["point"] == pytest.approx(0.2)
    assert lab["f1"]["low"] <= 0.2 <= lab["f1"]["high"] and lab["f1"]["n_resamples"] == 200
    assert tasks["next_event"]["metrics"]["accuracy"]["point"] == pytest.approx(0.5)
    risk = tasks["Inpatient_Mortality"]
    assert risk["metrics"]["auroc"]["point"] == pytest.approx(0.75)
    assert risk["metrics"]["auprc"]["point"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert risk["metrics"]["accuracy"]["point"] == pytest.approx(0.5)
    assert risk["p_yes_sources"] == {"logprobs": 4} and risk["prevalence"] == 0.5
    assert run.results["summary"]["risk"]["mean_primary"] == pytest.approx(0.75)
    entries = {e["id"]: e for e in load_run(tmp_path / "run").predictions()}
    assert entries["labevents/test/011"]["answer"] == ["sodium", "lactate", "urea"]
    p = entries["Inpatient_Mortality/test/013"]["p_yes"]
    assert p == pytest.approx(0.4 / (0.4 + 0.6))
    assert run.asked == 8 and run.failed == 0


def test_requests_follow_the_task_definitions(data, tmp_path):
    bodies: list[dict] = []
    with MockOpenAIServer(recorder(bodies), model="m") as server:
        evaluate(data, spec(server), tmp_path / "run", EvalConfig(max_new_tokens=77, seed=5, n_resamples=10))
    risk = [b for b in bodies if "die during" in b["messages"][-1]["content"]]
    decision = [b for b in bodies if b not in risk]
    assert len(risk) == 4 and len(decision) == 4
    for body in risk:
        assert body["max_tokens"] == 1 and body["logprobs"] is True and body["top_logprobs"] == 20
        assert body["chat_template_kwargs"] == {"enable_thinking": False}
        assert body["messages"][-1]["content"].endswith("\n/no_think") and "logit_bias" not in body
    for body in decision:
        assert body["max_tokens"] == 77 and body["seed"] == 5 and body["temperature"] == 0.0
        assert body["chat_template_kwargs"] == {"enable_thinking": True}
        assert body["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
        user = body["messages"][-1]["content"]
        assert user.endswith("for the patients.\n/think") and user.startswith("## Patient Demographics")
        assert "Candidate" not in user


def test_candidate_mode_lists_the_sample_candidates(data, tmp_path):
    bodies: list[dict] = []
    with MockOpenAIServer(recorder(bodies), model="m") as server:
        evaluate(data, spec(server), tmp_path / "run", EvalConfig(candidates=True, tasks=("labevents", "Inpatient_Mortality"),
                                                                  n_resamples=10))
    users = {b["messages"][-1]["content"] for b in bodies}
    assert any('candidate list: ["Sodium", "Glucose", "Lactate", "Potassium"].\nAnswer with the predicted items only' in u
               for u in users)
    assert any('candidate list: ["yes", "no"].\nAnswer with exactly one option' in u and u.endswith("/no_think")
               for u in users)


@pytest.mark.parametrize(("listed", "source"), [(("Yes", " no"), "logprobs"), (("yes",), "logprobs_bound"),
                                                (("no",), "logprobs_bound")])
def test_p_yes_from_whatever_log_probabilities_come_back(data, tmp_path, listed, source):
    def partial(body):
        return logprob_answer(marker_of(body), listed=listed) if body.get("max_tokens") == 1 else answer_of(body)

    with MockOpenAIServer(partial, model="m") as server:
        run = evaluate(data, spec(server), tmp_path / "run", EvalConfig(tasks=("Inpatient_Mortality",), n_resamples=10))
    task = run.results["tasks"]["Inpatient_Mortality"]
    assert task["p_yes_sources"] == {source: 4} and task["n_failed"] == 0
    p = {e["id"]: e["p_yes"] for e in load_run(tmp_path / "run").predictions()}["Inpatient_Mortality/test/011"]
    if source == "logprobs":
        assert p == pytest.approx(0.9)
    elif listed == ("yes",):  # no is bounded by the smallest listed probability (1e-4)
        assert p == pytest.approx(0.9 / (0.9 + 1e-4))
    else:
        assert p == pytest.approx(1e-4 / (1e-4 + 0.1))


def test_without_log_probabilities_the_answer_text_decides(data, tmp_path):
    def text_only(body):
        if body.get("max_tokens") == 1:
            return "Yes" if marker_of(body) >= 0.5 else "no"
        return answer_of(body)

    with MockOpenAIServer(text_only, model="m") as server:
        run = evaluate(data, spec(server), tmp_path / "run", EvalConfig(tasks=("Inpatient_Mortality",), n_resamples=10))
    task = run.results["tasks"]["Inpatient_Mortality"]
    assert task["p_yes_sources"] == {"text": 4}
    # scores 1, 0, 0, 1 for labels yes, no, yes, no: one pair of each kind ranked right, one wrong, two tied
    assert task["metrics"]["auroc"]["point"] == pytest.approx(0.5)


def test_garbage_is_retried_then_a_counted_failure_never_a_zero(data, tmp_path):
    def garbage_for_one(number, body):
        content = body["messages"][-1]["content"]
        if "Labotary" in content and "- Item: Heparin\nGiven" in content:  # labevents sample 12
            return Fault("garbage")
        return None

    def no_yes_no(body):
        if body.get("max_tokens") == 1 and marker_of(body) == 0.2:
            return "perhaps"
        return responder(body)

    with MockOpenAIServer(no_yes_no, model="m", fault=garbage_for_one) as server:
        run = evaluate(data, spec(server), tmp_path / "run", EvalConfig(n_resamples=10))
        requests = server.requests
    lab = run.results["tasks"]["labevents"]
    # sample 12 (Heparin only) never gets a usable answer: 3 attempts, then failed and left out of the mean
    assert lab["n_failed"] == 1 and lab["n_scored"] == 1
    assert lab["failures"] == {"malformed response (not JSON) after 3 attempts": 1}
    assert lab["metrics"]["f1"]["point"] == pytest.approx(0.4)
    risk = run.results["tasks"]["Inpatient_Mortality"]
    assert risk["failures"] == {"malformed response (no yes/no answer) after 3 attempts": 1} and risk["n_scored"] == 3
    assert run.results["summary"]["failed"] == 2 and run.failed == 2
    assert requests == 8 + 2 * 2
    failed = [e for e in load_run(tmp_path / "run").predictions() if e["status"] == "failed"]
    assert {e["attempts"] for e in failed} == {3} and all(e["scores"] == {} for e in failed)

    # a resume asks the failed samples again and only them
    with MockOpenAIServer(responder, model="m") as server:
        again = evaluate(data, spec(server), tmp_path / "run", EvalConfig(n_resamples=10))
        assert server.requests == 2
    assert again.failed == 0 and again.asked == 2 and again.resumed == 6
    assert again.results["tasks"]["labevents"]["metrics"]["f1"]["point"] == pytest.approx(0.2)


def test_transient_errors_are_retried(data, tmp_path):
    faults = {1: Fault("status", status=503), 2: Fault("status", status=429, retry_after=0), 3: Fault("drop"),
              4: Fault("no_choices")}
    with MockOpenAIServer(responder, model="m", fault=lambda n, body: faults.get(n)) as server:
        run = evaluate(data, spec(server, retries=4), tmp_path / "run", EvalConfig(n_resamples=10), concurrency=1)
        assert server.requests == 8 + 4
    assert run.failed == 0
    assert max(e["attempts"] for e in load_run(tmp_path / "run").predictions()) == 5


def test_a_rejected_prompt_fails_at_once_and_a_refused_model_aborts(data, tmp_path):
    with MockOpenAIServer(responder, model="m", fault=lambda n, body: Fault("status", status=400) if n == 1 else None) as server:
        run = evaluate(data, spec(server), tmp_path / "run", EvalConfig(n_resamples=10), concurrency=1)
        assert server.requests == 8
    assert run.results["summary"]["failed"] == 1
    assert [e["attempts"] for e in load_run(tmp_path / "run").predictions() if e["status"] == "failed"] == [1]
    with MockOpenAIServer(responder, model="other") as server, pytest.raises(EndpointError) as error:
        evaluate(data, spec(server), tmp_path / "run2", EvalConfig(n_resamples=10))
    assert "HTTP 404" in str(error.value)


def test_reasoning_split_off_by_the_server_is_put_back(data, tmp_path):
    def answer_only(body):
        return "Sodium\nGlucose" if body.get("max_tokens") != 1 else responder(body)

    with MockOpenAIServer(answer_only, model="m", reasoning_content="lab trends") as server:
        run = evaluate(data, spec(server), tmp_path / "run", EvalConfig(tasks=("labevents",), n_resamples=10))
    entry = next(load_run(tmp_path / "run").predictions())
    assert entry["completion"].startswith("<think>\nlab trends\n</think>")
    assert run.results["tasks"]["labevents"]["metrics"]["f1"]["point"] == pytest.approx((1.0 + 0.0) / 2)


def test_the_model_name_comes_from_the_server_when_it_serves_one(data, tmp_path):
    with MockOpenAIServer(responder, model="only-one") as server:
        run = evaluate(data, parse_model_spec(f"openai:{server.base_url}", FAST), tmp_path / "run",
                       EvalConfig(tasks=("next_event",), n_resamples=10))
    assert run.results["model"]["backend"]["served_model"] == "only-one" and run.failed == 0


def test_remote_endpoints_are_refused_before_anything_is_read(data, tmp_path):
    with pytest.raises(RemoteEndpointRefused) as error:
        evaluate(data, parse_model_spec("openai:https://api.example.com/v1@gpt"), tmp_path / "run")
    assert "option --model" in str(error.value) and "--allow-remote" in str(error.value)
    assert not (tmp_path / "run").exists()


def test_the_cli_refuses_a_remote_endpoint_with_one_line(cli, data, tmp_path):
    result = cli("bench", "eval", "--data", data, "--model", "openai:http://10.1.2.3:8000/v1@m", "--out", tmp_path / "run")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1
    assert lines[0].startswith("error: option --model:") and "10.1.2.3" in lines[0]


def test_a_run_folder_resumes_only_the_same_run(data, tmp_path):
    with MockOpenAIServer(responder, model="m") as server:
        first = evaluate(data, spec(server), tmp_path / "run", EvalConfig(n_resamples=10))
        second = evaluate(data, spec(server), tmp_path / "run", EvalConfig(n_resamples=10))
        assert server.requests == 8
        with pytest.raises(ConfigError, match="another model, configuration or data"):
            evaluate(data, spec(server), tmp_path / "run", EvalConfig(n_resamples=10, max_new_tokens=5))
        fresh = evaluate(data, spec(server), tmp_path / "run", EvalConfig(n_resamples=10, max_new_tokens=5),
                         overwrite=True)
    assert second.asked == 0 and second.resumed == 8
    assert second.results["tasks"] == first.results["tasks"] and fresh.asked == 8


def test_kill_and_resume_loses_and_duplicates_nothing(data, tmp_path, repo_root):
    out = tmp_path / "run"
    with MockOpenAIServer(responder, model="m", latency=0.4) as server:
        command = [sys.executable, "-m", "ehr_r1.cli", "bench", "eval", "--data", str(data), "--out", str(out),
                   "--model", f"openai:{server.base_url}@m", "--concurrency", "2", "--bootstrap", "10"]
        process = subprocess.Popen(command, cwd=repo_root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        predictions = out / "predictions.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if predictions.exists() and len(predictions.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        lines_at_kill = len(predictions.read_text().splitlines())
        assert 3 <= lines_at_kill < 8
        with open(predictions, "a") as handle:  # the torn line a kill in mid-write leaves
            handle.write('{"i": 7, "id": "torn')
        run = evaluate(data, spec(server), out, EvalConfig(n_resamples=10))  # other retries: same run
        asked_twice = sum(1 for count in server.by_prompt.values() if count > 1)
    ids = [json.loads(line)["id"] for line in predictions.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 8
    assert run.resumed == lines_at_kill and run.asked == 8 - lines_at_kill
    assert asked_twice <= 2  # only what was in flight when killed
    assert run.results["tasks"]["Inpatient_Mortality"]["metrics"]["auroc"]["point"] == pytest.approx(0.75)


def test_the_cli_evaluates_and_prints_the_scores(cli, data, tmp_path):
    with MockOpenAIServer(responder, model="m") as server:
        result = cli("bench", "eval", "--data", data, "--model", f"openai:{server.base_url}@m", "--out", tmp_path / "run",
                     "--tasks", "labevents", "--tasks", "next_event", "--model-option", "retries=0", "--bootstrap", "20")
    assert result.exit_code == 0, result.output
    assert "labevents" in result.output and "0.200" in result.output and "4 sample(s) asked" in result.output
    assert set(load_run(tmp_path / "run").results["tasks"]) == {"labevents", "next_event"}
