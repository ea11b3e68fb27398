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
2. Each round grows the side whose frontier has fewer allowed steps to read (the evidence side
   on a tie), so a hub is expanded only when the other side is costlier still; a side at
   ``max_hops`` levels cannot grow. Growing costs the frontier's size in *expanded nodes*; a
   round that would take the pair past ``max_expanded`` ends the search ("budget").
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

    def degrees(self, nodes: np.ndarray, mode: str) -> np.ndarray:
        """How many allowed steps leave each node (what ``expand`` would return per node)."""

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
    """The BFS levels of one root in one mode, with the steps that reach each level.

    ``steps[i]`` (i >= 1): every allowed step (from, to, edge) from level i-1 into level i, sorted
    by ``to``; the shortest-path DAG of the root, so paths are read back without new queries.
    ``dist`` (dense, int8) only for target sides.
    """

    __slots__ = ("root", "mode", "levels", "work", "steps", "step_maps", "raw", "visited", "dist", "cost")

    def __init__(self, root: int, mode: str):
        self.root = root
        self.mode = mode
        self.levels: list[np.ndarray] = [np.array([root], dtype=np.int64)]
        self.work: list[int] = []  # work[i]: allowed steps out of level i (what growing it reads)
        self.steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [(EMPTY, EMPTY, EMPTY)]
        # steps[i] as {to: [(edge key, edge, from), ...]}, built on first use for small levels
        self.step_maps: list[dict | None] = [None]
        # the expansion of the last level, kept unprocessed: a pair that meets there needs only
        # the steps into its meeting nodes, not the whole next level
        self.raw: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.visited: np.ndarray = self.levels[0]
        self.dist: np.ndarray | None = None
        self.cost = 1


# levels with at most this many steps are read through a dict (fewer numpy calls per path)
_SMALL_LEVEL, _SHARED_LEVEL = 32, 4096


