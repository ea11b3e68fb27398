"""The compiled pair search on a CSR snapshot (numba): the batch implementation.

Same definition as graphkit.thinking.search (level-synchronous bidirectional search; the side
with fewer allowed steps to read grows, the evidence side on a tie; ``max_expanded`` counts
frontier nodes; shortest paths in edge-id order), written as one loop over the CSR arrays. A
snapshot lists each node's entries in edge-handle order and handles are numbered in edge_id
order, so walking a list in order visits edges in tie-break order. One call searches all the
evidence concepts of a target: the target side's levels are built once for them; the evidence
side is built afresh for every pair (a compiled BFS is cheaper than caching it). Tests assert
identical results with the generic search on the snapshot and on the store.

Needs the ``fast`` extra (numba); ``finder_for`` falls back to the generic search without it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from graphkit.extras import available
from graphkit.thinking.search import (
    BOTH,
    BUDGET,
    FOUND,
    IN,
    MAX_HOPS,
    NO_PATH,
    OUT,
    SAME,
    UNKNOWN,
    FoundPath,
    PairResult,
    PathFinder,
)

log = logging.getLogger(__name__)

_STATUS = {0: FOUND, 1: NO_PATH, 2: MAX_HOPS, 3: BUDGET}
_KERNEL = None  # the graphkit.thinking._kernel_numba module, once imported


def kernel():
    """The numba module (imported on first use: importing numba takes a while)."""
    global _KERNEL
    if _KERNEL is None:
        from graphkit.thinking import _kernel_numba

        _KERNEL = _kernel_numba
    return _KERNEL


class KernelFinder:
    """PathFinder's ``find`` on a SnapshotAdjacency, by the compiled kernel."""

    def __init__(self, adjacency):
        self.adjacency = adjacency
        self.options = adjacency.options
        snap = adjacency.snapshot
        n = max(snap.n_nodes, 1)
        both = self.options.direction == "both"
        self._degree_s = adjacency.degrees(np.arange(snap.n_nodes), BOTH if both else OUT)
        self._degree_t = adjacency.degrees(np.arange(snap.n_nodes), BOTH if both else IN)
        # per CSR entry: may the evidence (target) side take this step? Read in list order, so the
        # hot loop never touches the per-edge arrays
        allowed = adjacency.allowed[snap.entry_edge]
        self._ok_s = allowed if both else allowed & snap.forward
        self._ok_t = allowed if both else allowed & ~snap.forward
        self._dist_s = np.full(n, -1, dtype=np.int8)  # levels <= max_hops <= 100
        self._dist_t = np.full(n, -1, dtype=np.int8)
        self._mark = np.zeros(n, dtype=np.uint8)
        self._visited_s = np.empty(n, dtype=np.int32)
        self._visited_t = np.empty(n, dtype=np.int32)
        hops = self.options.max_hops
        self._level_s = np.zeros(hops + 2, dtype=np.int64)
        self._level_t = np.zeros(hops + 2, dtype=np.int64)
        longest = 2 * hops + 1
        self._cursor = np.zeros(longest + 1, dtype=np.int64)
        self._stack = np.zeros(longest + 1, dtype=np.int64)
        self._t_depth = np.zeros(1, dtype=np.int64)
        self._kernel = kernel()

    def find(self, evidence: Sequence[str], target: str, limit: int | None = None) -> list[PairResult]:
        opts = self.options
        limit = min(limit or opts.max_paths, opts.max_paths)
        longest = 2 * opts.max_hops + 1
        handles = self.adjacency.lookup([target, *evidence])
        t = int(handles[0])
        results: list[PairResult | None] = [None] * len(evidence)
        searched = []
        for i, (cui, s) in enumerate(zip(evidence, handles[1:].tolist(), strict=True)):
            if cui == target:
                results[i] = PairResult(cui, target, SAME)
            elif s < 0 or t < 0:
                results[i] = PairResult(cui, target, UNKNOWN)
            else:
                searched.append(i)
        if not searched:
            return results
        sources = handles[1:][searched].astype(np.int64)
        k = len(searched)
        status, length = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
        expanded, count = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
        out_edges = np.zeros((k, limit + 1, longest), dtype=np.int64)  # row ``limit``: the path being walked
        out_nodes = np.zeros((k, limit, longest + 1), dtype=np.int64)
        snap = self.adjacency.snapshot
        self._kernel.target_pairs(
            t, sources, self._ok_s, self._ok_t, opts.max_hops, opts.max_expanded, limit,
            snap.indptr, snap.nbr, snap.entry_edge,
            self._degree_s, self._degree_t, self._dist_s, self._dist_t, self._mark,
            self._visited_s, self._visited_t, self._level_s, self._level_t, self._t_depth,
            status, length, expanded, count, out_edges, out_nodes, self._cursor, self._stack,
        )
        found = [j for j in range(k) if status[j] == 0]
        edge_rows = {j: out_edges[j, : count[j], : length[j]].tolist() for j in found}
        node_rows = {j: out_nodes[j, : count[j], : length[j] + 1].tolist() for j in found}
        records = self.adjacency.edge_records({e for rows in edge_rows.values() for row in rows for e in row})
        handles_used = sorted({n for rows in node_rows.values() for row in rows for n in row})
        cuis = dict(zip(handles_used, self.adjacency.cuis(handles_used), strict=True))
        for j, i in enumerate(searched):
            if status[j] != 0:
                results[i] = PairResult(evidence[i], target, _STATUS[int(status[j])], int(expanded[j]))
                continue
            paths = [
                FoundPath(tuple(cuis[n] for n in nodes), tuple(records[e] for e in edges))
                for nodes, edges in zip(node_rows[j], edge_rows[j], strict=True)
            ]
            results[i] = PairResult(evidence[i], target, FOUND, int(expanded[j]), int(length[j]), paths)
        return results

    def find_one(self, evidence: str, target: str, limit: int | None = None) -> PairResult:
        return self.find([evidence], target, limit)[0]


def finder_for(adjacency):
    """The compiled finder on a CSR snapshot when numba is installed; else the generic search."""
    from graphkit.thinking.snapshot import SnapshotAdjacency

    if isinstance(adjacency, SnapshotAdjacency) and available("numba"):
        return KernelFinder(adjacency)
    if isinstance(adjacency, SnapshotAdjacency):
        log.info("numba is not installed (extra 'fast'): the snapshot is searched by the generic, slower code")
    return PathFinder(adjacency)
