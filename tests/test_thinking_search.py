"""Path search on hand-made graphs (CSR snapshot): direction, relation names, caps, exclusions,
rejected edges, deterministic ties, and agreement with a brute-force enumeration."""

from __future__ import annotations

import itertools
import random
from collections import deque

import pytest

from graphkit.errors import ConfigError
from graphkit.thinking.options import DEFAULT_EXCLUDED_TYPES, SearchOptions
from graphkit.thinking.search import BUDGET, FOUND, MAX_HOPS, NO_PATH, SAME, UNKNOWN, PathFinder
from graphkit.thinking.snapshot import Snapshot
from tests.thinking_data import (
    CLINICAL,
    CLINICAL_CUIS,
    TIES,
    TIES_CUIS,
    concepts_frame,
    edges_frame,
    random_graph,
)


def finder(rows, cuis, **options) -> PathFinder:
    snapshot = Snapshot.from_frames(concepts_frame(cuis), edges_frame(rows))
    return PathFinder(snapshot.adjacency(SearchOptions(**options)))


def test_direction_forward_follows_stored_direction_only():
    f = finder(CLINICAL, CLINICAL_CUIS, direction="forward")
    found = f.find_one("C_DRUG", "C_DIS")
    assert found.status == FOUND and [p.edge_ids for p in found.paths] == [("e01",)]
    assert f.find_one("C_DIS", "C_DRUG").status == NO_PATH


def test_direction_both_walks_edges_backwards_and_keeps_their_stored_direction():
    f = finder(CLINICAL, CLINICAL_CUIS)
    result = f.find_one("C_DIS", "C_DRUG")
    assert result.status == FOUND
    (path,) = result.paths
    assert path.nodes == ("C_DIS", "C_DRUG")
    (edge,) = path.edges
    # stored as DRUG MAY_TREAT DIS; the path walks it from DIS to DRUG
    assert (edge.source, edge.relation, edge.target) == ("C_DRUG", "MAY_TREAT", "C_DIS")


def test_relation_names_rela_sab_and_origin_are_kept():
    f = finder(CLINICAL, CLINICAL_CUIS)
    (path,) = f.find_one("C_LAB", "C_SUB").paths
    assert path.nodes == ("C_LAB", "C_ANA", "C_DIS", "C_SUB")
    assert [(e.edge_id, e.relation, e.rela, e.sab, e.origin) for e in path.edges] == [
        ("e03", "MEASURES", "measures", "LNC", "umls"),
        ("e04", "HAS_COMPONENT", "has_component", "SNOMEDCT_US", "umls"),
        ("e02", "ISA", "isa", "SNOMEDCT_US", "umls"),
    ]
    (curated,) = f.find_one("C_CUR", "C_SUB").paths
    assert curated.edges[0].origin == "curator"


def test_excluded_types_rejected_edges_and_associations_are_never_traversed():
    f = finder(CLINICAL, CLINICAL_CUIS)
    # C_FAR -> C_DIS: excluded contraindication (e10) and rejected shortcut (e11) are skipped
    (path,) = f.find_one("C_FAR", "C_DIS").paths
    assert path.edge_ids == ("e05", "e06", "e07", "e08", "e09")
    # the association LAB -> DIS (e12) is excluded by default: the knowledge path is used
    assert f.find_one("C_LAB", "C_DIS").paths[0].edge_ids == ("e03", "e04")
    # the exclusion list is configurable
    opened = finder(CLINICAL, CLINICAL_CUIS, excluded_types=DEFAULT_EXCLUDED_TYPES - {"CONTRAINDICATED_WITH_DISEASE"})
    assert opened.find_one("C_FAR", "C_DIS").paths[0].edge_ids == ("e10",)
    with_assoc = finder(CLINICAL, CLINICAL_CUIS, excluded_types=frozenset())
    (assoc_path,) = with_assoc.find_one("C_LAB", "C_DIS").paths
    assert assoc_path.edge_ids == ("e12",) and assoc_path.edges[0].origin == "association"
    # still never the rejected edge
    assert all("e11" not in p.edge_ids for p in with_assoc.find_one("C_F1", "C_DIS").paths)


def test_rejected_edge_can_be_applied_to_a_snapshot_without_rebuild():
    snapshot = Snapshot.from_frames(concepts_frame(CLINICAL_CUIS), edges_frame(CLINICAL))
    assert snapshot.set_active(["e01"], False) == 1
    f = PathFinder(snapshot.adjacency(SearchOptions()))
    path = f.find_one("C_DRUG", "C_DIS")
    assert path.status == NO_PATH
    snapshot.set_active(["e01"], True)
    assert PathFinder(snapshot.adjacency(SearchOptions())).find_one("C_DRUG", "C_DIS").paths[0].edge_ids == ("e01",)


def test_max_hops_is_per_side():
    # C_FAR .. C_DIS is 5 edges: two sides of 2 hops reach 4 at most, 3 hops a side reach it
    assert finder(CLINICAL, CLINICAL_CUIS, max_hops=2).find_one("C_FAR", "C_DIS").status == MAX_HOPS
    assert finder(CLINICAL, CLINICAL_CUIS, max_hops=3).find_one("C_FAR", "C_DIS").status == FOUND


