"""Thinking graphs on the graph store (embedded FalkorDB and the neo4j backend over FalkorDB's Bolt
endpoint): store-backed search == CSR snapshot, associations and usage records in Cypher."""

from __future__ import annotations

import itertools
import json

import polars as pl
import pytest

from graphkit.thinking import (
    AssociationIndex,
    MiningOptions,
    PathFinder,
    SearchOptions,
    Snapshot,
    StoreAdjacency,
    ThinkingGraphBuilder,
    ThinkingOptions,
    mine_associations,
    store_io,
)
from tests.store_data import (  # noqa: F401 (fixtures)
    BACKEND_PARAMS,
    backend_store,
    bridge_session_store,
    embedded_session_store,
)
from tests.thinking_data import (
    CLINICAL,
    CLINICAL_CUIS,
    TIES,
    TIES_CUIS,
    concepts_frame,
    edges_frame,
    random_graph,
)


@pytest.fixture(params=BACKEND_PARAMS)
def store(request):
    return backend_store(request)


def load(store, cuis, rows) -> tuple[pl.DataFrame, pl.DataFrame]:
    concepts, edges = concepts_frame(cuis), edges_frame(rows)
    store.register_relation_types(set(edges["type"]) - {"ASSOCIATED_WITH"})
    store.merge_nodes(
        "Concept",
        [
            {"cui": r["cui"], "name": r["name"], "semantic_types": [r["semantic_type"]], "semantic_group": r["semantic_group"]}
            for r in concepts.to_dicts()
        ],
    )
    for (rel_type,), group in edges.group_by("type"):
        allowed = store.vocab.spec(rel_type).properties
        store.merge_relationships(
            rel_type, [{k: v for k, v in r.items() if v != "" and (k in ("src", "dst") or k in allowed)} for r in group.to_dicts()]
        )
    return concepts, edges


def results(finder: PathFinder, pairs):
    out = []
    for s, t in pairs:
        r = finder.find_one(s, t)
        out.append((s, t, r.status, r.length, r.expanded, [(p.nodes, p.edges) for p in r.paths]))
    return out


@pytest.mark.parametrize("direction", ["both", "forward"])
def test_store_backed_search_equals_csr_snapshot(store, direction):
    graphs = [(CLINICAL_CUIS, CLINICAL), (TIES_CUIS, TIES), *(random_graph(seed, n_nodes=25, n_edges=60) for seed in (1, 2))]
    for number, (cuis, rows) in enumerate(graphs):
        store.clear()
        concepts, edges = load(store, cuis, rows)
        options = SearchOptions(direction=direction, max_paths=3, max_expanded=12 if number == 2 else 2000)
        nodes = sorted(cuis)
        pairs = [(s, t) for s, t in itertools.product(nodes[:10], nodes[-10:]) if s != t]
        from_frames = results(PathFinder(Snapshot.from_frames(concepts, edges).adjacency(options)), pairs)
        exported = Snapshot.from_store(store, page_size=7)  # small pages: the paging is exercised
        from_export = results(PathFinder(exported.adjacency(options)), pairs)
        live = results(PathFinder(StoreAdjacency(store, options, batch_size=3)), pairs)
        assert live == from_frames
        assert from_export == from_frames
        assert exported.n_edges == edges.height and exported.meta["rejected"] == int((edges["status"] == "rejected").sum())
        assert sum(1 for r in live if r[2] == "found") > 0


def test_rejecting_an_edge_in_the_store_takes_effect_at_once(store):
    load(store, CLINICAL_CUIS, CLINICAL)
    adjacency_options = SearchOptions()
    assert PathFinder(StoreAdjacency(store, adjacency_options)).find_one("C_DRUG", "C_DIS").paths[0].edge_ids == ("e01",)
    store.query("MATCH ()-[r {edge_id: 'e01'}]->() SET r.status = 'rejected'")
    assert PathFinder(StoreAdjacency(store, adjacency_options)).find_one("C_DRUG", "C_DIS").status == "no_path"
    snapshot = Snapshot.from_store(store)
    assert PathFinder(snapshot.adjacency(adjacency_options)).find_one("C_DRUG", "C_DIS").status == "no_path"


