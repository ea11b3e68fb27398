"""An OpenAI-compatible chat endpoint as an evaluation backend (vLLM/SGLang server, transformers serve...).

Plain ``httpx`` (extra ``llm``) with bounded concurrency: the evaluator's own overhead stays far
below any real model's latency. Records go only to a loopback endpoint unless the user passed
``--allow-remote`` (graphkit.endpoint); a loopback endpoint is reached without environment proxies.

Risk tasks ask for one token with ``logprobs`` and ``top_logprobs`` and read P(yes) from them:

- the yes/no log-probabilities are gathered from the answer token's top list (token texts
  stripped and lowercased, so ``Yes`` and `` yes`` count as yes) and P(yes) is their softmax
  (``p_yes_source`` "logprobs");
- when only one of the two is in the list, the other gets the smallest listed probability, an
  upper bound ("logprobs_bound");
- when the endpoint returns no log-probabilities, the answer text decides: yes 1.0, no 0.0
  ("text"; AUROC then has only two levels);
- anything else (no yes/no at all) is a malformed answer: retried, then a failed sample.

With ``logit_bias=auto`` a bias of +100 on the yes/no tokens forces the answer token to be one of
them (the reference's restriction). It needs their token ids: from ``--model-option tokenizer=DIR``
or the server's ``/tokenize`` route (vLLM, SGLang); without either no bias is sent and the
rules above apply unchanged. The bias moves both answers equally, so P(yes) is the same with it.

Errors: 401/403/404 abort the run (every request would fail the same way); 400/413/422 fail that
sample at once (e.g. a prompt longer than the served context); timeouts, connection errors,
429 (honouring Retry-After), 5xx and malformed responses are retried with exponential backoff.
Endpoint error texts are never logged: servers echo prompts, and prompts hold records.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from bench.evaluate.backends.base import (
    GENERATE,
    NO,
    YES,
    Backend,
    Generation,
    Outcome,
    Request,
    answer_token_ids,
    p_yes_from_logprobs,
)
from bench.evaluate.spec import ModelSpec
from bench.metrics import parse_answer
from graphkit.aio import bounded_map
from graphkit.endpoint import check_endpoint, endpoint_host
from graphkit.errors import ConfigError, EndpointError
from graphkit.extras import require

log = logging.getLogger(__name__)

FATAL_STATUS = frozenset({401, 403, 404})
PERMANENT_STATUS = frozenset({400, 413, 422})
LOGIT_BIAS = 100
MAX_BACKOFF = 60.0


class _Malformed(Exception):
    """A response that cannot be scored (retried like a transport error)."""


class OpenAIBackend(Backend):
    def __init__(self, spec: ModelSpec, generation: Generation, *, allow_remote: bool = False, concurrency: int = 32):
        self.spec = spec
        self.generation = generation
        self.concurrency = concurrency
        self.loopback = check_endpoint(spec.target, allow_remote, purpose="the evaluator", option="--model")
        self.model = spec.model
        self.retries = int(spec.option("retries"))
        self.backoff = float(spec.option("backoff"))
        self.top_logprobs = int(spec.option("top_logprobs"))
        self.template_kwargs = bool(spec.option("template_kwargs"))
        self._client = None
        self._httpx = None
        self._bias: dict[str, int] | None = None
        self._bias_resolved = False
        self._bias_lock: asyncio.Lock | None = None
        self._paused_until = 0.0

    def describe(self) -> dict[str, Any]:
        where = self.spec.target if self.loopback else endpoint_host(self.spec.target, option="--model")
        return {"endpoint": where, "local": self.loopback, "served_model": self.model,
                "logit_bias": self._bias is not None if self._bias_resolved else None}

    # ------------------------------------------------------------------ connection
    async def _start(self) -> None:
        """Open the client and learn the served model name (once, before any request)."""
        if self._client is None:
            httpx = require("httpx", "llm", "the OpenAI-compatible evaluator")
            self._httpx = httpx
            key_env = self.spec.option("api_key_env")
            headers = {}
            if key_env:
                import os

                key = os.environ.get(key_env)
                if not key:
                    raise ConfigError("names an environment variable that is not set", where="--model-option api_key_env",
                                      value=key_env, fix=f"export {key_env}=<your key>")
                headers["Authorization"] = f"Bearer {key}"
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            # a local endpoint is reached directly: no environment proxy may relay the records
            self._client = httpx.AsyncClient(base_url=self.spec.target + "/", headers=headers, limits=limits,
                                             timeout=float(self.spec.option("timeout")), trust_env=not self.loopback)
            self._bias_lock = asyncio.Lock()
            if self.model is None:
                self.model = await self._only_model()

    async def _only_model(self) -> str:
        try:
            response = await self._client.get("models")
            names = [m["id"] for m in response.json()["data"]] if response.status_code == 200 else []
        except (self._httpx.HTTPError, ValueError, KeyError, TypeError):
            names = []
        if len(names) != 1:
            raise ConfigError("the SPEC names no model and the server does not serve exactly one",
                              where="option --model", value=names[:10],
                              fix=f"write openai:{self.spec.target}@MODEL with the served model name")
        return names[0]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ------------------------------------------------------------------ yes/no token ids
    async def _logit_bias(self) -> dict[str, int] | None:
        async with self._bias_lock:
            if not self._bias_resolved:
                self._bias = await self._resolve_bias()
                self._bias_resolved = True
                log.info("risk tasks: %s", "yes/no logit bias on" if self._bias else "no logit bias (token ids unknown)")
        return self._bias

    async def _resolve_bias(self) -> dict[str, int] | None:
        if self.spec.option("logit_bias") == "off":
            return None
        path = self.spec.option("tokenizer")
        if path:
            transformers = require("transformers", "train", "reading the yes/no token ids")
            ids = answer_token_ids(transformers.AutoTokenizer.from_pretrained(path))
            return {str(i): LOGIT_BIAS for i in ids}
        ids = []
        root = self.spec.target.removesuffix("/v1")
        for word in (YES, NO):
            try:
                response = await self._client.post(f"{root}/tokenize", json={"model": self.model, "prompt": word,
                                                                               "add_special_tokens": False})
                tokens = response.json().get("tokens") if response.status_code == 200 else None
            except (self._httpx.HTTPError, ValueError, AttributeError):
                tokens = None
            if not tokens or not isinstance(tokens[0], int):
                return None
            ids.append(tokens[0])
        return None if ids[0] == ids[1] else {str(i): LOGIT_BIAS for i in ids}

    # ------------------------------------------------------------------ requests
    async def _body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": request.messages,
                                "temperature": self.generation.temperature, "seed": self.generation.seed}
        if request.mode == GENERATE:
            body["max_tokens"] = self.generation.max_new_tokens
        else:
            body.update(max_tokens=1, logprobs=True, top_logprobs=self.top_logprobs)
            bias = await self._logit_bias()
            if bias:
                body["logit_bias"] = bias
        if self.template_kwargs:
            body["chat_template_kwargs"] = {"enable_thinking": request.thinking}
        return body

    async def _one(self, request: Request) -> Outcome:
        client, httpx = self._client, self._httpx
        body = await self._body(request)
        problem = "no attempt made"
        attempts = 0
        for attempt in range(self.retries + 1):
            while (wait := self._paused_until - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            attempts += 1
            delay = min(MAX_BACKOFF, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
            try:
                response = await client.post("chat/completions", json=body)
            except httpx.TimeoutException:
                problem = "timed out"
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__})"
            else:
                status = response.status_code
                if status in FATAL_STATUS:
                    raise EndpointError(f"the endpoint refused the request (HTTP {status})", where="option --model",
                                        value=self.model,
                                        fix="check the served model name and the API key (--model-option api_key_env=NAME)")
                if status in PERMANENT_STATUS:
                    return Outcome(error=f"endpoint rejected the prompt (HTTP {status})", attempts=attempts)
                if status == 200:
                    try:
                        outcome = self._parse(response.json(), request)
                    except (_Malformed, ValueError) as exc:
                        problem = f"malformed response ({exc})" if isinstance(exc, _Malformed) else "malformed response (not JSON)"
                    else:
                        outcome.attempts = attempts
                        return outcome
                else:
                    problem = f"HTTP {status}"
                    if status == 429:
                        delay = _retry_after(response, delay)
                        self._paused_until = max(self._paused_until, time.monotonic() + delay)
            if attempt < self.retries:
                log.debug("request failed (%s); retry %d in %.2f s", problem, attempt + 1, delay)
                await asyncio.sleep(delay)
        log.warning("a sample failed after %d attempts (%s); it is recorded as failed", attempts, problem)
        return Outcome(error=f"{problem} after {attempts} attempts", attempts=attempts)

    @staticmethod
    def _parse(payload: Any, request: Request) -> Outcome:
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise _Malformed("no choices")
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise _Malformed("no message")
        content = message.get("content")
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if not isinstance(content, str) and not isinstance(reasoning, str):
            raise _Malformed("no content")
        text = content if isinstance(content, str) else ""
        if isinstance(reasoning, str) and "</think>" not in text:
            # a reasoning parser split the thinking off: put it back where scoring expects it
            text = f"<think>\n{reasoning}\n</think>\n\n{text}" if isinstance(content, str) else f"<think>\n{reasoning}"
        if request.mode == GENERATE:
            return Outcome(text=text)
        p_yes, source = _p_yes(choice.get("logprobs"))
        if p_yes is None:
            answer = parse_answer(text, thinking=False)
            first = answer[0] if answer else None
            if first not in (YES, NO):
                raise _Malformed("no yes/no answer")
            p_yes, source = (1.0 if first == YES else 0.0), "text"
        return Outcome(text=text, p_yes=p_yes, p_yes_source=source)

    async def stream(self, requests: Iterable[Request]) -> AsyncIterator[tuple[Request, Outcome]]:
        await self._start()
        async for request, outcome in bounded_map(self._one, requests, self.concurrency):
            yield request, outcome


def _p_yes(logprobs: Any) -> tuple[float | None, str | None]:
    """P(yes) from the first answer token's log-probabilities (see the module doc), or (None, None)."""
    try:
        first = logprobs["content"][0]
        candidates = [first, *(first.get("top_logprobs") or [])]
    except (TypeError, KeyError, IndexError, AttributeError):
        return None, None
    listed: dict[str, float] = {}  # the chosen token is usually listed twice
    for entry in candidates:
        token, value = (entry.get("token"), entry.get("logprob")) if isinstance(entry, dict) else (None, None)
        if isinstance(token, str) and isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
            listed[token] = float(value)
    by_answer: dict[str, list[float]] = {YES: [], NO: []}
    for token, value in listed.items():
        word = token.strip().lower()
        if word in by_answer:
            by_answer[word].append(value)
    if not by_answer[YES] and not by_answer[NO]:
        return None, None
    source = "logprobs"
    for word in (YES, NO):
        if not by_answer[word]:
            by_answer[word].append(min(listed.values()))
            source = "logprobs_bound"
    return p_yes_from_logprobs(_logsumexp(by_answer[YES]), _logsumexp(by_answer[NO])), source


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _retry_after(response: Any, default: float) -> float:
    value = response.headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else default
    except ValueError:
        return default
