"""Thinking graphs: evidence selection, paths per target, roles, JSON round-trip, networkx export."""

from __future__ import annotations

import json
from collections import Counter

import polars as pl
import pytest

from graphkit.errors import ConfigError, InputError
from graphkit.thinking import (
    AssociationIndex,
    SearchOptions,
    Snapshot,
    ThinkingGraph,
    ThinkingGraphBuilder,
    ThinkingOptions,
)
from graphkit.thinking.builder import SnapshotBuilderFactory, build_parallel, thinking_requests
from tests.thinking_data import CLINICAL, CLINICAL_CUIS, concepts_frame, edges_frame

ASSOCIATIONS = pl.DataFrame(
    [
        ("dx", "C_DRUG", "C_DIS", 9, 0.9, 9.0, "a1"),
        ("dx", "C_ISO", "C_DIS", 8, 0.8, 8.0, "a2"),
        ("dx", "C_LAB", "C_DIS", 7, 0.7, 7.0, "a3"),
        ("dx", "C_FAR", "C_DIS", 6, 0.6, 6.0, "a4"),
        ("dx", "C_CUR", "C_SUB", 10, 1.0, 10.0, "a5"),
        ("px", "C_FAR", "C_ANA", 10, 1.0, 10.0, "a6"),
    ],
    schema=["task", "source", "target", "support", "confidence", "lift", "edge_id"],
    orient="row",
)
CONTEXT = ["C_DRUG", "C_LAB", "C_ISO", "C_CUR", "C_FAR_AWAY"]
TARGETS = ["C_DIS", "C_SUB", "C_ANA", "C_SUB"]


@pytest.fixture(scope="module")
def snapshot():
    return Snapshot.from_frames(concepts_frame(CLINICAL_CUIS), edges_frame(CLINICAL))


def make_builder(snapshot, **options) -> ThinkingGraphBuilder:
    opts = ThinkingOptions(**options)
    return ThinkingGraphBuilder(snapshot.adjacency(opts.search), AssociationIndex(ASSOCIATIONS), opts, graph_hash="g1")


def test_evidence_paths_roles_and_unexplained_targets(snapshot):
    graph = make_builder(snapshot).build("s1", "dx", CONTEXT, TARGETS)
    # evidence: associated context concepts, best lift first; C_FAR is not in the context
    assert graph.evidence == {"C_ANA": [], "C_DIS": ["C_DRUG", "C_ISO", "C_LAB"], "C_SUB": ["C_CUR"]}
    # shortest first; C_ISO has no path
    assert graph.paths == {"C_DIS": [["e01"], ["e03", "e04"]], "C_SUB": [["e13"]]}
    assert graph.unexplained_targets == ["C_ANA"]
    roles = {n.cui: n.role for n in graph.nodes}
    # C_ANA is a target and an intermediate: shown as the target
    assert roles == {
        "C_ANA": "target", "C_DIS": "target", "C_SUB": "target",
        "C_CUR": "evidence", "C_DRUG": "evidence", "C_ISO": "evidence", "C_LAB": "evidence",
    }
    assert [n.cui for n in graph.nodes][:3] == ["C_ANA", "C_DIS", "C_SUB"]
    assert graph.node("C_DIS").name == "name of C_DIS" and graph.node("C_DIS").semantic_type == "T047"
    by_id = {e.edge_id: e for e in graph.edges}
    assert set(by_id) == {"a1", "a2", "a3", "a5", "e01", "e03", "e04", "e13"}
    assert by_id["a3"].origin == "association" and by_id["a3"].lift == 7.0 and by_id["a3"].support == 7
    assert by_id["e13"].origin == "curator" and by_id["e01"].relation == "MAY_TREAT"
    assert (graph.graph_hash, graph.config_hash) == ("g1", ThinkingOptions().hash())
    # associations of another task are not used
    assert make_builder(snapshot).build("s2", "px", ["C_FAR"], ["C_ANA"]).evidence == {"C_ANA": ["C_FAR"]}