def _mining_cohort(test_leak: bool = False) -> pl.DataFrame:
    rows = []
    for i in range(40):
        sid = f"s{i}"
        rows.append((sid, "dx", "train", "context", "C_ISO"))
        if i < 6:
            rows += [(sid, "dx", "train", "context", "C_LAB"), (sid, "dx", "train", "target", "C_DIS")]
        if i < 5:
            rows += [(sid, "dx", "train", "context", "C_DRUG")]
    if test_leak:
        rows += [(f"t{i}", "dx", "test", "context", "C_FAR") for i in range(50)]
        rows += [(f"t{i}", "dx", "test", "target", "C_DIS") for i in range(50)]
    return pl.DataFrame(rows, schema=["sample_id", "task", "split", "role", "cui"], orient="row")


def test_associations_round_trip_keep_rejections_and_record_provenance(store):
    load(store, CLINICAL_CUIS, [r for r in CLINICAL if r[2] != "ASSOCIATED_WITH"])
    store_io.ensure_thinking_schema(store)
    mined = mine_associations(_mining_cohort(test_leak=True), MiningOptions(), cohort_label="unit")
    assert sorted(mined.associations["source"]) == ["C_DRUG", "C_LAB"]  # the test-split C_FAR never counted
    assert store_io.write_associations(store, mined) == {"dx": 2}
    back = store_io.load_associations(store, ["dx"]).sort("source")
    assert back.select("source", "target", "support", "edge_id").rows() == mined.associations.sort("source").select(
        "source", "target", "support", "edge_id"
    ).rows()
    run = store.query("MATCH (m:AssociationRun) RETURN m.task AS task, m.n_samples AS n, m.cohort AS cohort, m.options AS options")
    assert run == [{"task": "dx", "n": 40, "cohort": mined.runs[0]["cohort"], "options": json.dumps(MiningOptions().as_dict(), sort_keys=True)}]

    # a curator rejects one association; mining again with other options keeps it rejected and
    # deletes the other one, which the new run no longer keeps
    lab_edge = mined.associations.filter(pl.col("source") == "C_LAB")["edge_id"][0]
    store.query("MATCH ()-[r:ASSOCIATED_WITH {edge_id: $id}]->() SET r.status = 'rejected'", {"id": lab_edge})
    again = mine_associations(_mining_cohort(), MiningOptions(min_lift=4.9, min_support=6))
    assert again.associations["source"].to_list() == ["C_LAB"]
    store_io.write_associations(store, again)
    state = store.query("MATCH (a)-[r:ASSOCIATED_WITH]->() RETURN a.cui AS source, r.status AS status, r.config AS config")
    assert state == [{"source": "C_LAB", "status": "rejected", "config": again.runs[0]["config"]}]
    assert store_io.load_associations(store, ["dx"]).height == 0  # rejected: never evidence


def test_item_links_leave_rejected_mappings_out(store):
    load(store, CLINICAL_CUIS, CLINICAL[:2])
    store.merge_nodes("Item", [{"id": "labevents:1", "table": "labevents", "code": "1"}, {"id": "labevents:2", "table": "labevents", "code": "2"}])
    store.merge_relationships("MAPS_TO", [{"src": "labevents:1", "dst": "C_LAB"}, {"src": "labevents:2", "dst": "C_DRUG"}])
    store.query("MATCH (:Item {id: 'labevents:2'})-[m:MAPS_TO]->() SET m.status = 'rejected'")
    assert store_io.load_item_links(store).rows() == [("labevents:1", "C_LAB")]


