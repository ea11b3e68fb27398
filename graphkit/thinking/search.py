"""Bidirectional, typed, directed path search between an evidence concept and a target concept.

One algorithm, two adjacency sources: an in-memory CSR snapshot (graphkit.thinking.snapshot,
for batch work) and the graph store queried level by level in Cypher
(graphkit.thinking.store_search). Because the result is defined by the graph alone, both give
identical paths; tests assert it.

The search, for a pair (s, t) and SearchOptions:

1. Level-synchronous BFS from s (following edges forward, or either way with direction="both")
   and from t (following edges backward, or either way). Levels are sets of concepts at exact
   distance i from their root over allowed edges: relationship type not excluded, status not
   "rejected", no self-loops. A side grows by one whole level at a time.
2. Each round grows the side whose current frontier is smaller (the evidence side on a tie), a
   side at ``max_hops`` levels cannot grow. Growing costs the frontier's size in *expanded
   nodes*; a round that would take the pair past ``max_expanded`` ends the search ("budget").
   An empty frontier ends it too ("no_path": the root's reachable set is exhausted).
3. When a new level touches the other side, the shortest length D is known; every shortest
   path is then enumerated in lexicographic order of its edge-id sequence (evidence -> target)
   and the first ``max_paths`` are returned. Ties are therefore broken by edge ids, which are
   stable across rebuilds, never by storage order.

Levels depend only on the root, so they are cached per concept and shared by every pair that
uses it (a target's 20 evidence concepts share its levels).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from graphkit.thinking.model import Edge
from graphkit.thinking.options import SearchOptions

UNSEEN = np.int8(127)
EMPTY = np.empty(0, dtype=np.int64)

# expansion modes: which stored direction a step may follow
OUT, IN, BOTH = "out", "in", "both"
_REVERSE = {OUT: IN, IN: OUT, BOTH: BOTH}

# why a pair search ended
FOUND, NO_PATH, BUDGET, MAX_HOPS, UNKNOWN, SAME = "found", "no_path", "budget", "max_hops", "unknown", "same"


class Adjacency(Protocol):
    """Where the search reads the graph. Node and edge handles are non-negative ints.

    An adjacency is built for one SearchOptions (``options``): it leaves out the excluded types
    and rejected edges itself.
    """

    options: SearchOptions

    def lookup(self, cuis: Sequence[str]) -> np.ndarray:
        """Node handles of these CUIs, -1 for a CUI that is not a concept of the graph."""

    def expand(self, nodes: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Allowed steps out of ``nodes``: (from_node, to_node, edge) arrays. ``mode``: out/in/both."""

    def edge_keys(self, edges: np.ndarray) -> Sequence:
        """Sort keys that order edges as their edge_id strings do."""

    def edge_records(self, edges: Iterable[int]) -> dict[int, Edge]:
        """The model edge of each handle."""

    def cuis(self, nodes: Iterable[int]) -> list[str]: ...

    @property
    def n_nodes(self) -> int:
        """An upper bound of the node handles seen so far (grows for lazy adjacencies)."""


@dataclass(frozen=True)
class FoundPath:
    nodes: tuple[str, ...]  # evidence ... target
    edges: tuple[Edge, ...]  # in walking order, each in its stored direction

    def __len__(self) -> int:
        return len(self.edges)

    @property
    def edge_ids(self) -> tuple[str, ...]:
        return tuple(e.edge_id for e in self.edges)


@dataclass
class PairResult:
    evidence: str
    target: str
    status: str
    expanded: int = 0
    length: int | None = None
    paths: list[FoundPath] = field(default_factory=list)


class _Side:
    """The BFS levels of one root in one mode; ``dist`` (dense, int8) only for target sides."""

    __slots__ = ("root", "mode", "levels", "visited", "dist", "cost")

    def __init__(self, root: int, mode: str):
        self.root = root
        self.mode = mode
        self.levels: list[np.ndarray] = [np.array([root], dtype=np.int64)]
        self.visited: np.ndarray = self.levels[0]
        self.dist: np.ndarray | None = None
        self.cost = 1


