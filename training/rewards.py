"""GRPO rewards: plain functions ``reward(completions, label, **kw) -> list[float | None]``.

They score with EHR-Bench's own metrics (bench.metrics), so training optimizes exactly what the
benchmark measures: set F1 for decision tasks, accuracy for risk and next-event tasks, and 0
when the completion has no ``</think>`` or no answer after it. A reward returns None for rows of
a task family it does not score (TRL then leaves it out of that row's sum), so mixed-task
batches take ``[set_f1_reward, accuracy_reward]`` together.

``completions`` are strings, or (conversational prompts) lists of messages whose last one is the
assistant's; ``label`` is the gold answer per row (a list of items, or a string / one-item list);
``output_type`` (a keyword column: "set" | "binary" | "class") says which rows each reward scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bench.metrics import accuracy, parse_answer, set_prf

Completion = str | Sequence[dict[str, Any]]


def completion_text(completion: Completion) -> str:
    """The completion as text; a parsed assistant message gets its think block back."""
    if isinstance(completion, str):
        return completion
    message = completion[-1] if completion else {}
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content")
    if reasoning is not None and "</think>" not in content:
        return f"<think>\n{reasoning}\n</think>\n\n{content}"
    return content


def _gold_items(label: Any) -> list[str]:
    return [str(item) for item in label] if isinstance(label, list | tuple) else [str(label)]


def _types(output_type: Sequence[str] | None, n: int) -> Sequence[str | None]:
    return output_type if output_type is not None else [None] * n


def set_f1_reward(completions: Sequence[Completion], label: Sequence[Any], output_type: Sequence[str] | None = None,
                  **kw: Any) -> list[float | None]:
    """Set F1 of the answer lines against the gold items (decision tasks; None for other rows)."""
    rewards: list[float | None] = []
    for completion, gold, kind in zip(completions, label, _types(output_type, len(completions)), strict=True):
        if kind not in (None, "set"):
            rewards.append(None)
            continue
        predicted = parse_answer(completion_text(completion), thinking=True)
        rewards.append(0.0 if predicted is None else set_prf(predicted, _gold_items(gold))[2])
    return rewards


def accuracy_reward(completions: Sequence[Completion], label: Sequence[Any], output_type: Sequence[str] | None = None,
                    **kw: Any) -> list[float | None]:
    """1 when the answer is the gold class (risk yes/no, next event), else 0 (None for set rows)."""
    rewards: list[float | None] = []
    for completion, gold, kind in zip(completions, label, _types(output_type, len(completions)), strict=True):
        if kind == "set":
            rewards.append(None)
            continue
        predicted = parse_answer(completion_text(completion), thinking=True)
        gold_items = _gold_items(gold)
        rewards.append(accuracy(predicted, gold_items[0]) if len(gold_items) == 1 else 0.0)
    return rewards


REWARDS: dict[str, Callable[..., list[float | None]]] = {
    "set_f1": set_f1_reward,
    "accuracy": accuracy_reward,
}
