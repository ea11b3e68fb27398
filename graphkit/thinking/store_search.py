"""The store-backed adjacency: the path search reads the graph through Cypher, level by level.

Each concept's relationships are fetched once (``thinking_out_edges`` / ``thinking_in_edges``,
batched over a frontier) with excluded types and rejected edges filtered in the query, and
cached for the life of the adjacency. Handles are assigned as concepts and edges are first seen.
Use it for single queries on the live graph (a curator's change shows at once); use the CSR
snapshot for batch work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from graphkit.thinking.model import Edge
from graphkit.thinking.options import SearchOptions
from graphkit.thinking.search import BOTH, IN, OUT
from graphkit.thinking.snapshot import edge_origin

_QUERY = {OUT: "thinking_out_edges", IN: "thinking_in_edges"}
_DEGREE_QUERY = {OUT: "thinking_out_degrees", IN: "thinking_in_degrees"}
_EMPTY = np.empty(0, dtype=np.int64)


def concept_row(row: dict) -> dict:
    types = row.get("semantic_types") or []
    return {
        "cui": row["cui"],
        "name": row.get("name") or "",
        "semantic_type": types[0] if types else "",
        "semantic_group": row.get("semantic_group") or "",
    }


class StoreAdjacency:
    def __init__(self, store, options: SearchOptions | None = None, *, batch_size: int = 1000):
        self.store = store
        self.options = options or SearchOptions()
        self.batch_size = batch_size
        self._excluded = sorted(self.options.excluded_types)
        self._handle: dict[str, int] = {}
        self._cui: list[str] = []
        self._concepts: dict[str, dict | None] = {}
        self._edge_handle: dict[str, int] = {}
        self._edges: list[Edge] = []
        self._lists: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {OUT: {}, IN: {}}
        self._degrees: dict[str, dict[int, int]] = {OUT: {}, IN: {}}

    @property
    def n_nodes(self) -> int:
        return len(self._cui)

    def _node(self, cui: str) -> int:
        handle = self._handle.get(cui)
        if handle is None:
            handle = self._handle[cui] = len(self._cui)
            self._cui.append(cui)
        return handle

    def concepts(self, cuis: Sequence[str]) -> dict[str, dict]:
        missing = sorted({c for c in cuis if c not in self._concepts})
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            for cui in chunk:
                self._concepts[cui] = None
            for row in self.store.run("thinking_concepts", cuis=chunk):
                self._concepts[row["cui"]] = concept_row(row)
        return {c: self._concepts[c] for c in cuis if self._concepts.get(c) is not None}

    def lookup(self, cuis: Sequence[str]) -> np.ndarray:
        known = self.concepts(cuis)
        return np.array([self._node(c) if c in known else -1 for c in cuis], dtype=np.int64)

    def _fetch(self, nodes: Iterable[int], direction: str) -> None:
        lists = self._lists[direction]
        missing = sorted({n for n in nodes if n not in lists})
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            found: dict[int, tuple[list[int], list[int]]] = {n: ([], []) for n in chunk}
            rows = self.store.run(_QUERY[direction], cuis=[self._cui[n] for n in chunk], excluded=self._excluded)
            for row in rows:
                here, other = row["cui"], row["other"]
                source, target = (here, other) if direction == OUT else (other, here)
                edge = self._edge_handle.get(row["edge_id"])
                if edge is None:
                    edge = self._edge_handle[row["edge_id"]] = len(self._edges)
                    self._edges.append(
                        Edge(
                            edge_id=row["edge_id"],
                            source=source,
                            target=target,
                            relation=row["relation"],
                            rela=row.get("rela") or "",
                            sab=row.get("sab") or "",
                            origin=edge_origin(row["relation"], row.get("source")),
                        )
                    )
                nbrs, edges = found[self._handle[here]]
                nbrs.append(self._node(other))
                edges.append(edge)
            for node, (nbrs, edges) in found.items():
                lists[node] = (np.array(nbrs, dtype=np.int64), np.array(edges, dtype=np.int64))

    def expand(self, nodes: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        directions = {OUT: (OUT,), IN: (IN,), BOTH: (OUT, IN)}[mode]
        origins, reached, edges = [], [], []
        node_list = [int(n) for n in nodes]
        for direction in directions:
            self._fetch(node_list, direction)
            lists = self._lists[direction]
            for node in node_list:
                nbrs, ids = lists[node]
                if nbrs.size:
                    origins.append(np.full(nbrs.size, node, dtype=np.int64))
                    reached.append(nbrs)
                    edges.append(ids)
        if not origins:
            return _EMPTY, _EMPTY, _EMPTY
        return np.concatenate(origins), np.concatenate(reached), np.concatenate(edges)

    def degrees(self, nodes: np.ndarray, mode: str) -> np.ndarray:
        """Counted in the server for nodes whose relationships were not fetched yet (a hub's are many)."""
        directions = {OUT: (OUT,), IN: (IN,), BOTH: (OUT, IN)}[mode]
        node_list = [int(n) for n in nodes]
        total = np.zeros(len(node_list), dtype=np.int64)
        for direction in directions:
            lists, known = self._lists[direction], self._degrees[direction]
            missing = sorted({n for n in node_list if n not in lists and n not in known})
            for start in range(0, len(missing), self.batch_size):
                chunk = missing[start : start + self.batch_size]
                rows = self.store.run(_DEGREE_QUERY[direction], cuis=[self._cui[n] for n in chunk], excluded=self._excluded)
                for row in rows:
                    known[self._handle[row["cui"]]] = int(row["degree"])
            total += np.array([lists[n][0].size if n in lists else known.get(n, 0) for n in node_list], dtype=np.int64)
        return total

    def edge_keys(self, edges: np.ndarray) -> list[str]:
        return [self._edges[int(e)].edge_id for e in edges]

    def edge_records(self, edges: Iterable[int]) -> dict[int, Edge]:
        return {int(e): self._edges[int(e)] for e in edges}

    def cuis(self, nodes: Iterable[int]) -> list[str]:
        return [self._cui[int(n)] for n in nodes]
