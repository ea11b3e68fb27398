"""EHR-Ins case rows (docs/interfaces.md §6) in the chat format training consumes.

``id, task, kind ("reasoning"|"direct"), messages, enable_thinking, label, output_type,
sample_id, graph_hash``. The user turn is the record, a line break, the instruction (as the
reference's sft_reasoning.py builds it; training appends Qwen3's ``/think`` or ``/no_think``).
The assistant turn follows Qwen3: ``<think>\\n{reasoning}\\n</think>\\n\\n{answer}`` with thinking
on, an empty think block with thinking off. The answer is the sample's gold output, one item per
line, as the reference trains it.
"""

from __future__ import annotations

from typing import Any

from generators.inputs import CaseInput
from graphkit.ehr.serialize import user_message

REASONING = "reasoning"
DIRECT = "direct"


def _row(case: CaseInput, kind: str, assistant: str, enable_thinking: bool, system_prompt: str | None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages += [{"role": "user", "content": user_message(case.record, case.instruction)}, {"role": "assistant", "content": assistant}]
    return {
        "id": f"{case.id}:{kind}",
        "task": case.task,
        "kind": kind,
        "messages": messages,
        "enable_thinking": enable_thinking,
        "label": case.label,
        "output_type": case.output_type,
        "sample_id": case.id,
        "graph_hash": case.graph_hash if kind == REASONING else "",
    }


def reasoning_case(case: CaseInput, reasoning: str, system_prompt: str | None) -> dict[str, Any]:
    return _row(case, REASONING, f"<think>\n{reasoning.strip()}\n</think>\n\n{case.answer}", True, system_prompt)


def direct_case(case: CaseInput, system_prompt: str | None) -> dict[str, Any]:
    return _row(case, DIRECT, f"<think>\n\n</think>\n\n{case.answer}", False, system_prompt)

