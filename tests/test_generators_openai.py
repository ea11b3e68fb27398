"""The OpenAI-compatible verbalizer against a mock OpenAI-compatible server on 127.0.0.1.

Retries (5xx, 429 with Retry-After, bodies that are not JSON, no choices, dropped connections),
timeouts, permanent and fatal errors, malformed model output, the cache, the concurrency bound,
the rate limit, token accounting, the judge, and a kill -9 in the middle of a run with a resume
that loses nothing and duplicates nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generators.cache import ResponseCache
from generators.config import load_config
from generators.mockserver import Fault, MockOpenAIServer, compliant_responder
from generators.pipeline import generate_cases
from generators.prompt import prompt_gold
from generators.verbalizers.openai_compat import ChatEndpoint, EndpointConfig
from graphkit.errors import EndpointError
from tests.generators_data import CIRRHOSIS, COPD, many_inputs, well_formed

MESSAGES = [{"role": "user", "content": "hello"}]


def complete(server: MockOpenAIServer, *, cache: ResponseCache | None = None, n: int = 1, **options):
    options = {"max_retries": 5, "backoff": 0.01, "timeout": 5, **options}

    async def run():
        endpoint = ChatEndpoint(EndpointConfig(server.base_url, "m", **options), cache if cache is not None else ResponseCache(None))
        try:
            return await endpoint.complete(MESSAGES, n)
        finally:
            await endpoint.aclose()

    return asyncio.run(run())


def config(tmp_path: Path, server: MockOpenAIServer, samples: Path, thinking: Path, *, out: str = "out", **settings):
    verbalizer = {"kind": "openai", "model": "m", "base_url": server.base_url, "backoff": 0.01, "timeout": 5,
                  **settings.pop("verbalizer", {})}
    return load_config({"samples": [samples], "thinking": [thinking], "out": tmp_path / out,
                        "cache": tmp_path / "cache.sqlite", "verbalizer": verbalizer, **settings})


def sample_number(prompt: str) -> int:
    """The number many_inputs writes into each sample's record."""
    return int(re.search(r"- n: (\d+)", prompt).group(1))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("fault", [
    Fault("status", 500), Fault("status", 503), Fault("status", 429, retry_after=0.05), Fault("garbage"),
    Fault("no_choices"), Fault("drop"),
], ids=["500", "503", "429", "not-json", "no-choices", "dropped"])
def test_transient_failures_are_retried(fault):
    with MockOpenAIServer(model="m", fault=lambda number, body: fault if number <= 2 else None) as server:
        result = complete(server)
    assert result.error is None and result.texts
    assert (result.usage.requests, result.usage.retries) == (3, 2)
    assert server.requests == 3


def test_retry_after_pauses_before_the_next_attempt():
    with MockOpenAIServer(model="m", fault=lambda n, b: Fault("status", 429, retry_after=0.4) if n == 1 else None) as server:
        start = time.perf_counter()
        result = complete(server, backoff=0.0)
    assert result.texts and time.perf_counter() - start >= 0.4


def test_a_hanging_request_times_out_and_is_retried():
    with MockOpenAIServer(model="m", fault=lambda n, b: Fault("hang", seconds=5) if n == 1 else None) as server:
        start = time.perf_counter()
        result = complete(server, timeout=0.3)
    assert result.error is None and result.usage.retries == 1
    assert time.perf_counter() - start < 3


def test_a_request_failing_every_attempt_is_left_for_the_next_run():
    with MockOpenAIServer(model="m", fault=lambda n, b: Fault("hang", seconds=5)) as server:
        result = complete(server, timeout=0.2, max_retries=1)
    assert not result.texts and not result.permanent
    assert result.error == "timed out after 0.2 s after 2 attempts"


def test_a_rejected_prompt_is_permanent_and_a_wrong_model_is_fatal():
    with MockOpenAIServer(model="m", fault=lambda n, b: Fault("status", 400)) as server:
        result = complete(server)
    assert result.permanent and "HTTP 400" in result.error and server.requests == 1
    with MockOpenAIServer(model="the-served-path") as server:  # the request's model must equal the served one
        with pytest.raises(EndpointError) as error:
            complete(server)
    assert "HTTP 404" in str(error.value) and "--model" in str(error.value)


def test_reasoning_content_is_kept_out_and_usage_is_counted():
    with MockOpenAIServer(model="m", reasoning_content="private chain of thought") as server:
        cache = ResponseCache(None)
        result = complete(server, cache=cache, n=2)
    assert len(result.texts) == 2
    assert all("private chain" not in text for text in result.texts)
    assert result.usage.prompt_tokens == 1 and result.usage.completion_tokens > 0


