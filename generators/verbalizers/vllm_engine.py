"""The LLM verbalizer on an in-process vLLM engine (extra ``vllm``, needs a GPU).

Prompts go to ``LLM.chat`` in batches (vLLM schedules a batch far better than one request at a
time); the engine runs in a worker thread so the event loop keeps writing finished cases. The
response cache is the one the OpenAI-compatible verbalizer uses, keyed the same way, so a run
may move between a vLLM server and the offline engine for the same model without paying twice.
Records never leave the process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from generators.cache import ResponseCache, cache_key
from generators.inputs import CaseInput
from generators.verbalizers.base import Usage, Verbalization, Verbalizer
from graphkit.errors import ConfigError
from graphkit.extras import require

log = logging.getLogger(__name__)

# generation parameters vLLM's SamplingParams takes (the same names as the OpenAI request)
_SAMPLING_PARAMS = frozenset({"temperature", "top_p", "top_k", "min_p", "max_tokens", "seed", "stop",
                              "presence_penalty", "frequency_penalty", "repetition_penalty"})


@dataclass
class EngineConfig:
    model: str  # a local path or hub id, as vllm.LLM takes it
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    dtype: str = "auto"
    batch_size: int = 256  # prompts per LLM.chat call
    params: dict[str, Any] = field(default_factory=dict)  # generation parameters (part of the cache key)
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"enable_thinking": false}

    def validate(self) -> None:
        if not self.model:
            raise ConfigError("the vLLM verbalizer needs a model", where="option --model", value=self.model,
                              fix="pass --model PATH_OR_HUB_ID")
        unknown = sorted(set(self.params) - _SAMPLING_PARAMS)
        if unknown:
            raise ConfigError("not a vLLM sampling parameter", where="generation parameters", value=unknown[0],
                              fix=f"use one of {', '.join(sorted(_SAMPLING_PARAMS))}")
        for name, value in (("--batch-size", self.batch_size), ("--tensor-parallel-size", self.tensor_parallel_size),
                            ("--pipeline-parallel-size", self.pipeline_parallel_size)):
            if value < 1:
                raise ConfigError("must be >= 1", where=f"option {name}", value=value, fix="pass a number >= 1")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError("must lie in (0, 1]", where="option --gpu-memory-utilization",
                              value=self.gpu_memory_utilization, fix="pass e.g. 0.9")


class VLLMVerbalizer(Verbalizer):
    kind = "vllm"

    def __init__(self, config: EngineConfig, cache: ResponseCache | None = None, *, n: int = 1,
                 knowledge: bool = True):
        super().__init__(knowledge=knowledge)
        config.validate()
        if n < 1:
            raise ConfigError("must be >= 1", where="option --n", value=n, fix="pass --n 1 or more")
        self.config = config
        self.cache = cache if cache is not None else ResponseCache(None)
        self.n = n
        self.needs_paths = knowledge
        self._llm = None
        self._sampling = None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.config.model, "params": dict(self.config.params), "n": self.n,
                "knowledge": self.knowledge,
                "chat_template_kwargs": dict(self.config.chat_template_kwargs)}

    def _engine(self):
        if self._llm is None:
            vllm = require("vllm", "vllm", "the vLLM verbalizer")
            options: dict[str, Any] = {
                "model": self.config.model,
                "tensor_parallel_size": self.config.tensor_parallel_size,
                "pipeline_parallel_size": self.config.pipeline_parallel_size,
                "gpu_memory_utilization": self.config.gpu_memory_utilization,
                "dtype": self.config.dtype,
            }
            if self.config.max_model_len:
                options["max_model_len"] = self.config.max_model_len
            log.info("starting vLLM on %s (tensor parallel %d)", self.config.model, self.config.tensor_parallel_size)
            self._llm = vllm.LLM(**options)
            self._sampling = vllm.SamplingParams(n=self.n, **self.config.params)
        return self._llm

    def _cache_key(self, messages: list[dict[str, str]]) -> str:
        return cache_key(self.config.model, messages, {**self.config.params, "n": self.n,
                                                       **({"chat_template_kwargs": self.config.chat_template_kwargs}
                                                          if self.config.chat_template_kwargs else {})})

    def _generate(self, conversations: list[list[dict[str, str]]]) -> list[tuple[list[str], dict[str, int]]]:
        llm = self._engine()
        kwargs: dict[str, Any] = {"sampling_params": self._sampling, "use_tqdm": False}
        if self.config.chat_template_kwargs:
            kwargs["chat_template_kwargs"] = dict(self.config.chat_template_kwargs)
        outputs = llm.chat(conversations, **kwargs)
        results = []
        for output in outputs:
            texts = [completion.text for completion in output.outputs]
            tokens = {
                "prompt_tokens": len(output.prompt_token_ids or ()),
                "completion_tokens": sum(len(completion.token_ids or ()) for completion in output.outputs),
            }
            results.append((texts, tokens))
        return results

    async def stream(self, cases: Iterable[CaseInput]) -> AsyncIterator[tuple[CaseInput, Verbalization]]:
        batch: list[tuple[CaseInput, list[dict[str, str]], str]] = []
        for case in cases:
            messages = self.messages(case)
            key = self._cache_key(messages)
            cached = self.cache.get(key)
            if cached is not None:
                usage = Usage(cache_hits=1)
                usage.add({k: v for k, v in cached.get("usage", {}).items() if k.endswith("_tokens")})
                yield case, Verbalization(list(cached["texts"]), usage)
                continue
            batch.append((case, messages, key))
            if len(batch) >= self.config.batch_size:
                async for item in self._run_batch(batch):
                    yield item
                batch = []
        if batch:
            async for item in self._run_batch(batch):
                yield item

    async def _run_batch(self, batch):
        results = await asyncio.to_thread(self._generate, [messages for _, messages, _ in batch])
        for (case, _, key), (texts, tokens) in zip(batch, results, strict=True):
            self.cache.put(key, {"texts": texts, "usage": tokens, "time": time.time()})
            usage = Usage(requests=1)
            usage.add(tokens)
            yield case, Verbalization(texts, usage)