def _rows_for(sorted_values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions in ``sorted_values`` of every element equal to one of ``wanted``."""
    lo = np.searchsorted(sorted_values, wanted, side="left")
    hi = np.searchsorted(sorted_values, wanted, side="right")
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return EMPTY
    return np.arange(total, dtype=np.int64) + np.repeat(lo - (np.cumsum(counts) - counts), counts)


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
    def find(self, evidence: Sequence[str], target: str, limit: int | None = None) -> list[PairResult]:
        """One PairResult per evidence concept, in the order given; ``limit`` paths each (max_paths)."""
        limit = min(limit or self.options.max_paths, self.options.max_paths)
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
                results.append(self._pair(cui, target, s, t, limit))
        return results

    def find_one(self, evidence: str, target: str, limit: int | None = None) -> PairResult:
        return self.find([evidence], target, limit)[0]

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

    def _expansion(self, side: _Side) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every allowed step out of the side's deepest level (visited nodes not yet removed)."""
        if side.raw is None:
            side.raw = self.adjacency.expand(side.levels[-1], side.mode)
            grown = 3 * side.raw[1].size
            side.cost += grown
            self._cost += grown
        return side.raw

    def _level(self, side: _Side, depth: int) -> np.ndarray:
        """Level ``depth`` of ``side``, computing the levels up to it when needed."""
        while len(side.levels) <= depth:
            side.step_maps.append(None)
            if side.levels[-1].size == 0:
                side.levels.append(EMPTY)
                side.steps.append((EMPTY, EMPTY, EMPTY))
                continue
            origin, reached, edge = self._expansion(side)
            side.raw = None
            if reached.size:
                self._mark = _grown(self._mark, max(self.adjacency.n_nodes, int(reached.max()) + 1), False)
                self._mark[side.visited] = True
                fresh = ~self._mark[reached]
                self._mark[side.visited] = False
                order = np.flatnonzero(fresh)
                order = order[np.argsort(reached[order], kind="stable")]
                origin, reached, edge = origin[order], reached[order], edge[order]
                first = np.ones(reached.size, dtype=bool)
                np.not_equal(reached[1:], reached[:-1], out=first[1:])
                new = reached[first]
            else:
                new = EMPTY
            side.levels.append(new)
            side.steps.append((origin, reached, edge))
            if new.size:
                side.visited = np.concatenate([side.visited, new])
                if side.dist is not None:
                    side.dist = _grown(side.dist, int(new[-1]) + 1, UNSEEN)
                    side.dist[new] = len(side.levels) - 1
            grown = new.size + 3 * reached.size
            side.cost += grown
            self._cost += grown
        return side.levels[depth]

    def _work(self, side: _Side, depth: int) -> int:
        """Allowed steps out of level ``depth``: the cost of growing it (levels up to it are built)."""
        while len(side.work) <= depth:
            level = side.levels[len(side.work)]
            side.work.append(int(self.adjacency.degrees(level, side.mode).sum()) if level.size else 0)
        return side.work[depth]

    @staticmethod
    def _dist(side: _Side, nodes: np.ndarray) -> np.ndarray:
        dist = side.dist
        if nodes.size and int(nodes.max()) >= dist.size:
            dist = side.dist = _grown(dist, int(nodes.max()) + 1, UNSEEN)
        return dist[nodes]

    # ---- one pair
    def _pair(self, evidence: str, target: str, s: int, t: int, limit: int) -> PairResult:
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
                grow_s = can_s and (not can_t or self._work(s_side, a) <= self._work(t_side, b))
                size = s_front.size if grow_s else t_front.size
                if expanded + size > opts.max_expanded:
                    return PairResult(evidence, target, BUDGET, expanded)
                expanded += size
                top = None  # steps of the evidence side into the meeting nodes, when its level is not built
                if grow_s:
                    a += 1
                    if len(s_side.levels) > a:
                        level = s_side.levels[a]
                        meet = level[self._dist(t_side, level) == b] if level.size else EMPTY
                    else:
                        # Visited nodes cannot be at distance b from the target (that meeting would
                        # have been found before), so the raw expansion needs no visited filter.
                        origin, reached, edge = self._expansion(s_side)
                        hits = np.flatnonzero(self._dist(t_side, reached) == b) if reached.size else EMPTY
                        if hits.size == 0:
                            self._level(s_side, a)
                            continue
                        hits = hits[np.argsort(reached[hits], kind="stable")]
                        top = (origin[hits], reached[hits], edge[hits])
                        meet = np.unique(top[1])
                else:
                    b += 1
                    self._level(t_side, b)
                    visited = s_side.visited if len(s_side.levels) == a + 1 else np.concatenate(s_side.levels[: a + 1])
                    meet = visited[self._dist(t_side, visited) == b]
                if meet.size:
                    paths = self._enumerate(s_side, t_side, a, b, np.sort(meet), limit, top)
                    return PairResult(evidence, target, FOUND, expanded, a + b, paths)
        finally:
            self._evict((s_side, t_side))

    # ---- shortest paths through the meeting layer
    def _steps_into(self, side: _Side, depth: int, layer: Iterable[int], steps=None) -> list[tuple[object, int, int, int]]:
        """(edge key, edge, from, to) of every step of ``side`` from level depth-1 into ``layer``."""
        if steps is not None:  # already exactly the steps into the layer
            origin, reached, edge = steps
            keys = list(self.adjacency.edge_keys(edge))
            return list(zip(keys, edge.tolist(), origin.tolist(), reached.tolist(), strict=True))
        origin, reached, edge = side.steps[depth]
        # a target side serves every evidence concept of its target: worth a dict for bigger levels
        if reached.size <= (_SHARED_LEVEL if side.dist is not None else _SMALL_LEVEL):
            table = side.step_maps[depth]
            if table is None:
                table = side.step_maps[depth] = {}
                keys = list(self.adjacency.edge_keys(edge))
                for u, v, e, k in zip(origin.tolist(), reached.tolist(), edge.tolist(), keys, strict=True):
                    table.setdefault(v, []).append((k, e, u))
                side.cost += 8 * reached.size
                self._cost += 8 * reached.size
            return [(k, e, u, v) for v in layer for k, e, u in table.get(v, ())]
        rows = _rows_for(reached, np.fromiter(layer, dtype=np.int64))
        keys = list(self.adjacency.edge_keys(edge[rows]))
        return list(zip(keys, edge[rows].tolist(), origin[rows].tolist(), reached[rows].tolist(), strict=True))

    def _enumerate(
        self, s_side: _Side, t_side: _Side, a: int, b: int, meet: np.ndarray, limit: int, top=None
    ) -> list[FoundPath]:
        """The first ``limit`` shortest paths in edge-id order, read from the two sides' step DAGs.

        ``top``: the evidence side's steps into the meeting nodes when its level ``a`` is not built.
        """
        adjacency = self.adjacency
        successors: dict[int, list[tuple[object, int, int]]] = {}
        meet_nodes = meet.tolist()
        layer = meet_nodes
        for depth in range(a, 0, -1):  # back toward the evidence: steps into the layer
            steps = self._steps_into(s_side, depth, layer, top if depth == a else None)
            for key, edge, u, v in steps:
                successors.setdefault(u, []).append((key, edge, v))
            layer = list({u for _, _, u, _ in steps})
        layer = meet_nodes
        for depth in range(b, 0, -1):  # on toward the target: the target side's steps, walked backwards
            steps = self._steps_into(t_side, depth, layer)
            for key, edge, x, w in steps:
                successors.setdefault(w, []).append((key, edge, x))
            layer = list({x for _, _, x, _ in steps})
        for options in successors.values():
            options.sort()

        found: list[tuple[list[int], list[int]]] = []
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
