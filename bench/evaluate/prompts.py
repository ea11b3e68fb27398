"""The prompt a model sees for one sample.

Plain mode is what ehr-r1 models are trained on (docs/interfaces.md §6): a system turn, then
the record, a line break and the task's instruction, then Qwen3's soft switch (``/think`` for
decision tasks, ``/no_think`` for risk tasks). Candidate mode, for untrained models (the
reference's ``--prompt`` with candidates), adds the candidate list and an answer-format note
between the instruction and the switch, one per line, in the reference's order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from graphkit.ehr.serialize import user_message

SYSTEM_PROMPT = "You are a helpful assistant."
THINK, NO_THINK = "/think", "/no_think"

# the reference's notes, in our words
SET_NOTE = ("Answer with the predicted items only, one item per line, and nothing else. "
            "Write item names, not codes (no ICD-9 or ICD-10 codes).")
ONE_NOTE = "Answer with exactly one option from the candidate list and nothing else."
CANDIDATES_LINE = "Choose your answer from this candidate list: {candidates}."


def user_turn(record: str, instruction: str, *, thinking: bool, output_type: str,
              candidates: Sequence[str] | None = None, switch: bool = True) -> str:
    text = user_message(record, instruction)
    if candidates is not None:
        listed = json.dumps(list(candidates), ensure_ascii=False)
        note = SET_NOTE if output_type == "set" else ONE_NOTE
        text = "\n".join([text, CANDIDATES_LINE.format(candidates=listed), note])
    if switch:
        text += "\n" + (THINK if thinking else NO_THINK)
    return text


def messages(record: str, instruction: str, *, thinking: bool, output_type: str,
             candidates: Sequence[str] | None = None, switch: bool = True,
             system: str | None = SYSTEM_PROMPT) -> list[dict[str, str]]:
    turns = [{"role": "system", "content": system}] if system else []
    turns.append({"role": "user", "content": user_turn(record, instruction, thinking=thinking,
                                                       output_type=output_type, candidates=candidates,
                                                       switch=switch)})
    return turns
