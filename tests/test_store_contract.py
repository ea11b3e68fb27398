"""The GraphStore contract, run on every backend: embedded FalkorDB, the neo4j driver against
FalkorDB's Bolt endpoint, and a real Neo4j when NEO4J_URI is set (marker neo4j).

Known dialect differences are pinned here, so that a query prototyped on one backend and
broken on the other shows up as a failing test, not as a surprise.
"""

from __future__ import annotations

import pytest

from graphkit.errors import ConfigError, CypherError, GraphError, StoreError
from graphkit.store.paths import find_paths
from graphkit.store.vocab import edge_id
from tests.store_data import (  # noqa: F401 (fixtures)
    BACKEND_PARAMS,
    CONCEPTS,
    RELATIONS,
    backend_store,
    bridge_session_store,
    embedded_session_store,
    load_small_graph,
    real_neo4j_session_store,
    small_graph_bulk,
)


@pytest.fixture(params=BACKEND_PARAMS)
def store(request):
    return backend_store(request)


@pytest.fixture()
def loaded(store):
    load_small_graph(store)
    return store


def _bridge(store) -> bool:
    """The neo4j driver talking to FalkorDB's Bolt endpoint (the test double of Neo4j)."""
    return store.backend == "neo4j" and store.dialect == "falkordb"


def _edges(store) -> set[tuple]:
    rows = store.query(
        "MATCH (a)-[r]->(b) RETURN coalesce(a.cui, a.id) AS a, type(r) AS t, coalesce(b.cui, b.id) AS b, "
        "r.edge_id AS edge_id, r.sab AS sab, r.status AS status, r.rela AS rela"
    )
    return {tuple(row.values()) for row in rows}