def test_max_expanded_counts_frontier_nodes_of_both_sides():
    chain = [(f"N{i}", f"N{i + 1}", "ISA", f"c{i}") for i in range(6)]
    cuis = {f"N{i}" for i in range(7)}
    # a chain of 6: frontiers stay at one node, so finding it expands exactly 6 nodes
    result = finder(chain, cuis).find_one("N0", "N6")
    assert (result.status, result.expanded, result.length) == (FOUND, 6, 6)
    assert finder(chain, cuis, max_expanded=6).find_one("N0", "N6").status == FOUND
    stopped = finder(chain, cuis, max_expanded=5).find_one("N0", "N6")
    assert (stopped.status, stopped.paths) == (BUDGET, [])


def test_ties_are_broken_by_edge_ids_not_insertion_order():
    expected = [("t1", "t7"), ("t5", "t7"), ("t9", "t3")]
    for seed in range(5):
        rows = list(TIES)
        random.Random(seed).shuffle(rows)
        result = finder(rows, TIES_CUIS).find_one("S", "T")
        assert result.length == 2
        assert [p.edge_ids for p in result.paths] == expected
    capped = finder(TIES, TIES_CUIS, max_paths=2).find_one("S", "T")
    assert [p.edge_ids for p in capped.paths] == expected[:2]
    # parallel edges of two sources are two paths through the same nodes
    assert capped.paths[0].nodes == capped.paths[1].nodes == ("S", "M2", "T")


def test_unknown_and_identical_concepts():
    f = finder(CLINICAL, CLINICAL_CUIS)
    results = f.find(["C_NOPE", "C_DIS", "C_ISO"], "C_DIS")
    assert [r.status for r in results] == [UNKNOWN, SAME, NO_PATH]


def test_options_are_validated():
    with pytest.raises(ConfigError, match="direction"):
        SearchOptions(direction="sideways")
    with pytest.raises(ConfigError, match="max-expanded"):
        SearchOptions(max_expanded=0)


def _brute_force(rows, s, t, options: SearchOptions, limit: int):
    """Every shortest path as an edge-id tuple, by plain BFS over allowed edges."""
    allowed = [r for r in rows if r[4] != "rejected" and r[2] not in options.excluded_types and r[0] != r[1]]
    steps = {}
    for src, dst, _, eid, *_ in allowed:
        steps.setdefault(src, []).append((eid, dst))
        if options.direction == "both":
            steps.setdefault(dst, []).append((eid, src))
    dist = {s: 0}
    queue = deque([s])
    while queue:
        u = queue.popleft()
        for _, v in steps.get(u, ()):
            if v not in dist:
                dist[v] = dist[u] + 1
                queue.append(v)
    if t not in dist:
        return None, []
    paths = []

    def extend(node, edges):
        if len(edges) == dist[t]:
            if node == t:
                paths.append(tuple(edges))
            return
        for eid, v in steps.get(node, ()):
            if dist.get(v) == len(edges) + 1:
                extend(v, [*edges, eid])

    extend(s, [])
    return dist[t], sorted(paths)[:limit]


@pytest.mark.parametrize("direction", ["both", "forward"])
def test_agrees_with_brute_force_on_random_graphs(direction):
    for seed in range(12):
        cuis, rows = random_graph(seed)
        options = dict(direction=direction, max_hops=50, max_expanded=10**9, max_paths=4)
        f = finder(rows, cuis, **options)
        normalized = edges_frame(rows).rows()
        pairs = list(itertools.product(cuis[:8], cuis[-8:]))
        random.Random(seed).shuffle(pairs)  # the level cache must not depend on the order of pairs
        for s, t in pairs:
            if s == t:
                continue
            length, expected = _brute_force(normalized, s, t, SearchOptions(**options), 4)
            result = f.find_one(s, t)
            assert result.length == length, (seed, s, t)
            assert [p.edge_ids for p in result.paths] == expected, (seed, s, t)
            for path in result.paths:
                assert path.nodes[0] == s and path.nodes[-1] == t and len(path.nodes) == len(path.edges) + 1


@pytest.mark.parametrize("direction", ["both", "forward"])
def test_compiled_kernel_equals_generic_search(direction):
    pytest.importorskip("numba", reason="the compiled search needs the 'fast' extra")
    from graphkit.thinking.kernel import KernelFinder

    for seed in range(10):
        cuis, rows = random_graph(seed, n_nodes=60, n_edges=160)
        snapshot = Snapshot.from_frames(concepts_frame(cuis), edges_frame(rows))
        for options in (
            SearchOptions(direction=direction, max_paths=5),
            SearchOptions(direction=direction, max_hops=2, max_expanded=7, max_paths=2),
        ):
            generic = PathFinder(snapshot.adjacency(options))
            compiled = KernelFinder(snapshot.adjacency(options))
            for target in cuis[:12]:
                evidence = cuis[20:40]
                for limit in (1, None):
                    ours = compiled.find(evidence, target, limit)
                    theirs = generic.find(evidence, target, limit)
                    assert [(r.status, r.length, r.expanded, r.paths) for r in ours] == [
                        (r.status, r.length, r.expanded, r.paths) for r in theirs
                    ], (seed, options, target)
