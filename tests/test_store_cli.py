"""`ehr-r1 graph ...`: stats, query, paths, export, stop, and their one-line errors."""

from __future__ import annotations

import csv
import io
import json

import polars as pl
import pytest

from graphkit.store import open_store
from tests.store_data import CONCEPTS, RELATIONS, bolt_endpoint, free_bolt_port, graph_files, load_small_graph

SECRET = "s3cret-Pa55word"


@pytest.fixture()
def graph_ws(workspace_dir, monkeypatch):
    monkeypatch.setenv("EHR_R1_GRAPH_LINGER", "0")
    with open_store(workspace_dir, linger=0) as store:
        load_small_graph(store)
    return workspace_dir


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_stats(cli, graph_ws):
    result = cli("graph", "stats", "--format", "json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert facts["nodes"]["Concept"] == len(CONCEPTS)
    assert facts["relationships"] == {"ISA": 4, "MAY_TREAT": 3, "HAS_MANIFESTATION": 1, "CODE_OF": 2, "MAPS_TO": 1}
    assert facts["rejected"] == {"MAY_TREAT": 1}
    table = cli("graph", "stats")
    assert table.exit_code == 0 and "MAY_TREAT" in table.output and "embedded" in table.output


def test_query_formats_and_parameters(cli, graph_ws):
    text = "MATCH (d:Concept)-[r:MAY_TREAT {status: $status}]->(c:Concept {cui: $cui}) RETURN d.name AS drug, r.sab AS sab"
    result = cli("graph", "query", text, "-p", "cui=C0011860", "-p", "status=active", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"drug": "Metformin", "sab": "MED-RT"}]
    result = cli("graph", "query", "MATCH (c:Concept) WHERE c.cui IN $cuis RETURN c.cui AS cui, c.semantic_types AS st ORDER BY cui",
                 "-p", 'cuis=["C0025598", "C0011849"]', "--format", "csv")
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.output))) == [["cui", "st"], ["C0011849", '["T047"]'], ["C0025598", '["T109", "T121"]']]
    result = cli("graph", "query", "MATCH (c:Concept {cui: 'C0025598'}) RETURN c.name AS name")
    assert result.exit_code == 0 and "Metformin" in result.output


def test_query_is_read_only_unless_asked(cli, graph_ws):
    line = _one_line_error(cli("graph", "query", "CREATE (:Concept {cui: 'C0000055'})"))
    assert "read-only" in line and "--write" in line
    assert cli("graph", "query", "CREATE (:Concept {cui: 'C0000055'})", "--write").exit_code == 0
    result = cli("graph", "query", "MATCH (c:Concept {cui: 'C0000055'}) RETURN count(c) AS n", "--format", "json")
    assert json.loads(result.output) == [{"n": 1}]


def test_query_errors_are_one_line(cli, graph_ws):
    line = _one_line_error(cli("graph", "query", "MATCH (n) RETRN n"))
    assert "cypher query 'ad-hoc query' at line 1, column" in line and "RETRN" in line
    _one_line_error(cli("graph", "query", "RETURN $x", "-p", "x"))
    _one_line_error(cli("graph", "query", "RETURN 1", "--format", "xml"))
    _one_line_error(cli("graph", "stats", "--backend", "sqlite"))


def test_paths(cli, graph_ws):
    result = cli("graph", "paths", "Type 1 diabetes mellitus", "C0011860", "--max-hops", "3", "--any-direction")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "Type 1 diabetes mellitus (C0011854) -[ISA]-> Diabetes mellitus (C0011849) <-[ISA]- Type 2 diabetes mellitus (C0011860)"
    )
    result = cli("graph", "paths", "C0025598", "C0011849", "--types", "MAY_TREAT,ISA", "--format", "json")
    found = json.loads(result.output)
    assert [step["type"] for step in found["paths"][0]["steps"]] == ["MAY_TREAT", "ISA"]
    assert all(step["forward"] for step in found["paths"][0]["steps"])
    none = cli("graph", "paths", "C0011849", "C0025598")
    assert none.exit_code == 0 and "no path" in none.output and "--any-direction" in none.output
    assert "C0000002" in _one_line_error(cli("graph", "paths", "Duplicate name", "Disease"))
    assert "NOPE" in _one_line_error(cli("graph", "paths", "Disease", "Insulin", "--types", "NOPE"))
    _one_line_error(cli("graph", "paths", "Disease", "Insulin", "--max-hops", "99"))


