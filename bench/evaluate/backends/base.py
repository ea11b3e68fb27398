"""What every model backend of the evaluator does: answer requests, one outcome each.

A request is one sample's prompt in one of two modes:

- ``generate``: a completion (decision tasks; thinking on or off);
- ``yes_no``: one answer token restricted to yes/no and P(yes) from its log-probabilities
  (risk tasks; thinking off).

An outcome carries the completion text, P(yes) and where it came from (``p_yes_source``), or an
error: a sample whose request failed after the backend's retries. Backends never raise for one
bad sample; they raise (an EndpointError) only when every request would fail the same way.
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

GENERATE, YES_NO = "generate", "yes_no"
YES, NO = "yes", "no"


@dataclass(frozen=True)
class Generation:
    """Settings of a run that decide what a model writes."""

    max_new_tokens: int = 4096
    temperature: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class Request:
    i: int  # the sample's position in the run
    messages: list[dict[str, str]]
    mode: str  # GENERATE | YES_NO
    thinking: bool


@dataclass
class Outcome:
    text: str | None = None
    p_yes: float | None = None
    p_yes_source: str | None = None  # "logits" | "logprobs" | "logprobs_bound" | "text"
    error: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


def p_yes_from_logprobs(yes: float, no: float) -> float:
    """softmax over the two answers: P(yes) = 1 / (1 + exp(log P(no) - log P(yes)))."""
    diff = no - yes
    if diff > 700:
        return 0.0
    return 1.0 / (1.0 + math.exp(diff))


def answer_token_ids(tokenizer: Any) -> tuple[int, int]:
    """Token ids of the answers ``yes`` and ``no``: the first token of each word, as the reference biases.

    A tokenizer that begins both words with the same token cannot tell them apart in one step.
    """
    from graphkit.errors import ConfigError

    ids = []
    for word in (YES, NO):
        tokens = tokenizer(word, add_special_tokens=False)["input_ids"]
        if not tokens:
            raise ConfigError("the tokenizer turns an answer word into no tokens", where="tokenizer", value=word,
                              fix="use the model's own tokenizer")
        ids.append(int(tokens[0]))
    if ids[0] == ids[1]:
        raise ConfigError("the tokenizer starts 'yes' and 'no' with the same token", where="tokenizer", value=ids[0],
                          fix="risk tasks need a tokenizer that tells the two answers apart in one token")
    return ids[0], ids[1]


def batches(requests: Iterable[Request], size: int) -> Iterator[list[Request]]:
    """Consecutive requests in lists of at most ``size`` that share mode and thinking."""
    batch: list[Request] = []
    for request in requests:
        if batch and (len(batch) >= size or (request.mode, request.thinking) != (batch[0].mode, batch[0].thinking)):
            yield batch
            batch = []
        batch.append(request)
    if batch:
        yield batch


class Backend(ABC):
    """One model answering evaluation requests."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What identifies the model (path fingerprint, served name), recorded in run.json."""

    @abstractmethod
    def stream(self, requests: Iterable[Request]) -> AsyncIterator[tuple[Request, Outcome]]:
        """Outcomes as they finish (in any order), drawing requests lazily."""

    async def aclose(self) -> None:  # noqa: B027 (most backends hold nothing to release)
        """Release connections or engines."""


class BatchBackend(Backend):
    """An in-process engine answering ``batch_size`` requests at a time in a worker thread."""

    batch_size: int

    @abstractmethod
    def _run(self, batch: list[Request]) -> list[Outcome]:
        """One outcome per request of a batch (same mode and thinking), in order."""

    async def stream(self, requests: Iterable[Request]) -> AsyncIterator[tuple[Request, Outcome]]:
        for batch in batches(requests, self.batch_size):
            outcomes = await asyncio.to_thread(self._run, batch)
            for request, outcome in zip(batch, outcomes, strict=True):
                yield request, outcome