def _grown(array: np.ndarray, size: int, fill) -> np.ndarray:
    if array.size >= size:
        return array
    extra = np.full(max(size, 2 * array.size) - array.size, fill, dtype=array.dtype)
    return np.concatenate([array, extra])


class PathFinder:
    """Pair searches over one adjacency (and its options); caches levels per root."""

    def __init__(self, adjacency: Adjacency, cache_cost: int = 20_000_000):
        self.adjacency = adjacency
        self.options = adjacency.options
        self._s_mode = BOTH if self.options.direction == "both" else OUT
        self._t_mode = BOTH if self.options.direction == "both" else IN
        self._sides: OrderedDict[tuple[int, str], _Side] = OrderedDict()
        self._cache_cost = cache_cost
        self._cost = 0
        self._mark = np.zeros(max(adjacency.n_nodes, 1), dtype=bool)

    # ---- public
    def find(self, evidence: Sequence[str], target: str) -> list[PairResult]:
        """One PairResult per evidence concept, in the order given."""
        handles = self.adjacency.lookup([target, *evidence])
        t = int(handles[0])
        results = []
        for cui, s in zip(evidence, handles[1:], strict=True):
            s = int(s)
            if cui == target:
                results.append(PairResult(cui, target, SAME))
            elif s < 0 or t < 0:
                results.append(PairResult(cui, target, UNKNOWN))
            else:
                results.append(self._pair(cui, target, s, t))
        return results

    def find_one(self, evidence: str, target: str) -> PairResult:
        return self.find([evidence], target)[0]

    # ---- sides and levels
    def _side(self, root: int, mode: str, dense: bool) -> _Side:
        key = (root, mode)
        side = self._sides.get(key)
        if side is None:
            side = _Side(root, mode)
            self._sides[key] = side
            self._cost += side.cost
        else:
            self._sides.move_to_end(key)
        if dense and side.dist is None:
            dist = np.full(max(self.adjacency.n_nodes, root + 1), UNSEEN, dtype=np.int8)
            for depth, level in enumerate(side.levels):
                dist = _grown(dist, int(level.max()) + 1 if level.size else 0, UNSEEN)
                dist[level] = depth
            side.dist = dist
            side.cost += dist.size // 8
            self._cost += dist.size // 8
        return side

    def _evict(self, keep: Iterable[_Side]) -> None:
        keep_ids = {id(s) for s in keep}
        while self._cost > self._cache_cost and len(self._sides) > len(keep_ids):
            for key, side in self._sides.items():
                if id(side) not in keep_ids:
                    del self._sides[key]
                    self._cost -= side.cost
                    break
            else:
                return

    def _level(self, side: _Side, depth: int) -> np.ndarray:
        """Level ``depth`` of ``side``, computing the levels up to it when needed."""
        while len(side.levels) <= depth:
            frontier = side.levels[-1]
            if frontier.size == 0:
                side.levels.append(EMPTY)
                continue
            _, reached, _ = self.adjacency.expand(frontier, side.mode)
            candidates = np.unique(reached)
            if candidates.size:
                self._mark = _grown(self._mark, max(self.adjacency.n_nodes, int(candidates[-1]) + 1), False)
                self._mark[side.visited] = True
                new = candidates[~self._mark[candidates]]
                self._mark[side.visited] = False
            else:
                new = EMPTY
            side.levels.append(new)
            if new.size:
                side.visited = np.concatenate([side.visited, new])
                if side.dist is not None:
                    side.dist = _grown(side.dist, int(new[-1]) + 1, UNSEEN)
                    side.dist[new] = len(side.levels) - 1
            side.cost += new.size
            self._cost += new.size
        return side.levels[depth]

    @staticmethod
    def _dist(side: _Side, nodes: np.ndarray) -> np.ndarray:
        dist = side.dist
        if nodes.size and int(nodes.max()) >= dist.size:
            dist = side.dist = _grown(dist, int(nodes.max()) + 1, UNSEEN)
        return dist[nodes]

    # ---- one pair
    def _pair(self, evidence: str, target: str, s: int, t: int) -> PairResult:
        opts = self.options
        s_side = self._side(s, self._s_mode, dense=False)
        t_side = self._side(t, self._t_mode, dense=True)
        a = b = expanded = 0
        try:
            while True:
                s_front = s_side.levels[a]
                t_front = t_side.levels[b]
                if s_front.size == 0 or t_front.size == 0:
                    return PairResult(evidence, target, NO_PATH, expanded)
                can_s, can_t = a < opts.max_hops, b < opts.max_hops
                if not (can_s or can_t):
                    return PairResult(evidence, target, MAX_HOPS, expanded)
                grow_s = can_s and (not can_t or s_front.size <= t_front.size)
                size = s_front.size if grow_s else t_front.size
                if expanded + size > opts.max_expanded:
                    return PairResult(evidence, target, BUDGET, expanded)
                expanded += size
                if grow_s:
                    a += 1
                    level = self._level(s_side, a)
                    meet = level[self._dist(t_side, level) == b] if level.size else EMPTY
                else:
                    b += 1
                    self._level(t_side, b)
                    visited = s_side.visited if len(s_side.levels) == a + 1 else np.concatenate(s_side.levels[: a + 1])
                    meet = visited[self._dist(t_side, visited) == b]
                if meet.size:
                    paths = self._enumerate(s_side, t_side, a, b, np.sort(meet))
                    return PairResult(evidence, target, FOUND, expanded, a + b, paths)
        finally:
            self._evict((s_side, t_side))

    # ---- shortest paths through the meeting layer
    def _enumerate(self, s_side: _Side, t_side: _Side, a: int, b: int, meet: np.ndarray) -> list[FoundPath]:
        adjacency = self.adjacency
        total = a + b
        steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (from, to, edge) walking s -> t
        layer = meet
        for depth in range(a - 1, -1, -1):  # back toward the evidence
            back, prev, edge = adjacency.expand(layer, _REVERSE[self._s_mode])
            keep = np.isin(prev, s_side.levels[depth])
            back, prev, edge = back[keep], prev[keep], edge[keep]
            steps.append((prev, back, edge))
            layer = np.unique(prev)
        layer = meet
        for depth in range(a + 1, total + 1):  # on toward the target
            start, nxt, edge = adjacency.expand(layer, self._s_mode)
            keep = self._dist(t_side, nxt) == total - depth if nxt.size else np.zeros(0, dtype=bool)
            start, nxt, edge = start[keep], nxt[keep], edge[keep]
            steps.append((start, nxt, edge))
            layer = np.unique(nxt)

        successors: dict[int, list[tuple[object, int, int]]] = {}
        for start, nxt, edge in steps:
            keys = list(adjacency.edge_keys(edge))
            for u, v, e, k in zip(start.tolist(), nxt.tolist(), edge.tolist(), keys, strict=True):
                successors.setdefault(u, []).append((k, e, v))
        for options in successors.values():
            options.sort()

        found: list[tuple[list[int], list[int]]] = []
        limit = self.options.max_paths
        target = t_side.root

        def walk(node: int, nodes: list[int], edges: list[int]) -> None:
            if node == target:
                found.append((list(nodes), list(edges)))
                return
            for _, edge, nxt in successors.get(node, ()):
                if len(found) >= limit:
                    return
                nodes.append(nxt)
                edges.append(edge)
                walk(nxt, nodes, edges)
                nodes.pop()
                edges.pop()

        walk(s_side.root, [s_side.root], [])
        if not found:
            return []
        records = adjacency.edge_records({e for _, es in found for e in es})
        handles = sorted({n for ns, _ in found for n in ns})
        cui_of = dict(zip(handles, adjacency.cuis(handles), strict=True))
        return [FoundPath(tuple(cui_of[n] for n in ns), tuple(records[e] for e in es)) for ns, es in found]
