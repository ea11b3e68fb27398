"""The LLM verbalizer for any OpenAI-compatible chat endpoint (vLLM server, local server, hosted API).

Async with bounded concurrency (a semaphore over requests in flight), an optional request-rate
limit, retries with exponential backoff and jitter (honouring ``Retry-After`` on 429, which also
pauses every worker), a per-request timeout, the on-disk response cache and token accounting.

Errors are sorted by what a rerun would do: a refused credential or an unknown model aborts the
run at once (every request would fail the same way); a prompt the endpoint rejects (400, 413,
422: e.g. longer than the model's context) is permanent for that sample and recorded as a
rejection; timeouts, connection errors, 429, 5xx and malformed responses are retried, and a
sample still failing after the retries is left for the next run. Error texts of the endpoint are
never logged, since servers echo prompts (and prompts hold records) in them.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from generators.cache import ResponseCache, cache_key
from generators.inputs import CaseInput
from generators.verbalizers.base import Usage, Verbalization, Verbalizer
from graphkit.aio import bounded_map
from graphkit.endpoint import check_endpoint
from graphkit.errors import ConfigError, EndpointError
from graphkit.extras import require

log = logging.getLogger(__name__)

# parameters the OpenAI client takes as arguments; anything else (top_k, chat_template_kwargs,
# min_p, repetition_penalty...) travels in the request body for servers that understand it
_CLIENT_PARAMS = frozenset({"temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stop",
                            "presence_penalty", "frequency_penalty"})
_FATAL_STATUS = frozenset({401, 403, 404})
_PERMANENT_STATUS = frozenset({400, 413, 422})


@dataclass
class EndpointConfig:
    base_url: str
    model: str
    api_key: str | None = None
    allow_remote: bool = False
    concurrency: int = 32
    rps: float | None = None  # requests per second over all workers; None = no limit
    max_retries: int = 5
    timeout: float = 600.0  # seconds per request
    backoff: float = 1.0  # first retry delay; doubles each attempt
    max_backoff: float = 60.0
    params: dict[str, Any] = field(default_factory=dict)  # generation parameters (part of the cache key)

    def validate(self) -> None:
        if not self.model:
            raise ConfigError("the endpoint needs a model name", where="option --model", value=self.model,
                              fix="pass --model as the server names it (vLLM / transformers serve: the served path)")
        for name, value, low in (("--concurrency", self.concurrency, 1), ("--max-retries", self.max_retries, 0)):
            if value < low:
                raise ConfigError(f"must be >= {low}", where=f"option {name}", value=value, fix=f"pass a number >= {low}")
        for name, value in (("--timeout", self.timeout), ("--rps", self.rps)):
            if value is not None and value <= 0:
                raise ConfigError("must be > 0", where=f"option {name}", value=value, fix="pass a positive number")


class RateLimiter:
    """Spaces request starts ``1/rps`` apart; ``pause`` holds every worker (after a 429)."""

    def __init__(self, rps: float | None):
        self.interval = 1.0 / rps if rps else 0.0
        self._next = 0.0
        self._paused_until = 0.0

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        while (wait := self._paused_until - loop.time()) > 0:
            await asyncio.sleep(wait)
        if not self.interval:
            return
        now = loop.time()
        slot = max(self._next, now)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, asyncio.get_running_loop().time() + seconds)


def _httpx_module(openai: Any):
    """httpx or httpx2, whichever the installed openai client is built on."""
    for cls in openai.DefaultAsyncHttpxClient.__mro__:
        root = cls.__module__.split(".")[0]
        if root in ("httpx", "httpx2"):
            return importlib.import_module(root)
    return importlib.import_module("httpx")


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


class ChatEndpoint:
    """One OpenAI-compatible chat model behind the cache, the limits and the retries."""

    def __init__(self, config: EndpointConfig, cache: ResponseCache | None = None, *, purpose: str = "the verbalizer"):
        config.validate()
        self.config = config
        self.cache = cache if cache is not None else ResponseCache(None)
        self.purpose = purpose
        self.loopback = check_endpoint(config.base_url, config.allow_remote, purpose=purpose)
        self._client = None
        self._semaphore: asyncio.Semaphore | None = None
        self._limiter = RateLimiter(config.rps)

    def describe(self) -> dict[str, Any]:
        """Model and parameters (what decides the text); never the key, never a remote URL's path."""
        return {"model": self.config.model, "params": dict(self.config.params), "local": self.loopback}

    def _ensure_client(self):
        if self._client is None:
            openai = require("openai", "llm", "the OpenAI-compatible verbalizer")
            httpx = _httpx_module(openai)
            limits = httpx.Limits(max_connections=self.config.concurrency,
                                  max_keepalive_connections=self.config.concurrency)
            # a local endpoint is reached directly: no environment proxy may relay the records
            http_client = openai.DefaultAsyncHttpxClient(limits=limits, trust_env=not self.loopback)
            self._client = openai.AsyncOpenAI(base_url=self.config.base_url, api_key=self.config.api_key or "EMPTY",
                                              max_retries=0, timeout=self.config.timeout, http_client=http_client)
            self._semaphore = asyncio.Semaphore(self.config.concurrency)
            self._openai = openai
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _request_kwargs(self, n: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in self.config.params.items():
            (kwargs if key in _CLIENT_PARAMS else extra)[key] = value
        if n != 1:
            kwargs["n"] = n
        if extra:
            kwargs["extra_body"] = extra
        return kwargs

    async def complete(self, messages: list[dict[str, str]], n: int = 1) -> Verbalization:
        """Up to ``n`` completion texts for ``messages`` (from the cache when it has them)."""
        key = cache_key(self.config.model, messages, {**self.config.params, "n": n})
        cached = self.cache.get(key)
        if cached is not None:
            usage = Usage(cache_hits=1)
            usage.add({k: v for k, v in cached.get("usage", {}).items() if k.endswith("_tokens")})
            return Verbalization(list(cached["texts"]), usage)
        client = self._ensure_client()
        openai = self._openai
        usage = Usage()
        last_problem = "no attempt made"
        async with self._semaphore:
            for attempt in range(self.config.max_retries + 1):
                await self._limiter.acquire()
                usage.requests += 1
                delay = min(self.config.max_backoff, self.config.backoff * 2**attempt) * (0.5 + random.random() / 2)
                try:
                    response = await client.chat.completions.create(model=self.config.model, messages=messages,
                                                                    **self._request_kwargs(n))
                except openai.APIStatusError as exc:
                    status = exc.status_code
                    if status in _FATAL_STATUS:
                        raise EndpointError(f"{self.purpose}'s endpoint refused the request (HTTP {status})",
                                            where="option --base-url / --model", value=self.config.model,
                                            fix="check the model name (it must equal the served one) and the API key") from None
                    if status in _PERMANENT_STATUS:
                        log.info("endpoint rejected a prompt (HTTP %s); the sample is recorded as rejected", status)
                        return Verbalization([], usage, error=f"endpoint rejected the prompt (HTTP {status})", permanent=True)
                    last_problem = f"HTTP {status}"
                    if status == 429:
                        wait = _retry_after(exc)
                        delay = wait if wait is not None else delay
                        self._limiter.pause(delay)
                except openai.APITimeoutError:
                    last_problem = f"timed out after {self.config.timeout:g} s"
                except openai.APIConnectionError as exc:
                    last_problem = f"connection failed ({type(exc.__cause__ or exc).__name__})"
                except (openai.APIResponseValidationError, ValueError):  # ValueError: a body that is not JSON
                    last_problem = "malformed response"
                else:
                    result = self._parse(response, usage)
                    if result is not None:
                        self.cache.put(key, {"texts": result.texts, "reasoning": result.reasoning,
                                             "usage": result.usage_tokens, "time": time.time()})
                        return Verbalization(result.texts, usage)
                    last_problem = "malformed response (no choices)"
                if attempt < self.config.max_retries:
                    usage.retries += 1
                    log.debug("request failed (%s); retry %d in %.2f s", last_problem, attempt + 1, delay)
                    await asyncio.sleep(delay)
        log.warning("a request failed after %d attempts (%s); the sample is left for the next run",
                    usage.requests, last_problem)
        return Verbalization([], usage, error=f"{last_problem} after {usage.requests} attempts")

    @staticmethod
    def _parse(response: Any, usage: Usage) -> _Parsed | None:
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            return None
        texts, reasoning = [], []
        for choice in choices:
            message = getattr(choice, "message", None)
            content = getattr(message, "content", None)
            texts.append(content if isinstance(content, str) else "")
            extra = getattr(message, "model_extra", None) or {}
            thought = getattr(message, "reasoning_content", None) or extra.get("reasoning_content")
            reasoning.append(thought if isinstance(thought, str) else None)
        tokens = {}
        reported = getattr(response, "usage", None)
        if reported is not None:
            tokens["prompt_tokens"] = int(getattr(reported, "prompt_tokens", 0) or 0)
            tokens["completion_tokens"] = int(getattr(reported, "completion_tokens", 0) or 0)
            details = getattr(reported, "completion_tokens_details", None)
            tokens["reasoning_tokens"] = int(getattr(details, "reasoning_tokens", 0) or 0) if details else 0
        usage.add(tokens)
        return _Parsed(texts, reasoning, tokens)


@dataclass
class _Parsed:
    texts: list[str]
    reasoning: list[str | None]
    usage_tokens: dict[str, int]


class OpenAIVerbalizer(Verbalizer):
    kind = "openai"

    def __init__(self, endpoint: ChatEndpoint, *, n: int = 1, knowledge: bool = True):
        super().__init__(knowledge=knowledge)
        if n < 1:
            raise ConfigError("must be >= 1", where="option --n", value=n, fix="pass --n 1 or more")
        self.endpoint = endpoint
        self.n = n
        self.needs_paths = knowledge

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.endpoint.describe(), "n": self.n, "knowledge": self.knowledge}

    async def _one(self, case: CaseInput) -> tuple[CaseInput, Verbalization]:
        return case, await self.endpoint.complete(self.messages(case), self.n)

    async def stream(self, cases: Iterable[CaseInput]) -> AsyncIterator[tuple[CaseInput, Verbalization]]:
        # a window of tasks, not one per sample: a million samples must not become a million tasks
        async for _, done in bounded_map(self._one, cases, 2 * self.endpoint.config.concurrency):
            yield done

    async def aclose(self) -> None:
        await self.endpoint.aclose()


def judge_asker(endpoint: ChatEndpoint):
    """``ask(prompt) -> answer text | None`` for the re-derivation filter."""

    async def ask(prompt: str) -> str | None:
        result = await endpoint.complete([{"role": "user", "content": prompt}], 1)
        return result.texts[0] if result.texts else None

    return ask

