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

from dataclasses import dataclass
from typing import Any

from graphkit.ehr.events import EHR_R1_DEMOGRAPHICS_NAME, EVENT_TABLES

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
    """Counts tokens exactly as training renders them (same tokenizer, chat template and mode)."""

    def __init__(self, tokenizer: Any, budget: int, *, add_generation_prompt: bool, chat_template: str | None = None):
        self.tokenizer = tokenizer
        self.budget = budget
        self.add_generation_prompt = add_generation_prompt
        self.chat_template = chat_template

    def count(self, messages: list[dict[str, Any]]) -> int:
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=self.add_generation_prompt, chat_template=self.chat_template
        )
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def __call__(self, messages: list[dict[str, Any]]) -> Truncation:
        n_tokens = self.count(messages)
        if n_tokens <= self.budget:
            return Truncation(messages, n_tokens, 0, True)
        turn = _record_turn(messages)
        if turn is None:
            return Truncation(messages, n_tokens, 0, False)
        preamble, blocks = split_blocks(messages[turn]["content"])
        droppable = [i for i in range(len(blocks) - 1) if heading_name(blocks[i]) not in HEADER_NAMES]
        if not droppable:
            return Truncation(messages, n_tokens, 0, False)

        # Estimate how many of the oldest blocks to drop from per-block token counts, then confirm
        # with an exact count (BPE merges across a boundary can shift the total by a token or two).
        sizes = [len(ids) for ids in self.tokenizer([blocks[i] for i in droppable], add_special_tokens=False)["input_ids"]]
        excess, dropped = n_tokens - self.budget, 0
        while dropped < len(sizes) and excess > 0:
            excess -= sizes[dropped]
            dropped += 1
        while True:
            gone = set(droppable[:dropped])
            content = preamble + "".join(block for i, block in enumerate(blocks) if i not in gone)
            candidate = [*messages[:turn], {**messages[turn], "content": content}, *messages[turn + 1:]]
            n_tokens = self.count(candidate)
            if n_tokens <= self.budget or dropped >= len(droppable):
                return Truncation(candidate, n_tokens, dropped, n_tokens <= self.budget)
            dropped += 1
