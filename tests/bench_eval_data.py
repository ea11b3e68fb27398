"""Hand-made EHR-Bench sample folders (docs/interfaces.md §5 rows, `bench build` layout) for the
evaluator, baseline and report tests. Records are short so the tiny model reads them in
milliseconds; every number a test checks can be worked out by hand from these rows.
"""

from __future__ import annotations

import json
from pathlib import Path

INSTRUCTIONS = {
    "labevents": "Given the sequence of events that have occurred in a hospital, please give the next Labotary "
                 "Test Events suggestion for the patients.",
    "next_event": "Given the sequence of events that have occurred in a hospital, please give the next event "
                  "suggestion for the patients.",
    "Inpatient_Mortality": "Given the sequence of events that have occurred in a hospital, please predict whether "
                           "the patient will die during hospitalization.",
}
OUTPUT_TYPES = {"labevents": "set", "next_event": "class", "Inpatient_Mortality": "binary"}
FAMILIES = {"labevents": "decision", "next_event": "decision", "Inpatient_Mortality": "risk"}


def item(table: str, name: str, key: str | None = None) -> dict:
    return {"table": table, "key": key or f"{table}:{name}", "name": name}


def record(blocks: list[tuple[str, str, list[str]]], marker: str = "") -> str:
    """A record in the serializer's clean style: (heading, time, item names) per event block."""
    parts = ["## Patient Demographics\n- Age: 60\n- Gender: Female"]
    for heading, time, names in blocks:
        if len(names) == 1:
            parts.append(f"## {heading} [{time}]\n- Item: {names[0]}")
        else:
            rows = "\n".join(f"| {name} | 1.0 |" for name in names)
            parts.append(f"## {heading} [{time}]\n| Item | Value |\n| ------ | ------ |\n{rows}")
    if marker:
        parts.append(f"## Note [2180-01-01 09:00:00]\n- Marker: {marker}")
    return "\n\n".join(parts)


def sample(task: str, number: int, split: str, label, blocks, context_items, *, marker: str = "",
           candidates: list[str] | None = None, subject: int | None = None) -> dict:
    output_type = OUTPUT_TYPES[task]
    return {
        "id": f"{task}/{split}/{number:03d}",
        "task": task,
        "family": FAMILIES[task],
        "split": split,
        "subject_id": subject if subject is not None else 1000 + number,
        "hadm_id": 2000 + number,
        "stay_id": None,
        "anchor_time": "2180-01-02 00:00:00",
        "context_start": "2180-01-01 00:00:00",
        "context_end": "2180-01-02 00:00:00",
        "input": record(blocks, marker),
        "instruction": INSTRUCTIONS[task],
        "output": "\n".join(label) if isinstance(label, list) else label,
        "label": label,
        "output_type": output_type,
        "task_version": 1,
        "context_items": context_items,
        "target_items": [item("labevents", n) for n in label] if output_type == "set" else [],
        "n_context_events": len(blocks),
        "candidates": candidates if candidates is not None else (["yes", "no"] if output_type == "binary" else []),
    }


LAB = "Laboratory Test Events"
RX = "Prescriptions"


def lab_rows() -> dict[str, list[dict]]:
    """labevents: train gold sets make {sodium, potassium} the two most frequent (median size 2)."""
    train = [
        sample("labevents", 1, "train", ["Sodium", "Potassium"], [(LAB, "2180-01-01 08:00:00", ["Sodium"])],
               [item("labevents", "Sodium")]),
        sample("labevents", 2, "train", ["Sodium", "Potassium", "Chloride"], [(LAB, "2180-01-01 08:00:00", ["Urea"])],
               [item("labevents", "Urea")]),
        sample("labevents", 3, "train", ["Sodium", "Glucose"], [(LAB, "2180-01-01 08:00:00", ["Glucose"])],
               [item("labevents", "Glucose")]),
        sample("labevents", 4, "train", ["Potassium", "Lactate"], [(RX, "2180-01-01 08:00:00", ["Heparin"])],
               [item("prescriptions", "Heparin")]),
    ]
    test = [
        # last lab block: Glucose, Lactate (an older block had Sodium)
        sample("labevents", 11, "test", ["Sodium", "Glucose"],
               [(LAB, "2180-01-01 06:00:00", ["Sodium"]), (RX, "2180-01-01 07:00:00", ["Heparin"]),
                (LAB, "2180-01-01 08:00:00", ["Glucose", "Lactate"])],
               [item("labevents", "Sodium"), item("prescriptions", "Heparin"), item("labevents", "Glucose"),
                item("labevents", "Lactate")],
               candidates=["Sodium", "Glucose", "Lactate", "Potassium"]),
        # no lab block in the context at all
        sample("labevents", 12, "test", ["Potassium"], [(RX, "2180-01-01 07:00:00", ["Heparin"])],
               [item("prescriptions", "Heparin")], candidates=["Potassium", "Sodium"]),
    ]
    return {"train": train, "test": test}


