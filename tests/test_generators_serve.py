"""Once against a real OpenAI-compatible server: `transformers serve` on the tiny local model (slow).

The tiny model is random, so it writes no usable reasoning: what this proves is that the client
speaks to a real server (the request's ``model`` is the served path; thinking text comes back as
``reasoning_content`` and stays out of the case), counts its tokens, and that the pipeline turns
whatever comes back into rejections and direct cases without losing a sample.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from generators.config import load_config
from generators.pipeline import generate_cases
from tests.generators_data import many_inputs

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served_model(tmp_path_factory):
    pytest.importorskip("fastapi", reason="needs transformers[serving]")
    if shutil.which("transformers") is None:
        pytest.skip("the transformers CLI is not installed")
    from training.tiny import build_tiny_model

    model = build_tiny_model(tmp_path_factory.mktemp("serve") / "tiny")
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    with open(log, "w") as handle:
        server = subprocess.Popen(["transformers", "serve", str(model), "--host", "127.0.0.1", "--port", str(port),
                                   "--device", "cpu"], env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 240
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                pytest.fail(f"transformers serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield str(model), f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(30)


def test_generate_cases_against_transformers_serve(served_model, tmp_path):
    model, base_url = served_model
    samples, thinking, _ = many_inputs(tmp_path / "in", 3)
    config = load_config({
        "samples": [samples], "thinking": [thinking], "out": tmp_path / "out", "cache": tmp_path / "cache.sqlite",
        "verbalizer": {"kind": "openai", "model": model, "base_url": base_url, "concurrency": 2, "timeout": 300,
                       "params": {"temperature": 0.0, "max_tokens": 48}},
    })
    report = generate_cases(config)
    card = report.card
    assert card["totals"]["samples"] == 3 and card["totals"]["direct"] == 3
    assert card["usage"]["requests"] == 3 and card["usage"]["prompt_tokens"] > 0 and card["usage"]["completion_tokens"] > 0
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) + card["totals"]["reasoning"] == 3
    assert all(row["reason"] in ("malformed_sections", "empty_output", "low_gold_recall") for row in rejected)
    assert all("<think>" not in row["text"] for row in rejected)

