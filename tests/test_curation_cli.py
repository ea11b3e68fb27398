"""`ehr-r1 curate ...` and `ehr-r1 generate cases --only-affected` through the root CLI, on the
tiny graph built by `graph build`."""

from __future__ import annotations

import json

import pytest

from graphkit.curation.ledger import Ledger
from graphkit.curation.views import count_users
from graphkit.thinking import Edge, Node, ThinkingGraph
from graphkit.thinking.store_io import ensure_thinking_schema, write_thinking_graphs
from tests.curation_data import HEARING_LOSS, HEPARIN, HEPARIN_TREATS, ISA, T2DM, reset, tiny_fixture
from tests.generators_data import standard_inputs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    yield from tiny_fixture(tmp_path_factory)


@pytest.fixture()
def graph(tiny, monkeypatch):
    reset(tiny)
    monkeypatch.setenv("EHR_R1_WORKSPACE", str(tiny.workspace.root))
    monkeypatch.setenv("EHR_R1_CURATOR", "alice")
    yield tiny
    reset(tiny)


def record_case(store, sample_id: str, edge=HEPARIN_TREATS) -> None:
    """A thinking graph of ``sample_id`` whose one path is ``edge`` (usage records in the graph)."""
    graph = ThinkingGraph(
        sample_id=sample_id, task="diagnoses_icd",
        nodes=[Node(edge.target, role="target"), Node(edge.source, role="evidence")],
        edges=[Edge(edge.edge_id, edge.source, edge.target, edge.relation, sab=edge.sab)],
        evidence={edge.target: [edge.source]}, paths={edge.target: [[edge.edge_id]]},
    )
    ensure_thinking_schema(store)
    write_thinking_graphs(store, [graph])


def test_queue_show_and_changes(cli, graph):
    record_case(graph.store, "s-1")
    record_case(graph.store, "s-2")
    queue = json.loads(cli("curate", "queue", "--format", "json").stdout)
    assert [(r["edge"], r["cases"]) for r in queue["used"]] == [(HEPARIN_TREATS.text, 2)]
    assert queue["mappings"] and all(r["score"] < 0.8 or r["method"] == "name_words" for r in queue["mappings"])
    assert queue["associations"] == []
    table = cli("curate", "queue", "--kind", "used")
    assert table.exit_code == 0 and "Heparin" in table.stdout and "mappings" not in table.stdout

    result = cli("curate", "reject", f"{HEPARIN}|MAY_TREAT|{T2DM}", "--reason", "heparin does not treat diabetes",
                 "--evidence", "DailyMed", "--evidence", "PMID:1")
    assert result.exit_code == 0, result.output
    assert f"entry 1: rejected {HEPARIN_TREATS.text}" in result.stdout and "2 cases used this edge" in result.output
    assert json.loads(cli("curate", "queue", "--format", "json").stdout)["used"] == []  # reviewed now
    assert len(json.loads(cli("curate", "queue", "--all", "--format", "json").stdout)["used"]) == 1

    shown = json.loads(cli("curate", "show", HEPARIN_TREATS.edge_id, "--format", "json").stdout)
    assert (shown["status"], shown["version"], shown["n_cases"]) == ("rejected", 1, 2)
    assert shown["evidence"]["sab"] == "RXNORM" and shown["evidence"]["rela"] == "may_treat"
    assert shown["history"][0]["evidence"] == ["DailyMed", "PMID:1"] and shown["history"][0]["curator"] == "alice"
    assert [c["case_id"] for c in shown["cases"]] == ["s-1", "s-2"]
    assert shown["example_paths"][0]["text"] == f"Heparin ({HEPARIN}) -[MAY_TREAT]-> " \
                                                f"Type 2 diabetes mellitus without complications ({T2DM})"
    text = cli("curate", "show", HEPARIN_TREATS.text)
    assert "status rejected" in text.stdout and "2 cases use it" in text.stdout
    assert count_users(graph.store, HEPARIN_TREATS.edge_id) == (2, 2, False)
    cases, _, capped = count_users(graph.store, HEPARIN_TREATS.edge_id, cap=1)  # the web page's bound
    assert (cases, capped) == (1, True)

    stale = cli("curate", "restore", HEPARIN_TREATS.text, "--reason", "r", "--expect-version", "0", "--curator", "bob")
    assert stale.exit_code == 2 and stale.output.startswith("error: edge ") and "reject by alice" in stale.output
    assert cli("curate", "restore", HEPARIN_TREATS.text, "--reason", "ok", "--expect-version", "1").exit_code == 0
    assert cli("curate", "annotate", ISA.text, "--note", "fine").exit_code == 0
    added = cli("curate", "add", HEPARIN, "CAUSE_OF", HEARING_LOSS, "--reason", "case report", "--evidence", "PMID:2")
    assert added.exit_code == 0 and "entry 4: added" in added.stdout
    again = cli("curate", "add", HEPARIN, "CAUSE_OF", HEARING_LOSS, "--reason", "twice")
    assert again.exit_code == 2 and "already has this edge" in again.output
    missing = cli("curate", "reject", HEPARIN_TREATS.text)
    assert missing.exit_code == 2 and "--reason" in missing.output

    log = cli("curate", "log", "--format", "json")
    assert [e["op"] for e in json.loads(log.stdout)] == ["reject", "restore", "annotate", "add"]
    lines = cli("curate", "log", "--format", "jsonl", "--since", "2").stdout.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [3, 4]
    assert lines[0].encode() + b"\n" == Ledger.of(graph.workspace).path.read_bytes().splitlines(keepends=True)[2]
    only_edge = json.loads(cli("curate", "log", "--edge", HEPARIN_TREATS.text, "--format", "json").stdout)
    assert [e["seq"] for e in only_edge] == [1, 2]
    assert "4 of 4 entries" in cli("curate", "log").stdout

    replayed = cli("curate", "replay", "--format", "json")
    assert json.loads(replayed.stdout)["edges"] == 3 and json.loads(replayed.stdout)["missing"] == 0