def next_event_rows() -> dict[str, list[dict]]:
    train = [sample("next_event", n, "train", label, [(LAB, "2180-01-01 08:00:00", ["Sodium"])],
                    [item("labevents", "Sodium")], candidates=["labevents", "prescriptions"])
             for n, label in ((1, "labevents"), (2, "labevents"), (3, "prescriptions"))]
    test = [
        sample("next_event", 11, "test", "prescriptions",
               [(LAB, "2180-01-01 06:00:00", ["Sodium"]), (RX, "2180-01-01 07:00:00", ["Heparin"])],
               [item("labevents", "Sodium"), item("prescriptions", "Heparin")],
               candidates=["labevents", "prescriptions"]),
        sample("next_event", 12, "test", "labevents",
               [(RX, "2180-01-01 06:00:00", ["Heparin"]), (LAB, "2180-01-01 07:00:00", ["Sodium"])],
               [item("prescriptions", "Heparin"), item("labevents", "Sodium")],
               candidates=["labevents", "prescriptions"]),
    ]
    return {"train": train, "test": test}


def mortality_rows() -> dict[str, list[dict]]:
    """Risk: the marker in each record is the P(yes) the mock endpoint answers with."""
    def risk(number, split, label, heparin_blocks, marker):
        blocks = [(RX, f"2180-01-01 0{h}:00:00", ["Heparin"]) for h in range(heparin_blocks)]
        blocks.append((LAB, "2180-01-01 08:00:00", ["Lactate"]))
        return sample("Inpatient_Mortality", number, split, label, blocks,
                      [item("prescriptions", "Heparin"), item("labevents", "Lactate")] if heparin_blocks else
                      [item("labevents", "Lactate")], marker=marker)

    train = [risk(n, "train", "yes" if n % 2 else "no", 3 if n % 2 else 0, "") for n in range(1, 9)]
    test = [risk(11, "test", "yes", 3, "0.9"), risk(12, "test", "no", 0, "0.2"),
            risk(13, "test", "yes", 3, "0.4"), risk(14, "test", "no", 1, "0.6")]
    return {"train": train, "test": test}


ROWS = {"labevents": lab_rows, "next_event": next_event_rows, "Inpatient_Mortality": mortality_rows}


def write_build(root: Path, tasks: tuple[str, ...] = tuple(ROWS), *, card: bool = True, fmt: str = "jsonl") -> Path:
    """A `bench build`-shaped folder with the hand-made rows of ``tasks``."""
    versions = {}
    for task in tasks:
        for split, rows in ROWS[task]().items():
            path = root / "data" / task / f"{split}.{fmt}"
            path.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "jsonl":
                path.write_text("".join(json.dumps(row) + "\n" for row in rows))
            else:
                import polars as pl

                pl.DataFrame(rows).write_parquet(path)
        versions[task] = 1
    if card:
        (root / "card.json").write_text(json.dumps({"name": "hand-made", "config_hash": "handmade0000",
                                                     "task_versions": versions, "tasks": {}}, indent=2))
    return root


def marker_of(body: dict) -> float | None:
    content = body["messages"][-1]["content"]
    if "- Marker: " not in content:
        return None
    return float(content.split("- Marker: ", 1)[1].split("\n", 1)[0])