def test_caps_of_evidence_targets_and_paths_per_pair(snapshot):
    graph = make_builder(snapshot, max_evidence=1, max_targets=2).build("s1", "dx", CONTEXT, TARGETS)
    assert graph.evidence == {"C_ANA": [], "C_DIS": ["C_DRUG"]}
    assert graph.targets == ["C_ANA", "C_DIS"]
    wide = make_builder(snapshot, search=SearchOptions(max_paths=3), paths_per_pair=2)
    assert wide.build("s1", "dx", ["C_LAB"], ["C_DIS"]).paths == {"C_DIS": [["e03", "e04"]]}
    with pytest.raises(ConfigError, match="paths-per-pair"):
        ThinkingOptions(paths_per_pair=11)
    other = ThinkingOptions(search=SearchOptions(direction="forward"))
    with pytest.raises(ConfigError, match="other search options"):
        ThinkingGraphBuilder(snapshot.adjacency(SearchOptions()), AssociationIndex(ASSOCIATIONS), other)


def test_steps_report_walking_direction(snapshot):
    graph = make_builder(snapshot).build("s1", "dx", CONTEXT, TARGETS)
    steps = graph.steps("C_DIS", 1)
    # LAB MEASURES ANA walked forward; DIS HAS_COMPONENT ANA walked backwards from ANA to DIS
    assert [(s.start, s.edge.relation, s.end, s.forward) for s in steps] == [
        ("C_LAB", "MEASURES", "C_ANA", True),
        ("C_ANA", "HAS_COMPONENT", "C_DIS", False),
    ]
    assert graph.used_edge_ids() == ["e01", "e03", "e04", "e13"]


def test_json_round_trip_and_validation(snapshot):
    graph = make_builder(snapshot).build("s1", "dx", CONTEXT, TARGETS)
    text = graph.to_json()
    again = ThinkingGraph.from_json(text)
    assert again == graph and again.to_json() == text
    data = json.loads(text)
    assert set(data) == {"sample_id", "task", "graph_hash", "config_hash", "nodes", "edges", "evidence", "paths", "unexplained_targets"}
    assert "lift" not in next(e for e in data["edges"] if e["edge_id"] == "e01")
    broken = json.loads(text)
    broken["paths"]["C_DIS"][1] = ["e03", "nope"]
    with pytest.raises(InputError, match="unknown edge"):
        ThinkingGraph.from_dict(broken)
    disconnected = json.loads(text)
    disconnected["paths"]["C_DIS"][1] = ["e13", "e04"]
    with pytest.raises(InputError, match="not connected"):
        ThinkingGraph.from_dict(disconnected)
    with pytest.raises(InputError, match="not JSON"):
        ThinkingGraph.from_json("{")
    with pytest.raises(InputError, match="not a thinking graph"):
        ThinkingGraph.from_dict({"sample_id": "x"})


def test_networkx_export(snapshot):
    graph = make_builder(snapshot).build("s1", "dx", CONTEXT, TARGETS)
    nxg = graph.to_networkx()
    assert nxg.number_of_nodes() == len(graph.nodes) and nxg.number_of_edges() == len(graph.edges)
    assert nxg.nodes["C_LAB"]["role"] == "evidence"
    # stored direction: DIS -HAS_COMPONENT-> ANA although the path walks it backwards
    assert nxg.edges["C_DIS", "C_ANA", "e04"]["relation"] == "HAS_COMPONENT"
    assert nxg.edges["C_LAB", "C_DIS", "a3"]["origin"] == "association"
    assert nxg.graph["paths"] == graph.paths


def test_requests_from_concept_rows_and_parallel_build_match_serial(snapshot, tmp_path):
    rows = [("s1", "dx", "train", "context", c) for c in CONTEXT] + [("s1", "dx", "train", "target", t) for t in TARGETS]
    rows += [("s2", "px", "test", "context", "C_FAR"), ("s2", "px", "test", "target", "C_ANA")]
    concepts = pl.DataFrame(rows, schema=["sample_id", "task", "split", "role", "cui"], orient="row")
    requests = list(thinking_requests(concepts))
    assert requests[0] == ("s1", "dx", sorted(CONTEXT), ["C_ANA", "C_DIS", "C_SUB"])
    serial = [make_builder(snapshot).build(*r) for r in requests]
    stats = Counter()
    factory = SnapshotBuilderFactory(snapshot.save(tmp_path / "snap"), ASSOCIATIONS, ThinkingOptions(), "g1")
    parallel = list(build_parallel(factory, requests * 3, workers=2, chunk_size=1, stats=stats))
    assert parallel == serial * 3
    assert stats["graphs"] == 6 and stats["found"] == 12 and stats["no_path"] == 3
