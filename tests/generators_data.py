"""Hand-made EHR-Bench sample rows (CONTRACTS.md section 5) and thinking graphs (section 8) for the
generators tests, built on a genuine record of the MIMIC-IV demo (subject 10000032, first admission)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parents[1] / "graphkit" / "data" / "mimic-iv-demo"
SUBJECT, HADM = 10000032, 22595853

CIRRHOSIS = "Cirrhosis of liver without mention of alcohol"
PORTAL = "Portal hypertension"
COPD = "Chronic airway obstruction, not elsewhere classified"
UNEXPLAINED = ("Posttraumatic stress disorder", "Bipolar disorder, unspecified", "Other ascites")
INSTRUCTION = ("Given the sequence of events that have occurred in a hospital, please give the next Diagnoses "
               "ICD Item suggestion for the patients.")


@functools.cache
def demo_record() -> str:
    """The admission's record up to discharge, as the records serializer prints it (clean style)."""
    import polars as pl

    from graphkit.ehr.serialize import Serializer
    from graphkit.ehr.source import open_source
    from graphkit.ehr.timeline import build_timeline

    source = open_source(DEMO_DIR)
    discharge = (source.scan("admissions").filter(pl.col("hadm_id") == HADM).select("dischtime").collect().item())
    timeline = build_timeline(source, subjects=[SUBJECT])
    return Serializer(timeline).serialize(SUBJECT, HADM, end=discharge, exclude_tables=["discharge"]).text


def sample(sample_id: str, task: str, label, *, output_type: str = "set", split: str = "train", record: str | None = None,
           instruction: str = INSTRUCTION) -> dict:
    items = label if isinstance(label, list) else [label]
    return {
        "id": sample_id, "task": task, "family": "decision" if output_type != "binary" else "risk", "split": split,
        "subject_id": SUBJECT, "hadm_id": HADM, "stay_id": None,
        "input": record if record is not None else demo_record(), "instruction": instruction,
        "output": "\n".join(items), "label": label, "output_type": output_type, "task_version": 1,
    }


def _node(cui, name, role, semantic_type="Finding", items=()):
    node = {"cui": cui, "name": name, "semantic_type": semantic_type, "role": role}
    if items:
        node["items"] = [{"table": "labevents", "key": f"labevents:{i}", "name": n} for i, n in items]
    return node


def _edge(edge_id, source, target, relation, origin="umls"):
    return {"edge_id": edge_id, "source": source, "target": target, "relation": relation, "rela": relation.lower(),
            "sab": "TEST" if origin == "umls" else "", "origin": origin}


def thinking_graph(sample_id: str, *, graph_hash: str = "g-test-1") -> dict:
    """Three gold diagnoses explained by typed, directed paths from things the record shows.

    - AST (lab) -[ASSOCIATED_WITH, mined]-> cirrhosis
    - AST -[ASSOCIATED_WITH]-> cirrhosis -[CAUSE_OF]-> portal hypertension (two hops, forward)
    - albuterol <-[MAY_BE_TREATED_BY]- COPD (stored from the disease, walked against its direction)
    - ipratropium -[ISA]-> bronchodilator -[MAY_TREAT]-> COPD
    """
    return {
        "sample_id": sample_id, "task": "diagnoses_icd", "graph_hash": graph_hash,
        "nodes": [
            _node("C0201899", "Aspartate aminotransferase measurement", "evidence", "Laboratory Procedure",
                  items=[(50878, "Asparate Aminotransferase (AST)")]),
            _node("C0001927", "Albuterol", "evidence", "Pharmacologic Substance"),
            _node("C0027235", "Ipratropium Bromide", "evidence", "Pharmacologic Substance"),
            _node("C0006280", "Bronchodilator Agents", "intermediate", "Pharmacologic Substance"),
            _node("C0023890", CIRRHOSIS, "target", "Disease or Syndrome"),
            _node("C0020541", PORTAL, "target", "Disease or Syndrome"),
            _node("C0024117", COPD, "target", "Disease or Syndrome"),
        ],
        "edges": [
            _edge("e-ast-cirr", "C0201899", "C0023890", "ASSOCIATED_WITH", origin="association"),
            _edge("e-cirr-portal", "C0023890", "C0020541", "CAUSE_OF"),
            _edge("e-copd-albut", "C0024117", "C0001927", "MAY_BE_TREATED_BY"),
            _edge("e-iprat-isa", "C0027235", "C0006280", "ISA"),
            _edge("e-bronch-copd", "C0006280", "C0024117", "MAY_TREAT"),
        ],
        "paths": {
            "C0023890": [["e-ast-cirr"]],
            "C0020541": [["e-ast-cirr", "e-cirr-portal"]],
            "C0024117": [["e-copd-albut"], ["e-iprat-isa", "e-bronch-copd"]],
        },
        "unexplained_targets": [],
    }


def well_formed(gold: list[str], extra: str = "") -> str:
    """A reasoning text an LLM might write, recovering ``gold``."""
    return ("## Extraction\n**Laboratory Test Events [2180-05-07 05:05:00]**: AST 98 IU/L, high.\n\n"
            "## Reasoning\nRaised transaminases point to chronic liver injury." + extra + "\n\n"
            "## Final Results\n" + "\n".join(gold))


def write_inputs(directory: Path, samples: list[dict], graphs: list[dict]) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    samples_path, graphs_path = directory / "samples.jsonl", directory / "thinking.jsonl"
    samples_path.write_text("".join(json.dumps(row) + "\n" for row in samples))
    graphs_path.write_text("".join(json.dumps(graph) + "\n" for graph in graphs))
    return samples_path, graphs_path


def standard_inputs(directory: Path) -> tuple[Path, Path]:
    """Four samples: explained (kept), partly explained (rejected), no graph, and a risk task."""
    explained = [CIRRHOSIS, PORTAL, COPD]
    rows = [
        sample("s-kept", "diagnoses_icd", explained),
        sample("s-partial", "diagnoses_icd", [*explained, *UNEXPLAINED]),
        sample("s-nograph", "diagnoses_icd", [CIRRHOSIS]),
        sample("s-risk", "LengthOfStay_3day", "no", output_type="binary",
               instruction="Will the patient stay in hospital longer than 3 days? Answer yes or no."),
        sample("s-test", "diagnoses_icd", explained, split="test"),
    ]
    graphs = [thinking_graph("s-kept"), thinking_graph("s-partial"), thinking_graph("s-test")]
    return write_inputs(directory, rows, graphs)


SHORT_RECORD = """## Patient Demographics
- Age: 61
- Gender: Male

## Admission [2180-01-01 08:00:00]
- Admission Type: URGENT

## Laboratory Test Events [2180-01-01 09:00:00]
| Item | Value | Unit | Flag |
| ------ | ------ | ------ | ------ |
| Asparate Aminotransferase (AST) | 98 | IU/L | abnormal |

## Electronic Medication Administration Record [2180-01-01 10:00:00]
- Medication: Albuterol Inhaler
- Event: Administered"""


def many_inputs(directory: Path, n: int, *, task: str = "diagnoses_icd") -> tuple[Path, Path]:
    """``n`` small samples (short record), each with the standard thinking graph: all explainable."""
    rows = [sample(f"m-{i:04d}", task, [CIRRHOSIS, COPD], record=SHORT_RECORD + f"\n\n## Note [2180-01-02 00:00:00]\n- n: {i}")
            for i in range(n)]
    return write_inputs(directory, rows, [thinking_graph(row["id"]) for row in rows])
