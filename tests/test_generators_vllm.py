"""The vLLM verbalizer.

This machine has no GPU and no vLLM, so most tests here run our glue against a stand-in ``vllm``
module that records what it is asked (batches, sampling parameters, chat-template arguments) and
answers like ``LLM.chat``: they check batching, the cache and the mapping of outputs to samples,
not vLLM itself. ``test_real_engine_on_the_tiny_model`` (marked ``gpu``) runs the real engine.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from generators.cache import ResponseCache
from generators.config import load_config
from generators.mockserver import compliant_responder
from generators.pipeline import generate_cases
from generators.verbalizers.vllm_engine import EngineConfig, VLLMVerbalizer
from graphkit.errors import ConfigError, ExtraMissingError
from graphkit.extras import available
from tests.generators_data import many_inputs


class _Completion:
    def __init__(self, text: str):
        self.text = text
        self.token_ids = list(range(len(text) // 4))


class _RequestOutput:
    def __init__(self, conversation, n):
        text = compliant_responder({"messages": conversation})
        self.prompt_token_ids = list(range(len(conversation[-1]["content"]) // 4))
        self.outputs = [_Completion(text) for _ in range(n)]


def stand_in_vllm(calls: dict) -> types.ModuleType:
    module = types.ModuleType("vllm")

    class SamplingParams:
        def __init__(self, **kwargs):
            calls["sampling"] = kwargs
            self.n = kwargs.get("n", 1)

    class LLM:
        def __init__(self, **kwargs):
            calls["engine"] = kwargs
            calls["batches"] = []

        def chat(self, conversations, sampling_params, use_tqdm=True, chat_template_kwargs=None):
            calls["batches"].append(len(conversations))
            calls["chat_template_kwargs"] = chat_template_kwargs
            calls["use_tqdm"] = use_tqdm
            return [_RequestOutput(c, sampling_params.n) for c in conversations]

    module.LLM, module.SamplingParams = LLM, SamplingParams
    return module


def vllm_config(tmp_path: Path, samples: Path, thinking: Path, **verbalizer):
    return load_config({"samples": [samples], "thinking": [thinking], "out": tmp_path / "out",
                        "cache": tmp_path / "cache.sqlite",
                        "verbalizer": {"kind": "vllm", "model": "/models/qwen3", "batch_size": 4,
                                       "tensor_parallel_size": 2, "chat_template_kwargs": {"enable_thinking": False},
                                       "params": {"temperature": 0.5, "top_k": 20, "max_tokens": 2048}, **verbalizer}})


def test_cases_through_the_engine_glue_in_batches_with_the_cache(tmp_path, monkeypatch):
    calls: dict = {}
    monkeypatch.setitem(sys.modules, "vllm", stand_in_vllm(calls))
    samples, thinking, _ = many_inputs(tmp_path / "in", 10)
    report = generate_cases(vllm_config(tmp_path, samples, thinking))
    assert calls["engine"] == {"model": "/models/qwen3", "tensor_parallel_size": 2, "pipeline_parallel_size": 1,
                               "gpu_memory_utilization": 0.9, "dtype": "auto"}
    assert calls["sampling"] == {"n": 1, "temperature": 0.5, "top_k": 20, "max_tokens": 2048}
    assert calls["batches"] == [4, 4, 2] and calls["use_tqdm"] is False
    assert calls["chat_template_kwargs"] == {"enable_thinking": False}
    assert report.card["totals"]["reasoning"] == 10
    assert report.card["usage"]["requests"] == 10 and report.card["usage"]["completion_tokens"] > 0
    assert report.card["verbalizer"]["kind"] == "vllm"
    # the same prompts again (another output directory): every answer comes from the cache
    calls.clear()
    again = generate_cases(vllm_config(tmp_path, samples, thinking).model_copy(update={"out": tmp_path / "again"}))
    assert "batches" not in calls and again.card["usage"]["cache_hits"] == 10


def test_engine_settings_are_checked():
    with pytest.raises(ConfigError, match="not a vLLM sampling parameter"):
        VLLMVerbalizer(EngineConfig(model="m", params={"temprature": 0.5}))
    with pytest.raises(ConfigError, match="--gpu-memory-utilization"):
        VLLMVerbalizer(EngineConfig(model="m", gpu_memory_utilization=1.5))
    with pytest.raises(ConfigError, match="--model"):
        VLLMVerbalizer(EngineConfig(model=""))


@pytest.mark.skipif(available("vllm"), reason="vllm is installed here")
def test_without_the_extra_the_error_names_it(tmp_path):
    import asyncio

    from tests.generators_data import case_input, sample, thinking_graph

    verbalizer = VLLMVerbalizer(EngineConfig(model="m"), ResponseCache(None))
    case = case_input(sample("s", "diagnoses_icd", ["x"], record="r"), thinking_graph("s"))

    async def run():
        return [item async for item in verbalizer.stream([case])]

    with pytest.raises(ExtraMissingError) as error:
        asyncio.run(run())
    assert "pip install 'ehr-r1[vllm]'" in str(error.value)


@pytest.mark.gpu
def test_real_engine_on_the_tiny_model(tmp_path):
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from training.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny")
    samples, thinking, _ = many_inputs(tmp_path / "in", 4)
    config = vllm_config(tmp_path, samples, thinking, model=str(model), tensor_parallel_size=1,
                         gpu_memory_utilization=0.3, max_model_len=8192, params={"temperature": 0.0, "max_tokens": 64})
    report = generate_cases(config)
    # a random tiny model writes no well-formed reasoning: every candidate is rejected, never lost
    totals = report.card["totals"]
    assert totals["samples"] == 4 and totals["direct"] == 4 and totals["reasoning"] + sum(totals["rejected"].values()) == 4
    assert report.card["usage"]["completion_tokens"] > 0
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    assert all(row["reason"] in ("malformed_sections", "empty_output") for row in rejected)