def test_the_cache_answers_a_repeated_request_without_the_server(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with MockOpenAIServer(model="m") as server:
        first = complete(server, cache=cache)
        again = complete(server, cache=ResponseCache(tmp_path / "cache.sqlite"))
        other_params = complete(server, cache=cache, params={"temperature": 0.9})
    assert server.requests == 2  # the first call and the one with other parameters
    assert again.texts == first.texts and again.usage.cache_hits == 1 and again.usage.requests == 0
    assert again.usage.completion_tokens == first.usage.completion_tokens
    assert other_params.usage.cache_hits == 0


def test_concurrency_is_bounded_and_the_rate_limited():
    async def many(url, count, **options):
        endpoint = ChatEndpoint(EndpointConfig(url, "m", **options), ResponseCache(None))
        try:
            return await asyncio.gather(*[endpoint.complete([{"role": "user", "content": str(i)}]) for i in range(count)])
        finally:
            await endpoint.aclose()

    with MockOpenAIServer(model="m", latency=0.05) as server:
        asyncio.run(many(server.base_url, 24, concurrency=4))
    assert 1 < server.max_in_flight <= 4
    with MockOpenAIServer(model="m") as server:
        start = time.perf_counter()
        asyncio.run(many(server.base_url, 6, rps=10))
    assert time.perf_counter() - start >= 0.45  # 6 starts spaced 0.1 s apart


def test_cases_from_a_compliant_model_pass_and_count_their_tokens(tmp_path):
    samples, thinking, _ = many_inputs(tmp_path / "in", 6)
    with MockOpenAIServer(compliant_responder, model="m") as server:
        report = generate_cases(config(tmp_path, server, samples, thinking))
    cases = read_jsonl(tmp_path / "out" / "cases.jsonl")
    reasoning = [c for c in cases if c["kind"] == "reasoning"]
    assert len(reasoning) == 6 and len(cases) == 12
    think = reasoning[0]["messages"][-1]["content"]
    assert think.startswith("<think>\n## Extraction\n") and think.endswith(f"</think>\n\n{CIRRHOSIS}\n{COPD}")
    card = report.card
    assert card["usage"]["requests"] == 6 and card["usage"]["prompt_tokens"] > 0
    assert card["verbalizer"] == {"kind": "openai", "model": "m", "params": {"temperature": 0.5}, "local": True,
                                  "n": 1, "knowledge": True}
    # the prompt the model saw carried the gold and the thinking graph
    assert server.requests == 6


def test_malformed_model_output_is_rejected_with_its_reason(tmp_path):
    outputs = {
        "m-0000": "I cannot help with that.",
        "m-0001": "",
        "m-0002": well_formed([CIRRHOSIS, COPD], extra=" As the ground truth lists, these follow."),
        "m-0003": well_formed([CIRRHOSIS]),
        "m-0004": "<think>\nlet me think\n</think>\n\n" + well_formed([CIRRHOSIS, COPD]),
    }

    def responder(body):
        prompt = body["messages"][-1]["content"]
        return outputs[f"m-{sample_number(prompt):04d}"]

    samples, thinking, _ = many_inputs(tmp_path / "in", 5)
    with MockOpenAIServer(responder, model="m") as server:
        report = generate_cases(config(tmp_path, server, samples, thinking))
    rejected = {row["sample_id"]: row["reason"] for row in read_jsonl(tmp_path / "out" / "rejected.jsonl")}
    assert rejected == {"m-0000": "malformed_sections", "m-0001": "empty_output", "m-0002": "mentions_answer",
                        "m-0003": "low_gold_recall"}
    kept = [c for c in read_jsonl(tmp_path / "out" / "cases.jsonl") if c["kind"] == "reasoning"]
    assert [c["sample_id"] for c in kept] == ["m-0004"]
    assert "let me think" not in kept[0]["messages"][-1]["content"]
    assert report.card["totals"]["rejected"] == {"empty_output": 1, "low_gold_recall": 1, "malformed_sections": 1,
                                                 "mentions_answer": 1}


def test_n_candidates_keep_the_first_that_passes(tmp_path):
    samples, thinking, _ = many_inputs(tmp_path / "in", 1)
    answers = iter(["junk", well_formed([CIRRHOSIS, COPD])])

    def responder(body):
        return next(answers)

    with MockOpenAIServer(responder, model="m") as server:
        # the mock answers n identical choices per request; one request per sample
        report = generate_cases(config(tmp_path, server, samples, thinking, verbalizer={"n": 2}))
    assert server.requests == 1
    assert report.card["totals"]["rejected"] == {"malformed_sections": 2}


def test_permanent_rejections_are_recorded_and_the_run_completes(tmp_path):
    samples, thinking, _ = many_inputs(tmp_path / "in", 3)
    with MockOpenAIServer(compliant_responder, model="m",
                          fault=lambda n, body: Fault("status", 413) if "- n: 1\n" in body["messages"][-1]["content"] + "\n" else None) as server:
        report = generate_cases(config(tmp_path, server, samples, thinking))
    assert report.card["totals"]["reasoning"] == 2
    assert report.card["totals"]["rejected"] == {"endpoint_rejected": 1}


def test_failed_samples_are_retried_by_the_next_run(tmp_path):
    samples, thinking, _ = many_inputs(tmp_path / "in", 4)
    hang = lambda n, body: Fault("hang", seconds=3) if "- n: 2\n" in body["messages"][-1]["content"] + "\n" else None  # noqa: E731
    with MockOpenAIServer(compliant_responder, model="m", fault=hang) as server:
        with pytest.raises(EndpointError) as error:
            generate_cases(config(tmp_path, server, samples, thinking, verbalizer={"timeout": 0.2, "max_retries": 1}))
    assert "1 sample(s)" in str(error.value) and "rerun" in str(error.value)
    assert not (tmp_path / "out" / "cases.jsonl").exists()
    with MockOpenAIServer(compliant_responder, model="m") as server:
        report = generate_cases(config(tmp_path, server, samples, thinking))
    assert server.requests == 1  # only the failed sample; the others came from the journal
    assert report.shards[0].resumed == 3 and report.card["totals"]["reasoning"] == 4


def test_the_judge_rederives_the_answer_blind(tmp_path):
    samples, thinking, _ = many_inputs(tmp_path / "in", 4)

    def verbalizer(body):
        prompt = body["messages"][-1]["content"]
        number = sample_number(prompt)
        return well_formed(prompt_gold(prompt), extra=f" Case {number}.")

    def judge(body):
        prompt = body["messages"][-1]["content"]
        assert "Ground Truth" not in prompt and "Final Results" not in prompt and "Asparate" not in prompt
        number = int(prompt.split("Case ")[1].split(".")[0])
        return f"{CIRRHOSIS}\n{COPD}" if number % 2 == 0 else "Pneumonia"

    with MockOpenAIServer(verbalizer, model="m") as server, MockOpenAIServer(judge, model="judge") as judge_server:
        report = generate_cases(config(tmp_path, server, samples, thinking, filters={
            "judge": {"model": "judge", "base_url": judge_server.base_url}}))
    assert judge_server.requests == 4
    totals = report.card["totals"]
    assert totals["reasoning"] == 2 and totals["rejected"] == {"rederive_failed": 2}
    rejected = read_jsonl(tmp_path / "out" / "rejected.jsonl")
    assert sorted(r["sample_id"] for r in rejected) == ["m-0001", "m-0003"]
    assert rejected[0]["detail"] == "judge recovered 0/2 gold items"


KILL_SCRIPT = """
import sys
from ehr_r1.cli import main
sys.argv = ["ehr-r1", *sys.argv[1:]]
main()
"""


def test_kill_and_resume_lose_nothing_and_duplicate_nothing(tmp_path):
    n = 40
    samples, thinking, _ = many_inputs(tmp_path / "in", n)
    out = tmp_path / "out"
    with MockOpenAIServer(compliant_responder, model="m", latency=0.1) as server:
        args = [sys.executable, "-c", KILL_SCRIPT, "-w", str(tmp_path / "ws"), "generate", "cases",
                "--samples", str(samples), "--thinking", str(thinking), "--out", str(out), "--verbalizer", "openai",
                "--model", "m", "--base-url", server.base_url, "--concurrency", "4", "--cache", str(tmp_path / "c.sqlite")]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        journal = out / ".work" / "shard-00000-of-00001" / "journal.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline:
            if journal.exists() and journal.read_bytes().count(b"\n") >= 8:
                break
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
        journaled = journal.read_bytes().count(b"\n")
        assert 8 <= journaled < n, "the kill came too late to test a resume"
        requests_before = server.completed
        assert not (out / "cases.jsonl").exists()

        resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
    cases = read_jsonl(out / "cases.jsonl")
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)) == 2 * n
    assert sorted({c["sample_id"] for c in cases if c["kind"] == "reasoning"}) == [f"m-{i:04d}" for i in range(n)]
    # every answer the killed run received was kept (journal or cache): at most the requests that were
    # in flight at the kill (4) were asked again
    assert server.completed <= n + 4
    assert max(server.by_prompt.values()) <= 2
    card = json.loads((out / "card.json").read_text())
    assert card["totals"]["samples"] == n and card["totals"]["reasoning"] == n
    assert requests_before >= journaled
