"""Left truncation of a case's record to a token budget, keeping the latest events.

A serialized record is a preamble followed by event blocks, each starting with a ``## `` heading
(graphkit.ehr's serializer format; the instruction follows the last block). To fit a budget we
drop whole event blocks from the oldest end: the preamble and the newest block (which carries
the instruction) always stay, and no event is ever cut in half. A case that still does not fit
is reported as too long, never silently cut mid-event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BLOCK_START = "\n## "


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
        if len(blocks) < 2:
            return Truncation(messages, n_tokens, 0, False)

        # Estimate how many of the oldest blocks to drop from per-block token counts, then confirm
        # with an exact count (BPE merges across a boundary can shift the total by a token or two).
        sizes = [len(ids) for ids in self.tokenizer(blocks[:-1], add_special_tokens=False)["input_ids"]]
        excess, dropped = n_tokens - self.budget, 0
        while dropped < len(sizes) and excess > 0:
            excess -= sizes[dropped]
            dropped += 1
        while True:
            content = preamble + "".join(blocks[dropped:])
            candidate = [*messages[:turn], {**messages[turn], "content": content}, *messages[turn + 1:]]
            n_tokens = self.count(candidate)
            if n_tokens <= self.budget or dropped >= len(blocks) - 1:
                return Truncation(candidate, n_tokens, dropped, n_tokens <= self.budget)
            dropped += 1
