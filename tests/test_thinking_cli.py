"""`ehr-r1 generate mine | thinking | usage` on a small graph in a fresh workspace, and the whole
thinking path on the open demo graph built by `graph build --demo`."""

from __future__ import annotations

import json

import polars as pl
import pytest

from graphkit.store import open_store
from graphkit.thinking import (
    AssociationIndex,
    MiningOptions,
    Snapshot,
    ThinkingGraph,
    ThinkingGraphBuilder,
    ThinkingOptions,
)
from graphkit.thinking.mining import mine_associations, sample_concepts
from graphkit.thinking.store_io import load_item_links
from tests.test_thinking_store import load
from tests.thinking_data import CLINICAL, CLINICAL_CUIS

LINKS = {"labevents:1": "C_LAB", "prescriptions:drug": "C_DRUG", "diagnoses_icd:10:X": "C_DIS", "labevents:2": "C_ISO"}


def _item(key: str) -> dict:
    return {"table": key.split(":")[0], "key": key, "name": key}


def _samples() -> pl.DataFrame:
    rows = []
    for i in range(12):
        context = ["labevents:1", "labevents:2"] if i < 6 else ["labevents:2"]
        if i < 5:
            context.append("prescriptions:drug")
        rows.append(
            {
                "id": f"s{i:02d}",
                "task": "diagnoses_icd",
                "split": "train" if i < 10 else "test",
                "context_items": [_item(k) for k in context],
                "target_items": [_item("diagnoses_icd:10:X")] if i < 6 or i >= 10 else [],
            }
        )
    return pl.DataFrame(rows)


@pytest.fixture()
def thinking_ws(workspace_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("EHR_R1_GRAPH_LINGER", "0")
    with open_store(workspace_dir, linger=0) as store:
        load(store, CLINICAL_CUIS, [r for r in CLINICAL if r[2] != "ASSOCIATED_WITH"])
    samples = tmp_path / "samples.parquet"
    _samples().write_parquet(samples)
    links = tmp_path / "links.parquet"
    pl.DataFrame({"key": list(LINKS), "cui": list(LINKS.values())}).write_parquet(links)
    return workspace_dir, samples, links


def test_mine_thinking_usage_and_resume(cli, thinking_ws):
    ws, samples, links = thinking_ws
    mined = cli("generate", "mine", "--samples", samples, "--links", links, "--min-support", "5", "--min-lift", "1.0")
    assert mined.exit_code == 0, mined.output
    table = pl.read_parquet(ws / "graph" / "associations" / "kg.parquet")
    # N = 10 train samples; C_LAB: 6 contexts, all with C_DIS (6): lift 10/6; C_DRUG: 5 of them, lift 10/6;
    # C_ISO is in every context: lift 1.0, not above 1.0
    assert sorted(table.select("source", "support").rows()) == [("C_DRUG", 5), ("C_LAB", 6)]
    runs = json.loads((ws / "graph" / "associations" / "kg.runs.json").read_text())
    assert runs[0]["n_samples"] == 10

    out = ws / "thinking.jsonl"
    built = cli("generate", "thinking", "--samples", samples, "--links", links, "--out", out, "--workers", "1")
    assert built.exit_code == 0, built.output
    report = json.loads(built.stdout)
    assert (report["samples"], report["written"], report["resumed"]) == (12, 12, 0)
    graphs = {g.sample_id: g for g in map(ThinkingGraph.from_json, out.read_text().splitlines())}
    assert graphs["s00"].paths == {"C_DIS": [["e01"], ["e03", "e04"]]}  # DRUG -> DIS first: shorter
    assert graphs["s07"].targets == []
    assert graphs["s11"].evidence == {"C_DIS": []} and graphs["s11"].unexplained_targets == ["C_DIS"]
    assert (ws / "graph" / "snapshot" / "kg" / "meta.json").is_file()

    usage = cli("generate", "usage", "--edge", "e03", "--format", "json")
    assert usage.exit_code == 0, usage.output
    users = {row["case_id"] for row in json.loads(usage.stdout)}
    assert users == {"s00", "s01", "s02", "s03", "s04", "s05"}
    case = json.loads(cli("generate", "usage", "--case", "s00", "--format", "json").stdout)
    assert [(r["role"], r["edge_id"]) for r in case if r["role"] == "path"] == [("path", "e01"), ("path", "e03"), ("path", "e04")]
    top = json.loads(cli("generate", "usage", "--top", "--task", "diagnoses_icd", "--limit", "1", "--format", "json").stdout)
    assert top[0]["edge_id"] in ("e03", "e04") and top[0]["cases"] == 6
    assert cli("generate", "usage", "--top", "--edge", "e03").exit_code == 2

    # a killed run: a partial file with two whole graphs and a torn third line resumes after them
    lines = out.read_text().splitlines()
    partial = out.with_name(out.name + ".partial")
    partial.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][:40])
    out.unlink()
    again = cli("generate", "thinking", "--samples", samples, "--links", links, "--out", out, "--workers", "1", "--live")
    report = json.loads(again.stdout)
    assert (report["resumed"], report["written"]) == (2, 10)
    assert sorted(out.read_text().splitlines()) == sorted(lines) and not partial.exists()


