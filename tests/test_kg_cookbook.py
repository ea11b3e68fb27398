"""The demo graph (session fixture) and the Cypher cookbook: every example runs and answers on it."""

from __future__ import annotations

import re

import polars as pl
import pytest

import cypher
from graphkit.cli_common import parse_params
from graphkit.link import map_items, read_links

EXAMPLES = cypher.names("examples")
PARAMS = re.compile(r"^// params:(.*)$", re.MULTILINE)


def example_params(name: str) -> dict:
    match = PARAMS.search(cypher.load(name))
    assert match, f"{name} has no '// params:' line"
    return parse_params(match.group(1).split())


def test_demo_graph_counts_and_links(demo_graph):
    counts = demo_graph.result.counts
    assert counts["nodes"]["Concept"] > 200_000 and counts["relationships"]["MAPS_TO"] > 190_000
    assert demo_graph.store.run("count_all_nodes")[0]["n"] == counts["total_nodes"]
    links = read_links(demo_graph.links_dir)
    mapped = map_items(["labevents:50931", "diagnoses_icd:10:E11", "prescriptions:Insulin"], links)
    assert mapped.select("key", "method").rows() == [
        ("labevents:50931", "code_map"),
        ("diagnoses_icd:10:E11", "icd_code"),
    ]
    # the graph holds exactly the link table's MAPS_TO edges
    in_graph = demo_graph.store.query("MATCH (i:Item)-[m:MAPS_TO]->(c:Concept) RETURN count(m) AS n")[0]["n"]
    assert in_graph == links.height


@pytest.mark.parametrize("name", EXAMPLES)
def test_cookbook_example_answers_on_the_demo_graph(demo_graph, name):
    rows = demo_graph.store.query(cypher.load(name), example_params(name), name=name, read_only=True)
    assert rows, f"{name} returned no rows on the demo graph"


def test_cookbook_examples_say_what_they_claim(demo_graph):
    def run(name):
        return demo_graph.store.query(cypher.load(name), example_params(name), read_only=True)

    neighbours = demo_graph.store.query(
        cypher.load("examples/concept_neighbours"), {"cui": "C0011860", "limit": 1000}, read_only=True
    )
    # type 2 diabetes ISA diabetes mellitus (out); metformin MAY_TREAT type 2 diabetes (in)
    assert {"relation": "ISA", "direction": "out", "cui": "C0011849"}.items() <= next(
        r for r in neighbours if r["relation"] == "ISA" and r["cui"] == "C0011849"
    ).items()
    assert any(
        r["relation"] == "MAY_TREAT" and r["direction"] == "in" and r["name"] == "metformin"
        for r in neighbours
    )
    paths = run("examples/typed_paths")
    assert all(p["names"][0] == "metformin" and p["names"][-1] == "hyperglycemia" for p in paths)
    assert paths[0]["relations"][0] == "MAY_TREAT"
    assert run("examples/item_concepts")[0]["method"] == "code_map"
    assert {r["drug"] for r in run("examples/item_treatments")} >= {"metformin", "glipizide"}
    assert {r["phenotype"] for r in run("examples/lab_phenotypes")} == {"hyperglycemia", "hypoglycemia"}
    by_source = run("examples/source_vocabularies")
    mapped_to = sum(r["edges"] for r in by_source if r["relation"] == "MAPPED_TO")
    assert mapped_to == demo_graph.result.counts["relationships"]["MAPPED_TO"]
    assert by_source[0] == {"sab": "ICDGEM", "relation": "MAPPED_TO", "edges": 174004}
    unlinked = run("examples/unlinked_items")
    links = read_links(demo_graph.links_dir)
    assert not set(r["key"] for r in unlinked) & set(links["key"])


def test_every_example_is_in_the_readme_cookbook(repo_root):
    readme = (repo_root / "README.md").read_text()
    section = readme.split("<!-- section:cookbook -->", 1)[1].split("<!-- section:", 1)[0]
    for name in EXAMPLES:
        assert f"cypher/{name}.cypher" in section, f"{name} is not in the README cookbook"


def test_link_report_on_the_demo_graph(cli, demo_graph, monkeypatch):
    import json

    monkeypatch.setenv("EHR_R1_WORKSPACE", str(demo_graph.workspace.root))
    report = json.loads(cli("graph", "link-report", "--format", "json").output)
    tables = {row["table"]: row for row in report["tables"]}
    assert tables["diagnoses_icd"]["row_share"] == 1.0 and tables["labevents"]["row_share"] > 0.9
    assert report["graph_hash"] == demo_graph.result.graph_hash
    items = pl.read_parquet(demo_graph.links_dir / "items.parquet")
    assert tables["prescriptions"]["rows"] == items.filter(pl.col("table") == "prescriptions")["rows"].sum()
