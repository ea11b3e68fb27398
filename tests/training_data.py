"""Shared data of the training tests: hand-made EHR-Ins cases (docs/interfaces.md §6).

Records follow graphkit.ehr's serializer format: a demographics header, the admission, then one
``## `` block per lab event, oldest first; the instruction follows the last block.
"""

from __future__ import annotations

import json
from pathlib import Path

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
TASKS = {  # task -> (output_type, label, instruction)
    "diagnosis": ("set", ["Hypertension", "Sepsis"], "List the diagnoses of this admission."),
    "readmission_30d": ("binary", "yes", "Will the patient be readmitted within 30 days? Answer yes or no."),
    "next_event": ("class", "labevents", "Which table does the next event come from?"),
}


def record(n_events: int, day0: int = 1) -> str:
    blocks = ["## Patient Demographics\n- Age: 64\n- Gender: Female",
              "## Admission [2180-01-01 09:00:00]\n- Admission Type: URGENT\n- Admission Location: EMERGENCY ROOM"]
    for i in range(n_events):
        blocks.append(f"## Laboratory Test Events [2180-01-{day0 + i:02d} 08:00:00]\n| Item Name | Value | Unit |\n"
                      f"| ------ | ------ | ------ |\n| Sodium | {130 + i} | mEq/L |\n| Potassium | 4.{i % 10} | mEq/L |")
    return "\n\n".join(blocks)


def case(index: int, task: str, kind: str, n_events: int = 4) -> dict:
    output_type, label, instruction = TASKS[task]
    answer = "\n".join(label) if isinstance(label, list) else label
    reasoning = f"## Extraction\nsodium rising\n## Reasoning\nconsistent\n## Final Results\n{answer}"
    assistant = f"<think>\n{reasoning}\n</think>\n\n{answer}" if kind == "reasoning" else f"<think>\n\n</think>\n\n{answer}"
    return {
        "id": f"case-{index}", "task": task, "kind": kind, "enable_thinking": kind == "reasoning",
        "messages": [SYSTEM, {"role": "user", "content": f"{record(n_events)}\n{instruction}"},
                     {"role": "assistant", "content": assistant}],
        "label": label, "output_type": output_type, "sample_id": f"sample-{index}", "graph_hash": "graph-abc123",
    }


def write_cases(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def mixed_cases(n: int = 16) -> list[dict]:
    tasks = list(TASKS)
    return [case(i, tasks[i % 3], "reasoning" if i % 2 == 0 else "direct", n_events=2 + i % 4) for i in range(n)]