def test_demo_graph_end_to_end(demo_graph):
    """Mined associations and thinking graphs on the open demo graph, with item links from graph build."""
    links = load_item_links(demo_graph.store)
    assert links.height > 100
    snapshot = Snapshot.from_store(demo_graph.store)
    assert snapshot.n_edges > 1000
    # a cohort whose context is a drug's item and whose target is a diagnosis it may treat
    treats = demo_graph.store.query(
        "MATCH (i:Item)-[:MAPS_TO]->(d:Concept)-[r]->(x:Concept)<-[:MAPS_TO]-(j:Item) "
        "WHERE type(r) <> 'ASSOCIATED_WITH' AND i.table = 'prescriptions' AND j.table = 'diagnoses_icd' "
        "RETURN i.id AS drug, j.id AS dx, d.cui AS drug_cui, x.cui AS dx_cui ORDER BY drug, dx LIMIT 1"
    )
    assert treats, "the demo graph links no prescription to a diagnosis it relates to"
    drug, dx = treats[0]["drug"], treats[0]["dx"]
    # 6 of 40 samples: lift 40/6 clears the default min_lift of 5 (which is strict)
    rows = [
        {"id": f"d{i}", "task": "diagnoses_icd", "split": "train", "context_items": [_item(drug)] if i < 6 else [],
         "target_items": [_item(dx)] if i < 6 else [_item("none:0")]}
        for i in range(40)
    ]
    concepts = sample_concepts(pl.DataFrame(rows), links)
    result = mine_associations(concepts, MiningOptions(), samples=pl.DataFrame(rows))
    assert (treats[0]["drug_cui"], treats[0]["dx_cui"]) in set(result.associations.select("source", "target").rows())
    opts = ThinkingOptions()
    builder = ThinkingGraphBuilder(snapshot.adjacency(opts.search), AssociationIndex(result.associations), opts)
    context = concepts.filter(pl.col("role") == "context").collect()["cui"].to_list()
    targets = concepts.filter(pl.col("role") == "target").collect()["cui"].to_list()
    graph = builder.build("d0", "diagnoses_icd", context, targets)
    assert treats[0]["dx_cui"] in graph.paths
    first = graph.steps(treats[0]["dx_cui"], 0)
    assert first[0].start in context and first[-1].end == treats[0]["dx_cui"]
    assert all(step.edge.relation != "ASSOCIATED_WITH" for step in first)
    assert graph.node(treats[0]["dx_cui"]).name


def _full_rows(samples: pl.DataFrame) -> pl.DataFrame:
    """The hand-made rows above as whole EHR-Bench sample rows, each context item in the record."""
    rows = []
    for row in samples.to_dicts():
        label = [item["name"] for item in row["target_items"]]
        record = "\n".join(f"## Event [2150-01-01 0{n}:00:00]\n- Item: {item['name']}" for n, item in enumerate(row["context_items"]))
        rows.append({**row, "family": "decision", "subject_id": 1, "hadm_id": 2, "stay_id": None, "input": record,
                     "instruction": "Which diagnoses come next?", "output": "\n".join(label), "label": label,
                     "output_type": "set", "task_version": 1})
    return pl.DataFrame(rows)


def test_generate_cases_picks_up_the_workspace_thinking_graphs_and_their_links(cli, thinking_ws, tmp_path):
    ws, samples, links = thinking_ws
    assert cli("generate", "mine", "--samples", samples, "--links", links, "--min-support", "5",
               "--min-lift", "1.0").exit_code == 0
    built = cli("generate", "thinking", "--samples", samples, "--links", links, "--workers", "1")
    assert built.exit_code == 0, built.output
    sidecar = ws / "thinking" / "kg.links.parquet"
    assert json.loads(built.stdout)["links"] == str(sidecar)
    assert sorted(pl.read_parquet(sidecar).rows()) == sorted(LINKS.items())

    full = tmp_path / "full-samples.parquet"
    _full_rows(pl.read_parquet(samples)).write_parquet(full)
    made = cli("generate", "cases", "--samples", full)  # no --thinking, no --links
    assert made.exit_code == 0, made.output
    cases = [json.loads(line) for line in (ws / "datasets" / "ehr-ins" / "cases.jsonl").read_text().splitlines()]
    reasoning = {c["sample_id"] for c in cases if c["kind"] == "reasoning"}
    # the gold item's name is its key, which no concept is named: only the links explain it
    assert reasoning and reasoning <= {f"s{i:02d}" for i in range(6)}
