"""Left truncation of a case's record to a token budget, keeping the latest events.

A serialized record (graphkit.ehr.serialize) is a header (demographics, previous discharge
summary, admission) then one block per event, each starting with a ``## `` heading; the
instruction follows the last block. The serializer already cuts records to a budget when it
builds them, but a case's text is rendered later (system prompt, chat template, answer), so
training re-fits the rendered case to its stage's length the same way: whole event blocks are
dropped from the oldest end, while the text before the first heading, the header blocks and the
newest block (which carries the instruction) always stay. No event is ever cut in half; a case
that still does not fit is reported as too long.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from graphkit.ehr.events import EHR_R1_DEMOGRAPHICS_NAME, EVENT_TABLES
from graphkit.errors import ConfigError

BLOCK_START = "\n## "
# headings of the blocks the serializer keeps whatever the budget (both record styles)
HEADER_NAMES = frozenset(
    {EHR_R1_DEMOGRAPHICS_NAME}
    | {name for table in ("admissions", "discharge")
       for name in (EVENT_TABLES[table].clean_name, EVENT_TABLES[table].ehr_r1_name) if name}
)


@dataclass(frozen=True)
class Truncation:
    messages: list[dict[str, Any]]
    n_tokens: int
    dropped_blocks: int
    fits: bool


def split_blocks(text: str) -> tuple[str, list[str]]:
    """``(preamble, blocks)``; ``preamble + "".join(blocks) == text`` and every block starts with ``\\n## ``."""
    start = text.find(BLOCK_START)
    if start < 0:
        return text, []
    preamble, rest = text[:start], text[start:]
    blocks = [BLOCK_START + part for part in rest[len(BLOCK_START):].split(BLOCK_START)]
    return preamble, blocks


def heading_name(block: str) -> str:
    """``Admission`` for a block starting ``\\n## Admission [2180-01-01 10:00:00]``."""
    title = block[len(BLOCK_START):].split("\n", 1)[0]
    return title.split(" [", 1)[0].strip()


def _record_turn(messages: list[dict[str, Any]]) -> int | None:
    """Index of the last user turn (the one holding the record)."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index]["role"] == "user":
            return index
    return None


class Truncator:
    """Counts tokens exactly as training renders them (same tokenizer, chat template and mode).

    Made for millions of cases: ``fit_many`` tokenizes a batch at once in the Rust tokenizer, a
    case that fits costs one tokenization (as TRL's own preparation does), and one that does not
    gets its blocks' sizes from the same tokenization's offsets plus one confirming count.
    """

    def __init__(self, tokenizer: Any, budget: int, *, add_generation_prompt: bool, chat_template: str | None = None):
        self.tokenizer = tokenizer
        self.budget = budget
        self.add_generation_prompt = add_generation_prompt
        self.chat_template = chat_template
        self._backend = getattr(tokenizer, "backend_tokenizer", None)
        if self._backend is None:
            raise ConfigError("left truncation needs a fast (Rust) tokenizer", where="tokenizer",
                              value=type(tokenizer).__name__, fix="use the model's tokenizer.json (all Qwen3 models have one)")

    def render(self, messages: list[dict[str, Any]]) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=self.add_generation_prompt, chat_template=self.chat_template
        )

    def _encode(self, texts: list[str]) -> list[Any]:
        """Per text, a tokenizers ``Encoding``: len() is the token count, ``offsets`` the character spans."""
        return self._backend.encode_batch(texts, add_special_tokens=False)

    def count(self, messages: list[dict[str, Any]]) -> int:
        return len(self._encode([self.render(messages)])[0])

    def __call__(self, messages: list[dict[str, Any]]) -> Truncation:
        return self.fit_many([messages])[0]

    def fit_many(self, batch: list[list[dict[str, Any]]]) -> list[Truncation]:
        texts = [self.render(messages) for messages in batch]
        results: list[Truncation | None] = [None] * len(batch)
        plans: list[tuple[int, _Plan]] = []
        for index, (messages, text, encoding) in enumerate(zip(batch, texts, self._encode(texts), strict=True)):
            n_tokens = len(encoding)
            if n_tokens <= self.budget:
                results[index] = Truncation(messages, n_tokens, 0, True)
                continue
            plan = self._plan(messages, text, encoding)
            if plan is None:
                results[index] = Truncation(messages, n_tokens, 0, False)
            else:
                plans.append((index, plan))
        if plans:
            encodings = self._encode([self.render(plan.candidate()) for _, plan in plans])
            for (index, plan), encoding in zip(plans, encodings, strict=True):
                results[index] = self._confirm(plan, len(encoding))
        return results  # type: ignore[return-value]

    def _plan(self, messages: list[dict[str, Any]], text: str, encoding: Any) -> _Plan | None:
        turn = _record_turn(messages)
        if turn is None:
            return None
        content = messages[turn]["content"]
        preamble, blocks = split_blocks(content)
        droppable = [i for i in range(len(blocks) - 1) if heading_name(blocks[i]) not in HEADER_NAMES]
        if not droppable:
            return None
        sizes = self._block_sizes(text, content, preamble, blocks, encoding)
        plan = _Plan(messages, turn, preamble, blocks, droppable)
        excess = len(encoding) - self.budget
        while plan.dropped < len(droppable) and excess > 0:
            excess -= sizes[droppable[plan.dropped]]
            plan.dropped += 1
        return plan

    def _block_sizes(self, text: str, content: str, preamble: str, blocks: list[str], encoding: Any) -> list[int]:
        """Tokens of each block, from where the rendered text's tokens start (the template copies
        the content verbatim); tokenized block by block when it does not."""
        base = text.rfind(content)
        if base < 0:
            return [len(e) for e in self._encode(blocks)]
        starts = [start for start, _ in encoding.offsets]
        bounds = [base + len(preamble)]
        for block in blocks:
            bounds.append(bounds[-1] + len(block))
        cuts = [bisect_left(starts, bound) for bound in bounds]
        return [after - before for before, after in zip(cuts, cuts[1:], strict=False)]

    def _confirm(self, plan: _Plan, n_tokens: int) -> Truncation:
        # BPE merges across a removed boundary can shift the total by a token or two
        while n_tokens > self.budget and plan.dropped < len(plan.droppable):
            plan.dropped += 1
            n_tokens = self.count(plan.candidate())
        return Truncation(plan.candidate(), n_tokens, plan.dropped, n_tokens <= self.budget)


@dataclass
class _Plan:
    messages: list[dict[str, Any]]
    turn: int
    preamble: str
    blocks: list[str]
    droppable: list[int]
    dropped: int = 0

    def candidate(self) -> list[dict[str, Any]]:
        gone = set(self.droppable[: self.dropped])
        content = self.preamble + "".join(block for i, block in enumerate(self.blocks) if i not in gone)
        turn = self.turn
        return [*self.messages[:turn], {**self.messages[turn], "content": content}, *self.messages[turn + 1:]]