def test_verify_affected_and_a_tampered_ledger(cli, graph, tmp_path):
    record_case(graph.store, "s-1")
    assert cli("curate", "reject", HEPARIN_TREATS.text, "--reason", "wrong").exit_code == 0
    record_case(graph.store, "s-2")  # uses it after the change: the live usage records count too
    assert cli("curate", "annotate", ISA.text, "--note", "fine").exit_code == 0
    out = tmp_path / "ids.txt"
    affected = cli("curate", "affected", "--out", out)
    assert affected.stdout == "s-1\ns-2\n" and out.read_text() == "s-1\ns-2\n"
    assert "2 affected samples from 1 changes" in affected.output
    assert cli("curate", "affected", "--since", "1").stdout == ""
    table = json.loads(cli("curate", "affected", "--format", "json").stdout)
    assert table[0]["reasons"] == ["used"] and table[0]["entries"] == [1]

    verified = cli("curate", "verify")
    assert verified.exit_code == 0 and "ledger valid: 2 entries" in verified.stdout
    path = Ledger.of(graph.workspace).path
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"reason":"wrong"', b'"reason":"right"'))
    tampered = cli("curate", "verify")
    assert tampered.exit_code == 2 and "line 1" in tampered.output and "hash does not match" in tampered.output
    assert cli("curate", "reject", ISA.text, "--reason", "x").exit_code == 2
    path.write_bytes(data + b'{"hash":"ab')
    torn = cli("curate", "verify")
    assert torn.exit_code == 2 and "torn" in torn.output and "--repair-torn" in torn.output
    repaired = cli("curate", "verify", "--repair-torn")
    assert repaired.exit_code == 0 and "ledger valid: 2 entries" in repaired.stdout


def test_generate_cases_only_affected(cli, graph, tmp_path):
    samples, thinking, links = standard_inputs(tmp_path / "in")
    inputs = ("--samples", samples, "--thinking", thinking, "--links", links)
    assert cli("generate", "cases", *inputs).exit_code == 0
    record_case(graph.store, "s-kept")
    assert cli("curate", "reject", HEPARIN_TREATS.text, "--reason", "wrong").exit_code == 0
    result = cli("generate", "cases", *inputs, "--only-affected")
    assert result.exit_code == 0, result.output
    assert "1 samples affected by curation changes" in result.output
    assert "4 samples, 3 resumed from the journal, complete" in result.output
    # the next run takes only newer changes
    again = cli("generate", "cases", *inputs, "--only-affected")
    assert "0 samples affected" in again.output and "already complete" in again.output
    explicit = cli("generate", "cases", *inputs, "--only-affected", "--affected-since", "0")
    assert "1 samples affected" in explicit.output
    (tmp_path / "ids.txt").write_text("s-kept\n")
    both = cli("generate", "cases", *inputs, "--only-affected", "--only-samples", tmp_path / "ids.txt")
    assert both.exit_code == 2 and "choose one" in both.output
