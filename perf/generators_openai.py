"""Requests per second of the OpenAI-compatible verbalizer against a zero-latency mock endpoint.

Target (issue 6): >= 100 requests/s at concurrency 32. The mock (generators/mockserver.py) runs in
its own process on 127.0.0.1, so it competes with the client for the same cores, as a local
server would. Peers in the same run: the plain ``openai.AsyncOpenAI`` client and a plain
``httpx`` client under the same semaphore (no cache, no retries, no rate limiter, no prompts),
i.e. what the transport alone achieves here; and the whole pipeline (prompts, cache, filters,
journal, case files) on the same endpoint.

    python -m perf.generators_openai [--quick] [--only NAME ...] [--cpus 2]
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perf.harness import Case, main_for

SUITE = "generators_openai"
REPO = Path(__file__).resolve().parents[1]


class _Mock:
    """The mock endpoint as a separate process (a thread would share the client's interpreter lock)."""

    def __init__(self, responder: str = "echo"):
        self.process = subprocess.Popen([sys.executable, "-m", "generators.mockserver", "--model", "m",
                                         "--responder", responder], cwd=REPO, stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().strip()

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(10)


def _messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"request {i}: " + "x" * 2000}]


def run_verbalizer(requests: int, concurrency: int) -> dict:
    """ehr-r1's ChatEndpoint (cache on, in a temporary SQLite file) driven by OpenAIVerbalizer.stream."""
    import openai  # noqa: F401 - imported before the clock starts, as the peers do

    from generators.cache import ResponseCache
    from generators.inputs import CaseInput
    from generators.verbalizers.openai_compat import ChatEndpoint, EndpointConfig, OpenAIVerbalizer

    cases = [CaseInput(i, {"id": f"s{i}", "task": "diagnoses_icd", "input": f"## Admission [2180-01-01 00:00:00]\n"
                           f"- n: {i}\n" + "- x: y\n" * 200, "instruction": "Predict.", "output": "a",
                           "label": ["a"], "output_type": "set"}, None) for i in range(requests)]
    with tempfile.TemporaryDirectory() as tmp, _Mock() as url:
        endpoint = ChatEndpoint(EndpointConfig(url, "m", concurrency=concurrency), ResponseCache(Path(tmp) / "c.sqlite"))
        verbalizer = OpenAIVerbalizer(endpoint, knowledge=False)

        async def run():
            got = 0
            async for _, result in verbalizer.stream(cases):
                got += bool(result.texts)
            await verbalizer.aclose()
            return got

        started = time.perf_counter()
        ok = asyncio.run(run())
        seconds = time.perf_counter() - started
    return {"requests": requests, "ok": ok, "seconds": round(seconds, 3), "requests_per_s": round(requests / seconds, 1)}


def _rate(requests: int, concurrency: int, client, send) -> dict:
    """``send(client, i)`` for every request under a semaphore, against a fresh mock; the rate."""

    async def run(url):
        async with client(url) as opened:
            semaphore = asyncio.Semaphore(concurrency)

            async def one(i):
                async with semaphore:
                    return await send(opened, url, i)

            return sum(bool(r) for r in await asyncio.gather(*[one(i) for i in range(requests)]))

    with _Mock() as url:
        started = time.perf_counter()
        ok = asyncio.run(run(url))
        seconds = time.perf_counter() - started
    return {"requests": requests, "ok": ok, "seconds": round(seconds, 3), "requests_per_s": round(requests / seconds, 1)}


def run_plain_openai(requests: int, concurrency: int) -> dict:
    import openai

    def client(url):
        return openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0,
                                  http_client=openai.DefaultAsyncHttpxClient(trust_env=False))

    async def send(opened, url, i):
        response = await opened.chat.completions.create(model="m", messages=_messages(i))
        return response.choices[0].message.content

    return _rate(requests, concurrency, client, send)


def run_plain_httpx(requests: int, concurrency: int) -> dict:
    import openai

    from generators.verbalizers.openai_compat import _httpx_module

    httpx = _httpx_module(openai)

    def client(url):
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        return httpx.AsyncClient(trust_env=False, limits=limits, timeout=60)

    async def send(opened, url, i):
        response = await opened.post(f"{url}/chat/completions", json={"model": "m", "messages": _messages(i)})
        return json.loads(response.content)["choices"][0]["message"]["content"]

    return _rate(requests, concurrency, client, send)


def run_pipeline(samples: int, concurrency: int) -> dict:
    """`generate cases` end to end (prompts, cache, filters, journal, case files) on the mock endpoint."""
    sys.path.insert(0, str(REPO))
    import openai  # noqa: F401 - imported before the clock starts, as the peers do

    from generators.config import load_config
    from generators.pipeline import generate_cases
    from tests.generators_data import many_inputs

    with tempfile.TemporaryDirectory() as tmp, _Mock("compliant") as url:
        samples_path, thinking, _ = many_inputs(Path(tmp) / "in", samples)
        config = load_config({"samples": [samples_path], "thinking": [thinking], "out": Path(tmp) / "out",
                              "cache": Path(tmp) / "c.sqlite",
                              "verbalizer": {"kind": "openai", "model": "m", "base_url": url, "concurrency": concurrency}})
        started = time.perf_counter()
        report = generate_cases(config)
        seconds = time.perf_counter() - started
    kept = report.card["totals"]["reasoning"]
    return {"samples": samples, "reasoning_cases": kept, "seconds": round(seconds, 3),
            "samples_per_s": round(samples / seconds, 1)}


def cases(quick: bool = False) -> list[Case]:
    n = 500 if quick else 3000
    return [
        Case("verbalizer-c32", "perf.generators_openai:run_verbalizer", {"requests": n, "concurrency": 32},
             targets={"requests_per_s": ">= 100"},
             note="ehr-r1 OpenAIVerbalizer (cache, retries, limiter, prompt rendering) on a zero-latency mock"),
        Case("plain-openai-c32", "perf.generators_openai:run_plain_openai", {"requests": n, "concurrency": 32},
             peer_of="verbalizer-c32", note="openai.AsyncOpenAI + semaphore, nothing else"),
        Case("plain-httpx-c32", "perf.generators_openai:run_plain_httpx", {"requests": n, "concurrency": 32},
             peer_of="verbalizer-c32", note="the HTTP client alone: the transport's ceiling here"),
        Case("pipeline-c32", "perf.generators_openai:run_pipeline", {"samples": n // 3, "concurrency": 32},
             note="generate cases end to end: prompts, cache, filters, journal, case files, card"),
    ]


if __name__ == "__main__":
    main_for(__name__)