# ---- writing and reading
def test_merge_is_idempotent_and_keeps_the_model(loaded):
    counts = {
        row["label"]: row["n"]
        for row in loaded.query("MATCH (n) RETURN labels(n)[0] AS label, count(n) AS n")
    }
    assert counts == {"Concept": len(CONCEPTS), "Code": 2, "Item": 1}
    n_edges = loaded.query("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]
    assert n_edges == sum(len(rows) for rows in RELATIONS.values()) + 2 + 1
    odd = loaded.run("concept_by_cui", cui="C0000001")[0]
    assert odd["name"] == CONCEPTS[7]["name"]
    assert odd["semantic_types"] == []
    metformin = loaded.run("concept_by_cui", cui="C0025598")[0]
    assert metformin["semantic_types"] == ["T109", "T121"]


def test_edge_ids_are_deterministic_and_statuses_default_to_active(loaded):
    rows = loaded.query(
        "MATCH (a:Concept)-[r:ISA]->(b:Concept) RETURN a.cui AS a, b.cui AS b, r.sab AS sab, r.edge_id AS id, r.status AS status"
    )
    assert len(rows) == 4
    for row in rows:
        assert row["id"] == edge_id(row["a"], "ISA", row["b"], row["sab"])
        assert row["status"] == "active"
    assert len({row["id"] for row in rows}) == 4  # two SABs stating one pair: two edges
    rejected = loaded.query("MATCH ()-[r:MAY_TREAT {status: 'rejected'}]->() RETURN count(r) AS n")
    assert rejected[0]["n"] == 1


def test_values_come_back_as_plain_data_on_every_backend(loaded):
    row = loaded.query(
        "MATCH (a:Concept {cui: $cui})-[r:MAY_TREAT]->(b) RETURN a, r, b", {"cui": "C0025598"}
    )[0]
    assert row["a"]["_labels"] == ["Concept"] and row["a"]["cui"] == "C0025598"
    assert (
        row["r"]["_type"] == "MAY_TREAT"
        and row["r"]["_src"] == row["a"]["_id"]
        and row["r"]["_dst"] == row["b"]["_id"]
    )
    assert row["r"]["rela"] == "may_treat"
    path = loaded.query(
        "MATCH p = (a:Concept {cui: 'C0011860'})-[:ISA]->(:Concept) RETURN nodes(p) AS ns, relationships(p) AS rs"
    )[0]
    assert [n["cui"] for n in path["ns"]] == ["C0011860", "C0011849"]
    assert [r["_type"] for r in path["rs"]] == ["ISA"]


def test_merge_relationships_names_missing_endpoints(store):
    store.merge_nodes("Concept", CONCEPTS[:1])
    store.register_relation_types(["ISA"])
    with pytest.raises(GraphError) as error:
        store.merge_relationships("ISA", [{"src": "C0011849", "dst": "C9999999"}])
    assert "C9999999" in str(error.value)


def test_unknown_property_and_missing_key_are_refused(store):
    with pytest.raises(ConfigError, match="unknown property"):
        store.merge_nodes("Concept", [{"cui": "C0000009", "colour": "red"}])
    with pytest.raises(ConfigError, match="key 'cui'"):
        store.merge_nodes("Concept", [{"name": "no key"}])
    with pytest.raises(ConfigError, match="status"):
        store.merge_relationships("CODE_OF", [{"src": "a", "dst": "b", "status": "maybe"}])


def test_write_reports_the_failing_batch(store):
    with pytest.raises(CypherError, match=r"batch 1 \(rows 1-2\)"):
        store.write(
            "merge_nodes", [{"key": "C1"}, {"key": "C2"}], slots={"node_label": "Concept", "node_key": "cui"}
        )


# ---- injection: labels, types, hops, keys and parameter names never reach the query text
@pytest.mark.parametrize(
    "slots",
    [
        {"node_label": "Concept) DETACH DELETE n //", "node_key": "cui"},
        {"node_label": "Concept", "node_key": "cui}) DETACH DELETE n //"},
        {"node_label": "concept", "node_key": "cui"},
        {"node_label": "Concept`", "node_key": "cui"},
    ],
)
def test_injection_through_labels_and_keys_is_refused(loaded, slots):
    with pytest.raises((GraphError, ConfigError)):
        loaded.run("existing_keys", slots=slots, keys=["C0011849"])
    assert loaded.run("count_all_nodes")[0]["n"] == len(CONCEPTS) + 3


@pytest.mark.parametrize(
    "slots",
    [
        {"rel_types": ["ISA]->() MATCH (x) DETACH DELETE x //"], "max_hops": 3},
        {"rel_types": ["ISA|MAY_TREAT"], "max_hops": 3},
        {"rel_types": ["NOT_IN_THE_GRAPH"], "max_hops": 3},
        {"rel_types": "ISA", "max_hops": 3},
        {"rel_types": [], "max_hops": 3},
        {"rel_types": ["ISA"], "max_hops": "3] DETACH DELETE a //"},
        {"rel_types": ["ISA"], "max_hops": 33},
        {"rel_types": ["ISA"], "max_hops": True},
    ],
)
def test_injection_through_types_and_hops_is_refused(loaded, slots):
    with pytest.raises((GraphError, ConfigError)):
        loaded.run("typed_paths", slots=slots, source="C0011860", target="C0012634", limit=1)
    assert loaded.run("count_all_nodes")[0]["n"] == len(CONCEPTS) + 3


@pytest.mark.parametrize(
    "value",
    [
        "C0011849' OR 1=1 //",
        'C0011849"}) MATCH (x) DETACH DELETE x //',
        "C0011849\\",
        '\\"}) DETACH DELETE n //',
        "C0011849`",
        "x' } ) WITH 1 AS y MATCH (n) DETACH DELETE n RETURN 1 //",
        "x' MATCH (n) DETACH DELETE n //",
        'x" MATCH (n) DETACH DELETE n //',
    ],
)
def test_injection_through_parameter_values_is_inert(loaded, value):
    if _bridge(loaded) and ("\\" in value or "'" in value):
        # pinned: FalkorDB's Bolt endpoint pastes values into the query text unescaped
        # ("x' MATCH (n) DETACH DELETE n //" deletes the graph there); the store refuses them
        with pytest.raises(ConfigError, match="Bolt endpoint"):
            loaded.run("concept_by_cui", cui=value)
        assert loaded.run("count_all_nodes")[0]["n"] == len(CONCEPTS) + 3
        return
    assert loaded.run("concept_by_cui", cui=value) == []
    assert loaded.query("RETURN $v AS v", {"v": value})[0]["v"] == value
    assert loaded.run("count_all_nodes")[0]["n"] == len(CONCEPTS) + 3


def test_strange_values_round_trip(store):
    names = ['a"b', "line\nbreak", "ümlaut ✓", "{x: 1}", "$param", "}) //", "a`b"]
    if not _bridge(store):
        names += ["a'b", "a\\b", "a\\'b", '\\"}) //']
    rows = [{"cui": f"C00000{i:02d}", "name": name} for i, name in enumerate(names)]
    store.merge_nodes("Concept", rows)
    back = {
        row["cui"]: row["name"]
        for row in store.query("MATCH (c:Concept) RETURN c.cui AS cui, c.name AS name")
    }
    assert back == {row["cui"]: row["name"] for row in rows}


@pytest.mark.parametrize(
    "params", [{"x`) DETACH DELETE n //": 1}, {"": 1}, {"1x": 1}, {"x": float("nan")}, {"x": object()}]
)
def test_bad_parameters_are_refused_before_sending(loaded, params):
    with pytest.raises(ConfigError):
        loaded.query("RETURN 1 AS one", params)


# ---- errors
def test_syntax_error_names_the_query(store):
    with pytest.raises(CypherError) as error:
        store.query("MATCH (n)\nRETRN n", name="my query")
    message = str(error.value)
    assert "cypher query 'my query'" in message
    assert "\n" not in message
    if store.dialect == "neo4j" or store.backend == "embedded":
        assert "line 2, column" in message
    else:
        # pinned: FalkorDB's Bolt endpoint answers every error with "unknown error", no position
        assert "line" not in message


def test_named_query_files_are_checked(store):
    with pytest.raises(ConfigError, match="no such query file"):
        store.run("no_such_query")
    with pytest.raises(ConfigError, match="valid query name"):
        store.run("../etc/passwd")
    with pytest.raises(ConfigError, match="needs slot values"):
        store.run("count_nodes")
    with pytest.raises(ConfigError, match="no such slots"):
        store.run("count_all_nodes", slots={"node_label": "Concept"})


def test_read_only_queries(loaded):
    assert loaded.query("MATCH (c:Concept) RETURN count(c) AS n", read_only=True)[0]["n"] == len(CONCEPTS)
    if _bridge(loaded):
        loaded.query("CREATE (:Concept {cui: 'C0000099'})", read_only=True)
        assert loaded.run("concept_by_cui", cui="C0000099"), (
            "pinned: the Bolt endpoint ignores read access mode"
        )
        return
    with pytest.raises((CypherError, StoreError), match="read-only"):
        loaded.query("CREATE (:Concept {cui: 'C0000099'})", read_only=True)
    assert loaded.run("concept_by_cui", cui="C0000099") == []


# ---- dialect differences, pinned
def test_shortest_path_differences(loaded):
    bound = "MATCH (a:Concept {cui: 'C0011860'}), (b:Concept {cui: 'C0012634'}) "
    in_match = bound + "MATCH p = shortestPath((a)-[:ISA*]->(b)) RETURN length(p) AS n"
    undirected = bound + "RETURN length(shortestPath((a)-[:ISA*]-(b))) AS n"
    in_return = bound + "RETURN length(shortestPath((a)-[:ISA*]->(b))) AS n"
    assert loaded.query(in_return)[0]["n"] == 2
    if loaded.dialect == "falkordb":
        with pytest.raises(CypherError):
            loaded.query(in_match)
        with pytest.raises(CypherError):
            loaded.query(undirected)
        with pytest.raises(CypherError):  # no relationship filter inside shortestPath
            loaded.query(bound + "RETURN length(shortestPath((a)-[:ISA* {status: 'active'}]->(b))) AS n")
    else:
        assert loaded.query(in_match)[0]["n"] == 2
        assert loaded.query(undirected)[0]["n"] == 2


def test_schema_is_idempotent(loaded):
    loaded.ensure_schema()
    again = loaded.ensure_schema()
    if loaded.dialect == "falkordb":
        assert again == []  # nothing re-created: FalkorDB has no IF NOT EXISTS
    else:
        assert all("IF NOT EXISTS" in statement for statement in again)
    assert loaded.run("count_all_nodes")[0]["n"] == len(CONCEPTS) + 3


# ---- typed paths: direction, types, rejected edges
def test_paths_print_relation_names_and_direction(loaded):
    _, _, found = find_paths(loaded, "C0025598", "C0012634", max_hops=4)
    assert [p.render() for p in found] == [
        "Metformin (C0025598) -[MAY_TREAT]-> Type 2 diabetes mellitus (C0011860) -[ISA]-> "
        "Diabetes mellitus (C0011849) -[ISA]-> Disease (C0012634)"
    ] * 2  # the last step exists twice (SNOMEDCT_US and MSH)
    assert {p.steps[-1].sab for p in found} == {"SNOMEDCT_US", "MSH"}
    assert all(step.forward for p in found for step in p.steps)
    _, _, found = find_paths(loaded, "Type 1 diabetes mellitus", "C0011860", max_hops=3, any_direction=True)
    assert found[0].render() == (
        "Type 1 diabetes mellitus (C0011854) -[ISA]-> Diabetes mellitus (C0011849) <-[ISA]- Type 2 diabetes mellitus (C0011860)"
    )
    assert [step.forward for step in found[0].steps] == [True, False]


def test_paths_never_use_rejected_edges(loaded):
    # Insulin -[MAY_TREAT]-> Type 1 diabetes is rejected: no forward path is left
    _, _, forward = find_paths(loaded, "C0021641", "C0011854", max_hops=4)
    assert forward == []
    _, _, found = find_paths(loaded, "C0021641", "C0011854", max_hops=4, any_direction=True)
    assert [p.render() for p in found] == [
        "Insulin (C0021641) -[MAY_TREAT]-> Diabetes mellitus (C0011849) <-[ISA]- Type 1 diabetes mellitus (C0011854)"
    ]
    _, _, none = find_paths(loaded, "C0021641", "C0011854", max_hops=1, any_direction=True)
    assert none == []


def test_paths_respect_types_and_direction(loaded):
    _, _, only_isa = find_paths(loaded, "C0025598", "C0012634", types=["ISA"])
    assert only_isa == []
    _, _, backwards = find_paths(loaded, "C0011849", "C0025598")
    assert backwards == []
    _, _, any_direction = find_paths(loaded, "C0011849", "C0025598", any_direction=True)
    assert any_direction and not any_direction[0].steps[-1].forward


def test_paths_resolve_names_and_refuse_ambiguity(loaded):
    start, end, _ = find_paths(loaded, "metformin", "DISEASE")
    assert (start["cui"], end["cui"]) == ("C0025598", "C0012634")
    with pytest.raises(GraphError, match="C0000002"):
        find_paths(loaded, "Duplicate name", "Disease")
    with pytest.raises(GraphError, match="no concept"):
        find_paths(loaded, "C9999999", "Disease")
    with pytest.raises(ConfigError, match="same concept"):
        find_paths(loaded, "Disease", "C0012634")
    with pytest.raises(GraphError, match="vocabulary"):
        find_paths(loaded, "Disease", "Insulin", types=["NOT_A_TYPE"])


# ---- bulk load
def test_bulk_load_matches_the_merge_path(store):
    load_small_graph(store)
    merged = _edges(store)
    store.clear()
    nodes, relationships = small_graph_bulk()
    report = store.bulk_load(nodes, relationships)
    assert report["nodes"] == {"Concept": len(CONCEPTS), "Code": 2, "Item": 1}
    assert _edges(store) == merged
    assert store.run("concept_by_cui", cui="C0000001")[0]["name"] == CONCEPTS[7]["name"]
    assert set(store.vocab.relation_types) >= set(RELATIONS)


def test_bulk_load_refuses_a_non_empty_graph_and_replaces_on_request(store):
    nodes, relationships = small_graph_bulk()
    store.bulk_load(nodes, relationships)
    with pytest.raises(StoreError, match="already has"):
        store.bulk_load({"Concept": [{"cui": "C0000099"}]})
    report = store.bulk_load(
        {"Concept": [{"cui": "C0000099"}, {"cui": "C0000098"}]},
        {"ISA": [{"src": "C0000099", "dst": "C0000098"}]},
        replace=True,
    )
    assert report["relationships"] == {"ISA": 1}
    assert store.run("count_all_nodes")[0]["n"] == 2


def test_bulk_load_errors_leave_the_graph_untouched(store):
    nodes, relationships = small_graph_bulk()
    store.bulk_load(nodes, relationships)
    before = _edges(store)
    with pytest.raises(GraphError, match="C9999999"):
        store.bulk_load(
            {"Concept": [{"cui": "C0000099"}]},
            {"ISA": [{"src": "C0000099", "dst": "C9999999"}]},
            replace=True,
        )
    with pytest.raises(ConfigError, match="more than once"):
        store.bulk_load({"Concept": [{"cui": "C0000099"}, {"cui": "C0000099"}]}, replace=True)
    with pytest.raises(ConfigError, match="unknown"):
        store.bulk_load({"Concept": [{"cui": "C0000099", "colour": "red"}]}, replace=True)
    assert _edges(store) == before


def test_stats(loaded):
    facts = loaded.stats()
    assert facts["backend"] == loaded.backend
    assert facts["nodes"]["Concept"] == len(CONCEPTS)
    assert facts["relationships"]["ISA"] == 4
    assert facts["rejected"] == {"MAY_TREAT": 1}
    if loaded.backend == "embedded":
        loaded.ensure_schema()
        facts = loaded.stats()
        assert facts["clients"] >= 1 and facts["persistence"].startswith("AOF")
        assert set(facts["unique_constraints"]) == {"Concept.cui", "Code.id", "Item.id"}
        assert set(facts["unique_constraints"].values()) <= {"OPERATIONAL", "PENDING"}
