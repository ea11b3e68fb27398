"""The verbalizer interface: (record, thinking graph, gold) -> candidate reasoning texts.

Every verbalizer streams: it takes many case inputs and yields ``(input, Verbalization)`` as each
finishes, in any order, so the caller can write results as they arrive (and a killed job keeps
them). ``messages(case)`` is the chat prompt an LLM receives; the template verbalizer renders the
same prompt for preview but writes its text itself.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from generators.inputs import CaseInput
from generators.prompt import render_prompt


@dataclass
class Usage:
    """What a verbalization cost (summed per shard and in the dataset card)."""

    requests: int = 0  # requests sent to a model, retries included
    retries: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0

    def add(self, other: Usage | dict[str, int]) -> None:
        values = other if isinstance(other, dict) else asdict(other)
        for key, value in values.items():
            if hasattr(self, key):
                setattr(self, key, getattr(self, key) + int(value or 0))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Verbalization:
    texts: list[str]  # candidate reasoning texts, best first (n of them for an LLM)
    usage: Usage = field(default_factory=Usage)
    error: str | None = None  # set when no text could be obtained (the sample is left for a rerun)
    permanent: bool = False  # the error would recur on a rerun (e.g. the endpoint rejected the prompt)


class Verbalizer(abc.ABC):
    kind: ClassVar[str]
    #: without a thinking graph that has paths this verbalizer cannot write a case
    needs_paths: bool = True

    def __init__(self, *, knowledge: bool = True):
        self.knowledge = knowledge

    def messages(self, case: CaseInput) -> list[dict[str, str]]:
        """The request for one sample, as chat messages: one user turn, as the reference sends it."""
        prompt = render_prompt(case.record, case.instruction, case.gold_items, case.thinking, knowledge=self.knowledge)
        return [{"role": "user", "content": prompt}]

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """What produced the texts, for the dataset card and the config hash (no secrets)."""

    @abc.abstractmethod
    def stream(self, cases: Iterable[CaseInput]) -> AsyncIterator[tuple[CaseInput, Verbalization]]:
        """Yield ``(case, verbalization)`` for every case, as each finishes."""

    async def aclose(self) -> None:  # noqa: B027 - most verbalizers hold nothing to release
        """Release connections or engines."""