ASSOCIATIONS = pl.DataFrame(
    [("dx", "C_DRUG", "C_DIS", 9, 0.9, 9.0, "a1"), ("dx", "C_LAB", "C_DIS", 7, 0.7, 7.0, "e12"), ("dx", "C_CUR", "C_SUB", 10, 1.0, 10.0, "a5")],
    schema=["task", "source", "target", "support", "confidence", "lift", "edge_id"],
    orient="row",
)


def test_thinking_graphs_and_usage_queries(store):
    concepts, edges = load(store, CLINICAL_CUIS, CLINICAL)
    store_io.ensure_thinking_schema(store)
    opts = ThinkingOptions()
    live = ThinkingGraphBuilder(StoreAdjacency(store, opts.search), AssociationIndex(ASSOCIATIONS), opts)
    batch = ThinkingGraphBuilder(Snapshot.from_store(store).adjacency(opts.search), AssociationIndex(ASSOCIATIONS), opts)
    requests = [
        ("case-1", "dx", ["C_DRUG", "C_LAB", "C_CUR"], ["C_DIS", "C_SUB"]),
        ("case-2", "dx", ["C_LAB"], ["C_DIS"]),
        ("case-3", "px", ["C_LAB"], ["C_DIS"]),
    ]
    graphs = [live.build(*r) for r in requests]
    assert graphs == [batch.build(*r) for r in requests]
    assert store_io.write_thinking_graphs(store, graphs) == 3

    rows = store_io.case_paths(store, "case-1")
    paths = [(r["target_cui"], r["role"], r["path"], r["position"], r["edge_id"], r["status"]) for r in rows]
    assert paths == [
        ("C_DIS", "path", 0, 0, "e01", "active"),
        ("C_DIS", "path", 1, 0, "e03", "active"),
        ("C_DIS", "path", 1, 1, "e04", "active"),
        ("C_DIS", "evidence", -1, -1, "a1", None),  # a1 is not in the graph (made-up id): no live edge
        ("C_DIS", "evidence", -1, -1, "e12", "active"),
        ("C_SUB", "path", 0, 0, "e13", "active"),
        ("C_SUB", "evidence", -1, -1, "a5", None),
    ]
    assert rows[2]["relation"] == "HAS_COMPONENT" and (rows[2]["source"], rows[2]["target"]) == ("C_DIS", "C_ANA")

    using = store_io.cases_using_edge(store, "e03")
    assert [(r["case_id"], r["task"], r["target_cuis"], r["uses"]) for r in using] == [
        ("case-1", "dx", ["C_DIS"], 1),
        ("case-2", "dx", ["C_DIS"], 1),
    ]
    top = store_io.top_edges(store, "dx", limit=3)
    assert [(r["edge_id"], r["cases"]) for r in top] == [("e03", 2), ("e04", 2), ("e01", 1)]
    assert {r["task"] for r in store_io.top_edges(store, None, limit=100)} == {"dx"}  # case-3 has no path

    # a curator rejects e04: the case's record shows it; rewriting the case replaces its uses
    store.query("MATCH ()-[r {edge_id: 'e04'}]->() SET r.status = 'rejected'")
    assert [r["status"] for r in store_io.case_paths(store, "case-2") if r["edge_id"] == "e04"] == ["rejected"]
    rebuilt = ThinkingGraphBuilder(StoreAdjacency(store, opts.search), AssociationIndex(ASSOCIATIONS), opts).build(*requests[1])
    assert rebuilt.unexplained_targets == ["C_DIS"]
    store_io.write_thinking_graphs(store, [rebuilt], include_json=True)
    assert [r["role"] for r in store_io.case_paths(store, "case-2")] == ["evidence"]
    assert [r["case_id"] for r in store_io.cases_using_edge(store, "e03")] == ["case-1"]
    stored = store.query("MATCH (c:Case {id: 'case-2'}) RETURN c.thinking_graph AS g, c.unexplained_targets AS u")[0]
    assert json.loads(stored["g"])["unexplained_targets"] == ["C_DIS"] and stored["u"] == ["C_DIS"]
