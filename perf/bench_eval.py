"""The evaluator's own overhead: samples per second of ``bench eval`` against a zero-latency endpoint.

Target (issue 5): >= 200 samples/s. The mock endpoint (generators/mockserver.py, answering
decision completions and yes/no log-probabilities) runs in its own process on 127.0.0.1, so it
competes with the evaluator for the same cores, as a local server would. The measured call is
the whole ``evaluate()``: loading the samples, building prompts, the requests, scoring, the
journal line per sample, the bootstrap intervals (1000 resamples) and the result files. Half the
samples are a decision task, half a risk task; records are about 6k tokens (24k characters), the
size of a demo record. Peer in the same run: plain ``httpx`` posting the same request bodies
with the same number in flight (graphkit.aio.bounded_map) and doing nothing else: the transport's
ceiling here. ``samples_per_cpu_s`` (samples per CPU second of the measured process) is the rate
one idle core would give; on this shared machine the wall rate follows the load.

    python -m perf.bench_eval [--quick] [--only NAME ...] [--cpus 2]
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perf.harness import Case, main_for

SUITE = "bench_eval"
REPO = Path(__file__).resolve().parents[1]
SCRATCH = REPO / "perf" / "_scratch" / "bench_eval"
DECISION, RISK = "labevents", "Inpatient_Mortality"


def responder(body: dict):
    if body.get("max_tokens") == 1:
        tops = [{"token": "yes", "logprob": math.log(0.3)}, {"token": "no", "logprob": math.log(0.7)}]
        return {"content": "no", "logprobs": {"content": [{**tops[1], "top_logprobs": tops}]}}
    return "<think>\nthe labs repeat\n</think>\n\nSodium\nPotassium\nChloride"


def serve_mock() -> None:
    """The mock endpoint with `responder`, printing its URL (run as its own process)."""
    import threading

    from generators.mockserver import MockOpenAIServer

    with MockOpenAIServer(responder, model="m") as server:
        print(server.base_url, flush=True)
        threading.Event().wait()


class _Mock:
    def __enter__(self) -> str:
        self.process = subprocess.Popen([sys.executable, "-c", "from perf.bench_eval import serve_mock; serve_mock()"],
                                        cwd=REPO, stdout=subprocess.PIPE, text=True)
        return self.process.stdout.readline().strip()

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(10)


def _data_dir(samples: int, record_chars: int) -> Path:
    return SCRATCH / f"data-{samples}-{record_chars}"


def make_data(samples: int, record_chars: int) -> None:
    """A build-shaped folder: ``samples`` test rows, half labevents, half Inpatient_Mortality."""
    import polars as pl

    out = _data_dir(samples, record_chars)
    shutil.rmtree(out, ignore_errors=True)
    block = "## Laboratory Test Events [2180-01-01 08:00:00]\n| Item | Value |\n| ------ | ------ |\n| Sodium | 140 |\n\n"
    half = samples // 2
    for task, n in ((DECISION, half), (RISK, samples - half)):
        rows = []
        for i in range(n):
            record = f"## Patient Demographics\n- Age: {40 + i % 50}\n\n" + block * (record_chars // len(block))
            gold = ["Sodium", "Potassium"] if task == DECISION else ("yes" if i % 3 == 0 else "no")
            rows.append({"id": f"{task}/{i:07d}", "task": task, "family": "decision" if task == DECISION else "risk",
                         "split": "test", "input": record, "instruction": "Predict the next lab tests." if task == DECISION
                         else "Will the patient die?", "output": "x", "label": gold,
                         "output_type": "set" if task == DECISION else "binary", "task_version": 1})
        path = out / "data" / task / "test.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pl.DataFrame(rows).write_parquet(path)
    (out / "card.json").write_text(json.dumps({"config_hash": f"perf-{samples}-{record_chars}"}))


def run_eval(samples: int, concurrency: int, record_chars: int) -> dict:
    import httpx  # noqa: F401 - imported before the clock starts, as the peer does

    from bench.evaluate import EvalConfig, evaluate, parse_model_spec

    with tempfile.TemporaryDirectory() as tmp, _Mock() as url:
        started, cpu_started = time.perf_counter(), time.process_time()
        run = evaluate(_data_dir(samples, record_chars), parse_model_spec(f"openai:{url}@m"), Path(tmp) / "run",
                       EvalConfig(), concurrency=concurrency)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    # samples per CPU second of the evaluator alone: what the wall rate would be on an idle core
    return {"samples": samples, "failed": run.failed, "seconds": round(seconds, 3),
            "samples_per_s": round(samples / seconds, 1), "cpu_s": round(cpu, 3),
            "samples_per_cpu_s": round(samples / cpu, 1),
            "auroc": run.results["tasks"][RISK]["metrics"]["auroc"]["point"]}


def run_plain_httpx(samples: int, concurrency: int, record_chars: int) -> dict:
    import httpx
    import polars as pl

    from graphkit.aio import bounded_map

    bodies = []
    for task in (DECISION, RISK):
        frame = pl.read_parquet(_data_dir(samples, record_chars) / "data" / task / "test.parquet")
        for record, instruction in frame.select("input", "instruction").iter_rows():
            body = {"model": "m", "messages": [{"role": "user", "content": f"{record}\n{instruction}"}]}
            if task == RISK:
                body.update(max_tokens=1, logprobs=True, top_logprobs=20)
            bodies.append(body)

    async def run(url):
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(trust_env=False, limits=limits, timeout=60) as client:

            async def one(body):
                response = await client.post(f"{url}/chat/completions", json=body)
                return response.json()["choices"][0]["message"]["content"]

            return sum([bool(answer) async for _, answer in bounded_map(one, bodies, concurrency)])

    with _Mock() as url:
        started, cpu_started = time.perf_counter(), time.process_time()
        ok = asyncio.run(run(url))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"samples": samples, "ok": ok, "seconds": round(seconds, 3), "samples_per_s": round(samples / seconds, 1),
            "cpu_s": round(cpu, 3), "samples_per_cpu_s": round(samples / cpu, 1)}


def cases(quick: bool = False) -> list[Case]:
    samples = 500 if quick else 4000
    params = {"samples": samples, "concurrency": 32, "record_chars": 24_000}
    setup = {"setup": "perf.bench_eval:make_data", "setup_params": {"samples": samples, "record_chars": 24_000}}
    return [
        Case("eval-c32", "perf.bench_eval:run_eval", params, **setup, targets={"samples_per_s": ">= 200"},
             note="ehr-r1 bench eval end to end (prompts, requests, scoring, journal, bootstrap, result files) "
                  "on a zero-latency mock endpoint in its own process"),
        Case("plain-httpx-c32", "perf.bench_eval:run_plain_httpx", params, **setup, peer_of="eval-c32",
             note="the same request bodies through plain httpx, as many in flight, nothing else: the transport ceiling here"),
    ]


if __name__ == "__main__":
    main_for(__name__)
