"""The vocabulary, slots, parameters, the schema translation and the GRAPH.BULK encoding."""

from __future__ import annotations

import math

import polars as pl
import pytest

from graphkit.errors import ConfigError, GraphError
from graphkit.store import open_store
from graphkit.store.base import check_params, is_idempotent, render_slots
from graphkit.store.bulk import relationship_frame
from graphkit.store.schema import parse
from graphkit.store.vocab import CONCEPT_RELATION, ENGINE_TYPES, Vocabulary, check_relation_type, edge_id


@pytest.mark.parametrize("name", ["ISA", "MAY_TREAT", "R_2", "SRC_ASSOCIATED_WITH", "A" * 63])
def test_valid_relation_types(name):
    assert check_relation_type(name) == name


@pytest.mark.parametrize(
    "name", ["isa", "_ISA", "2ISA", "IS-A", "IS A", "ISA`", "ISA]->()", "A" * 64, "", None, "CODE_OF", "MAPS_TO", "Concept"]
)
def test_invalid_or_reserved_relation_types(name):
    with pytest.raises(GraphError):
        check_relation_type(name)


def test_vocabulary_is_closed_and_extends_by_data():
    vocab = Vocabulary(["ISA"])
    assert vocab.rel_type("ISA") == "ISA" and vocab.rel_type("CODE_OF") == "CODE_OF"
    with pytest.raises(GraphError, match="not in the graph's vocabulary"):
        vocab.rel_type("MAY_TREAT")
    wider = vocab.with_relation_types(["MAY_TREAT"])
    assert wider.rel_type("MAY_TREAT") == "MAY_TREAT" and "MAY_TREAT" not in vocab.types
    assert wider.spec("MAY_TREAT") is CONCEPT_RELATION and wider.spec("MAPS_TO") is ENGINE_TYPES["MAPS_TO"]
    with pytest.raises(GraphError, match="unknown node label"):
        vocab.label("Drug")


def test_edge_ids_are_stable_and_the_bulk_path_computes_the_same():
    first = edge_id("C0011860", "ISA", "C0011849", "SNOMEDCT_US")
    assert first == edge_id("C0011860", "ISA", "C0011849", "SNOMEDCT_US") and len(first) == 20
    assert first != edge_id("C0011860", "ISA", "C0011849", "MSH")
    assert first != edge_id("C0011849", "ISA", "C0011860", "SNOMEDCT_US")
    assert edge_id("a", "T", "b", None) == edge_id("a", "T", "b", "")
    frame = relationship_frame(
        "ISA", [{"src": "C0011860", "dst": "C0011849", "sab": "SNOMEDCT_US"}, {"src": "a", "dst": "b"}], CONCEPT_RELATION
    )
    assert frame["edge_id"].to_list() == [first, edge_id("a", "ISA", "b", None)]
    assert frame["status"].to_list() == ["active", "active"]


def test_slots_by_kind():
    vocab = Vocabulary(["ISA", "MAY_TREAT"])
    text = "MATCH (a:{{a_label}})-[:{{rel_types}}*1..{{max_hops}}]-(b) WHERE a.{{a_key}} = $x MERGE (a)-[:{{rel_type}}]->(b)"
    slots = {"a_label": "Concept", "rel_types": ["ISA", "MAY_TREAT", "ISA"], "max_hops": 6, "a_key": "cui", "rel_type": "ISA"}
    assert render_slots(text, slots, vocab, "q") == (
        "MATCH (a:Concept)-[:ISA|MAY_TREAT*1..6]-(b) WHERE a.cui = $x MERGE (a)-[:ISA]->(b)"
    )
    with pytest.raises(ConfigError, match="needs slot values"):
        render_slots(text, {}, vocab, "q")
    with pytest.raises(ConfigError, match="unknown kind"):
        render_slots("RETURN {{thing}}", {"thing": 1}, vocab, "q")
    with pytest.raises(GraphError):
        render_slots("MATCH (n) RETURN n.{{a_key}}", {"a_key": "cui) DETACH DELETE n"}, vocab, "q")


def test_parameters_are_checked():
    assert check_params({"rows": [{"a": 1, "b": [1.5, None, "x"], "c": {"d": True}}]})
    for bad in ({"a b": 1}, {"x": math.inf}, {"x": [math.nan]}, {"x": {"`k": 1}}, {"x": {1: 2}}, {"x": b"bytes"}, {"x": {1, 2}}):
        with pytest.raises(ConfigError):
            check_params(bad)