def test_export_neo4j_admin_round_trips(cli, graph_ws, tmp_path):
    out = tmp_path / "export"
    result = cli("graph", "export", "--format", "neo4j-admin", "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["nodes"] == {"Concept": len(CONCEPTS), "Code": 2, "Item": 1}
    assert manifest["relationships"]["ISA"] == 4
    script = (out / "neo4j-admin-import.sh").read_text()
    assert "neo4j-admin database import full" in script and "--relationships=MAY_TREAT=relationships/MAY_TREAT.csv" in script
    assert "CREATE CONSTRAINT concept_cui IF NOT EXISTS" in (out / "schema.cypher").read_text()
    concepts = pl.read_csv(out / "nodes" / "Concept.csv", infer_schema=False)
    assert concepts.columns[:2] == ["cui:ID(Concept)", "name"]
    assert "semantic_types:string[]" in concepts.columns
    metformin = concepts.filter(pl.col("cui:ID(Concept)") == "C0025598").row(0, named=True)
    assert metformin["semantic_types:string[]"] == "T109;T121"
    maps = pl.read_csv(out / "relationships" / "MAPS_TO.csv", infer_schema=False)
    assert maps.columns[:2] == [":START_ID(Item)", ":END_ID(Concept)"] and "score:double" in maps.columns
    # the files carry the whole graph: loading them back gives the same edges
    relations = {t: pl.read_csv(out / "relationships" / f"{t}.csv", infer_schema=False) for t in RELATIONS}
    rows = {
        t: frame.rename({":START_ID(Concept)": "src", ":END_ID(Concept)": "dst"}).filter(pl.col("status") != "rejected")
        for t, frame in relations.items()
    }
    edge_ids = {t: set(frame["edge_id"]) for t, frame in rows.items()}
    with open_store(graph_ws, linger=0) as store:
        for t, ids in edge_ids.items():
            stored = {r["id"] for r in store.query(f"MATCH ()-[r:{t} {{status: 'active'}}]->() RETURN r.edge_id AS id")}
            assert ids == stored


def test_export_keeps_a_curated_mapping_status(cli, graph_ws, tmp_path):
    # curators reject item -> concept mappings (curate reject on a MAPS_TO edge): export must carry it
    assert cli("graph", "query", "MATCH (:Item)-[r:MAPS_TO]->(:Concept) SET r.status = 'rejected'", "--write").exit_code == 0
    out = tmp_path / "export"
    result = cli("graph", "export", "--format", "neo4j-admin", "--out", str(out))
    assert result.exit_code == 0, result.output
    maps = pl.read_csv(out / "relationships" / "MAPS_TO.csv", infer_schema=False)
    assert maps["status"].to_list() == ["rejected"]

def test_stop(cli, graph_ws, monkeypatch):
    monkeypatch.setenv("EHR_R1_GRAPH_LINGER", "60")
    assert cli("graph", "stats").exit_code == 0  # leaves the server lingering
    result = cli("graph", "stop")
    assert result.exit_code == 0 and "stopped" in result.output
    assert "no graph server" in cli("graph", "stop").output


def test_a_taken_socket_path_is_a_one_line_error_and_the_graph_is_untouched(cli, graph_ws):
    data_dir = graph_ws / "graph" / "falkordb"
    before = graph_files(data_dir)
    (data_dir / "falkordb.sock").write_text("something else")
    line = _one_line_error(cli("graph", "stats"))
    assert "not a socket" in line
    assert graph_files(data_dir) == before


def test_neo4j_unreachable_and_the_password_is_never_echoed(cli, workspace_dir, monkeypatch):
    uri = f"bolt://127.0.0.1:{free_bolt_port()}"
    monkeypatch.setenv("NEO4J_PASSWORD", SECRET)
    line = _one_line_error(cli("graph", "stats", "--backend", "neo4j", "--uri", uri))
    assert uri in line and SECRET not in line
    monkeypatch.delenv("NEO4J_PASSWORD")
    result = cli("graph", "stats", "--backend", "neo4j", "--uri", uri, "--ask-password", input=SECRET + "\n")
    assert result.exit_code == 2 and SECRET not in result.output


def test_neo4j_backend_through_the_cli(cli, workspace_dir, tmp_path):
    with bolt_endpoint(tmp_path / "bolt") as uri:
        store = open_store(backend="neo4j", uri=uri)
        load_small_graph(store)
        # one driver per endpoint (it wedges once a connection closes): read with this one
        facts = store.stats()
        store.close()
    assert facts["nodes"]["Concept"] == len(CONCEPTS) and facts["dialect"] == "falkordb"
    with bolt_endpoint(tmp_path / "bolt2") as uri:
        result = cli("graph", "query", "RETURN 1 AS one", "--backend", "neo4j", "--uri", uri, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"one": 1}]
