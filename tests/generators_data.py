"""Hand-made EHR-Bench sample rows (docs/interfaces.md §5) and thinking graphs (§8) for the
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


AST, LIVER, ALBUTEROL, IPRATROPIUM, BRONCHODILATOR = "C0201899", "C0023895", "C0001927", "C0027235", "C0006280"
CIRRHOSIS_CUI, PORTAL_CUI, COPD_CUI = "C0023890", "C0020541", "C0024117"
AST_ITEM = {"table": "labevents", "key": "labevents:50878", "name": "Asparate Aminotransferase (AST)"}
TARGET_KEYS = {CIRRHOSIS: "diagnoses_icd:9:5715", PORTAL: "diagnoses_icd:9:5723", COPD: "diagnoses_icd:9:496"}
# item key -> concepts, as graphkit.thinking.store_io.load_item_links gives them
LINKS = {AST_ITEM["key"]: {AST}, TARGET_KEYS[CIRRHOSIS]: {CIRRHOSIS_CUI}, TARGET_KEYS[PORTAL]: {PORTAL_CUI},
         TARGET_KEYS[COPD]: {COPD_CUI}}


def sample(sample_id: str, task: str, label, *, output_type: str = "set", split: str = "train", record: str | None = None,
           instruction: str = INSTRUCTION) -> dict:
    items = label if isinstance(label, list) else [label]
    targets = [{"table": "diagnoses_icd", "key": TARGET_KEYS.get(item, f"diagnoses_icd:9:x{number}"), "name": item}
               for number, item in enumerate(items)] if output_type == "set" else []
    return {
        "id": sample_id, "task": task, "family": "decision" if output_type != "binary" else "risk", "split": split,
        "subject_id": SUBJECT, "hadm_id": HADM, "stay_id": None,
        "input": record if record is not None else demo_record(), "instruction": instruction,
        "output": "\n".join(items), "label": label, "output_type": output_type, "task_version": 1,
        "context_items": [AST_ITEM], "target_items": targets,
    }


def _node(cui, name, role, semantic_type="Finding"):
    return {"cui": cui, "name": name, "semantic_type": semantic_type, "semantic_group": "", "role": role}


def _edge(edge_id, source, target, relation, origin="umls"):
    edge = {"edge_id": edge_id, "source": source, "target": target, "relation": relation, "rela": relation.lower(),
            "sab": "TEST", "origin": origin}
    if origin == "association":
        edge.update(sab="EHRR1_ASSOC:diagnoses_icd", support=12, confidence=0.4, lift=7.5)
    return edge


def thinking_graph(sample_id: str, *, graph_hash: str = "g-test-1") -> dict:
    """ThinkingGraph JSON (docs/interfaces.md §8): three gold diagnoses explained by typed, directed
    paths from things the record shows; each path listed evidence -> target. Concept names are
    UMLS-like, not the record's or the gold's: only the item links connect them (portal
    hypertension excepted, named as its gold item).

    - AST measurement -[FINDING_OF]-> liver disease <-[ISA]- cirrhosis (the ISA edge walked backwards)
    - ... -[CAUSE_OF]-> portal hypertension (three hops)
    - albuterol <-[MAY_BE_TREATED_BY]- COPD (stored from the disease, walked against its direction)
    - ipratropium -[ISA]-> bronchodilator -[MAY_TREAT]-> COPD
    - the mined association AST -> cirrhosis says why AST is evidence (never on a path)
    """
    return {
        "sample_id": sample_id, "task": "diagnoses_icd", "graph_hash": graph_hash, "config_hash": "c-test",
        "nodes": [
            _node(CIRRHOSIS_CUI, "Liver Cirrhosis", "target", "Disease or Syndrome"),
            _node(PORTAL_CUI, PORTAL, "target", "Disease or Syndrome"),
            _node(COPD_CUI, "Chronic Obstructive Airway Disease", "target", "Disease or Syndrome"),
            _node(AST, "Aspartate aminotransferase measurement", "evidence", "Laboratory Procedure"),
            _node(ALBUTEROL, "Albuterol", "evidence", "Pharmacologic Substance"),
            _node(IPRATROPIUM, "Ipratropium Bromide", "evidence", "Pharmacologic Substance"),
            _node(LIVER, "Liver disease", "intermediate", "Disease or Syndrome"),
            _node(BRONCHODILATOR, "Bronchodilator Agents", "intermediate", "Pharmacologic Substance"),
        ],
        "edges": [
            _edge("e-ast-assoc", AST, CIRRHOSIS_CUI, "ASSOCIATED_WITH", origin="association"),
            _edge("e-ast-liver", AST, LIVER, "FINDING_OF"),
            _edge("e-cirr-liver", CIRRHOSIS_CUI, LIVER, "ISA"),
            _edge("e-cirr-portal", CIRRHOSIS_CUI, PORTAL_CUI, "CAUSE_OF"),
            _edge("e-copd-albut", COPD_CUI, ALBUTEROL, "MAY_BE_TREATED_BY"),
            _edge("e-iprat-isa", IPRATROPIUM, BRONCHODILATOR, "ISA"),
            _edge("e-bronch-copd", BRONCHODILATOR, COPD_CUI, "MAY_TREAT"),
        ],
        "evidence": {CIRRHOSIS_CUI: [AST], PORTAL_CUI: [AST], COPD_CUI: [ALBUTEROL, IPRATROPIUM]},
        "paths": {
            CIRRHOSIS_CUI: [["e-ast-liver", "e-cirr-liver"]],
            PORTAL_CUI: [["e-ast-liver", "e-cirr-liver", "e-cirr-portal"]],
            COPD_CUI: [["e-copd-albut"], ["e-iprat-isa", "e-bronch-copd"]],
        },
        "unexplained_targets": [],
    }


def case_input(row: dict, graph: dict | None, links: dict | None = LINKS):
    """A CaseInput as the pipeline makes it (validated graph, gold items mapped to targets)."""
    from generators.inputs import case_inputs
    from graphkit.thinking.model import ThinkingGraph

    graphs = {row["id"]: ThinkingGraph.from_dict(graph)} if graph is not None else {}
    return case_inputs([{"_index": 0, **row}], graphs, links)[0]


def well_formed(gold: list[str], extra: str = "") -> str:
    """A reasoning text an LLM might write, recovering ``gold``."""
    return ("## Extraction\n**Laboratory Test Events [2180-05-07 05:05:00]**: AST 98 IU/L, high.\n\n"
            "## Reasoning\nRaised transaminases point to chronic liver injury." + extra + "\n\n"
            "## Final Results\n" + "\n".join(gold))


def write_inputs(directory: Path, samples: list[dict], graphs: list[dict]) -> tuple[Path, Path, Path]:
    """samples.jsonl, thinking.jsonl and links.jsonl (the item links) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    samples_path, graphs_path, links_path = (directory / f"{n}.jsonl" for n in ("samples", "thinking", "links"))
    samples_path.write_text("".join(json.dumps(row) + "\n" for row in samples))
    graphs_path.write_text("".join(json.dumps(graph) + "\n" for graph in graphs))
    links_path.write_text("".join(json.dumps({"key": key, "cui": cui}) + "\n"
                                  for key, cuis in sorted(LINKS.items()) for cui in sorted(cuis)))
    return samples_path, graphs_path, links_path


def standard_inputs(directory: Path) -> tuple[Path, Path, Path]:
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


def many_inputs(directory: Path, n: int, *, task: str = "diagnoses_icd") -> tuple[Path, Path, Path]:
    """``n`` small samples (short record), each with the standard thinking graph: all explainable."""
    rows = [sample(f"m-{i:04d}", task, [CIRRHOSIS, COPD], record=SHORT_RECORD + f"\n\n## Note [2180-01-02 00:00:00]\n- n: {i}")
            for i in range(n)]
    return write_inputs(directory, rows, [thinking_graph(row["id"]) for row in rows])