def test_idempotence_rule():
    assert is_idempotent("UNWIND $rows AS row MERGE (n:Concept {cui: row.key}) SET n += row.properties")
    assert is_idempotent("CREATE INDEX FOR (n:Concept) ON (n.cui)")
    assert not is_idempotent("UNWIND $rows AS row CREATE (n:Concept) SET n = row")
    assert is_idempotent("MATCH (n) RETURN n // CREATE is only in a comment")


def test_schema_statements_are_parsed_strictly():
    item = parse("CREATE CONSTRAINT concept_cui IF NOT EXISTS FOR (n:Concept) REQUIRE n.cui IS UNIQUE")
    assert (item.kind, item.label, item.properties) == ("unique", "Concept", ("cui",))
    item = parse("CREATE INDEX code_sab_code IF NOT EXISTS\n FOR (n:Code) ON (n.sab, n.code)")
    assert (item.kind, item.properties) == ("node_index", ("sab", "code"))
    item = parse("CREATE INDEX edge_id_ISA IF NOT EXISTS FOR ()-[r:ISA]-() ON (r.edge_id)")
    assert (item.kind, item.label) == ("rel_index", "ISA")
    for bad in ("CREATE INDEX FOR (n:Concept) ON (n.cui)", "CREATE FULLTEXT INDEX x IF NOT EXISTS FOR (n:Concept) ON EACH [n.name]",
                "CREATE INDEX x IF NOT EXISTS FOR (n:Concept) ON (m.cui)"):
        with pytest.raises(ConfigError):
            parse(bad)


def test_bulk_encoding_round_trips_every_property_type(tmp_path):
    cases = [
        {"id": "case-1", "task": "lab", "targets": ["C0011849", "ü ✓"], "n_paths": 3, "thinking_graph": '{"a": "b\\\\c"}'},
        {"id": "case-2", "task": "", "targets": [], "n_paths": -(2**62)},
        {"id": "case-3", "targets": None, "n_paths": None, "unexplained_targets": ["x" * 500]},
    ]
    concepts = [{"cui": "C1"}, {"cui": "C2"}]
    associations = [{"src": "C1", "dst": "C2", "support": 7, "lift": 5.25, "confidence": 0.1, "task": "t", "edge_id": "e1"}]
    with open_store(tmp_path, graph="bulk", linger=0) as store:
        store.bulk_load({"Concept": concepts, "Case": cases}, {"ASSOCIATED_WITH": associations})
        back = {row["c"]["id"]: row["c"] for row in store.query("MATCH (c:Case) RETURN c")}
        rel = store.query("MATCH ()-[r:ASSOCIATED_WITH]->() RETURN r")[0]["r"]
    for case in cases:
        stored = {k: v for k, v in back[case["id"]].items() if not k.startswith("_")}
        assert stored == {k: v for k, v in case.items() if v is not None}
    assert (rel["support"], rel["lift"], rel["confidence"], rel["status"]) == (7, 5.25, 0.1, "active")


def test_bulk_load_of_the_mimic_demo_dictionary_keeps_every_name(tmp_path, demo_dir):
    """112k real ICD titles (commas, quotes, brackets, slashes) through GRAPH.BULK and back."""
    icd = pl.read_csv(demo_dir / "hosp" / "d_icd_diagnoses.csv.gz", infer_schema=False)
    codes = icd.select(
        pl.concat_str([pl.lit("ICD"), pl.col("icd_version"), pl.lit(":"), pl.col("icd_code")]).alias("id"),
        pl.concat_str([pl.lit("ICD"), pl.col("icd_version"), pl.lit("CM")]).alias("sab"),
        pl.col("icd_code").alias("code"),
        pl.col("long_title").alias("name"),
    )
    with open_store(tmp_path, graph="icd", linger=0) as store:
        report = store.bulk_load({"Code": codes})
        assert report["nodes"] == {"Code": len(codes)}
        back = pl.DataFrame(store.query("MATCH (c:Code) RETURN c.id AS id, c.sab AS sab, c.code AS code, c.name AS name"))
    assert back.sort("id").equals(codes.sort("id"))
