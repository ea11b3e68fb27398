"""The thinking graph of one sample: evidence, paths of typed directed edges, targets.

The JSON shape is the contract with generators and curation (docs/interfaces.md §8)::

    {"sample_id", "task", "graph_hash", "config_hash",
     "nodes": [{"cui", "name", "semantic_type", "semantic_group", "role"}],
     "edges": [{"edge_id", "source", "target", "relation", "rela", "sab", "origin",
                "support", "confidence", "lift"}],       # the last three only on associations
     "evidence": {"<target cui>": ["<context cui>", ...]},  # associated context concepts, best first
     "paths": {"<target cui>": [["<edge_id>", ...], ...]},  # each path evidence -> target, in order
     "unexplained_targets": ["<cui>", ...]}

An edge keeps its stored direction (``source`` -> ``target``, read "source relation target");
a path may walk an edge backwards, which ``ThinkingGraph.steps`` reports as ``forward=False``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from graphkit.errors import InputError

ROLES = ("evidence", "intermediate", "target")
ORIGINS = ("umls", "association", "curator")
_ROLE_RANK = {"target": 0, "evidence": 1, "intermediate": 2}


@dataclass(frozen=True)
class Node:
    cui: str
    name: str = ""
    semantic_type: str = ""
    semantic_group: str = ""
    role: str = "intermediate"

    def to_dict(self) -> dict:
        return {
            "cui": self.cui,
            "name": self.name,
            "semantic_type": self.semantic_type,
            "semantic_group": self.semantic_group,
            "role": self.role,
        }


@dataclass(frozen=True)
class Edge:
    edge_id: str
    source: str
    target: str
    relation: str
    rela: str = ""
    sab: str = ""
    origin: str = "umls"
    support: int | None = None
    confidence: float | None = None
    lift: float | None = None

    def to_dict(self) -> dict:
        data = {
            "edge_id": self.edge_id,
            "source": self.source,
            "target": self.target,
            "relation": self.relation,
            "rela": self.rela,
            "sab": self.sab,
            "origin": self.origin,
        }
        if self.origin == "association":
            data.update(support=self.support, confidence=self.confidence, lift=self.lift)
        return data


@dataclass(frozen=True)
class Step:
    """One edge of a path as walked: ``start`` -[edge]-> ``end``; forward=False walks it backwards."""

    start: str
    edge: Edge
    end: str
    forward: bool


@dataclass
class ThinkingGraph:
    sample_id: str
    task: str
    graph_hash: str = ""
    config_hash: str = ""
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    evidence: dict[str, list[str]] = field(default_factory=dict)
    paths: dict[str, list[list[str]]] = field(default_factory=dict)
    unexplained_targets: list[str] = field(default_factory=list)

    # ---- access
    @property
    def targets(self) -> list[str]:
        return [n.cui for n in self.nodes if n.role == "target"]

    def node(self, cui: str) -> Node:
        for node in self.nodes:
            if node.cui == cui:
                return node
        raise KeyError(cui)

    def edge(self, edge_id: str) -> Edge:
        for edge in self.edges:
            if edge.edge_id == edge_id:
                return edge
        raise KeyError(edge_id)

    def steps(self, target: str, index: int) -> list[Step]:
        """Path ``index`` of ``target`` as walked from its evidence concept to the target."""
        edges = [self.edge(e) for e in self.paths[target][index]]
        at = target
        walked: list[Step] = []
        for edge in reversed(edges):
            if edge.target == at:
                walked.append(Step(edge.source, edge, edge.target, True))
                at = edge.source
            elif edge.source == at:
                walked.append(Step(edge.target, edge, edge.source, False))
                at = edge.target
            else:
                raise InputError(
                    "path is not connected", where=f"thinking graph {self.sample_id}: paths[{target}][{index}]",
                    value=edge.edge_id, fix="rebuild the thinking graph",
                )
        return walked[::-1]

    def used_edge_ids(self) -> list[str]:
        """Edge ids on any path, in first-use order."""
        seen: dict[str, None] = {}
        for target_paths in self.paths.values():
            for path in target_paths:
                for edge_id in path:
                    seen.setdefault(edge_id, None)
        return list(seen)

    # ---- JSON
    def to_dict(self) -> dict:
        return {
            "sample_id": self.sample_id,
            "task": self.task,
            "graph_hash": self.graph_hash,
            "config_hash": self.config_hash,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
            "evidence": {t: list(c) for t, c in self.evidence.items()},
            "paths": {t: [list(p) for p in ps] for t, ps in self.paths.items()},
            "unexplained_targets": list(self.unexplained_targets),
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThinkingGraph:
        where = f"thinking graph {data.get('sample_id', '?')}"
        try:
            graph = cls(
                sample_id=str(data["sample_id"]),
                task=str(data["task"]),
                graph_hash=str(data.get("graph_hash", "")),
                config_hash=str(data.get("config_hash", "")),
                nodes=[Node(**n) for n in data["nodes"]],
                edges=[Edge(**e) for e in data["edges"]],
                evidence={str(t): [str(c) for c in cs] for t, cs in data.get("evidence", {}).items()},
                paths={str(t): [[str(e) for e in p] for p in ps] for t, ps in data["paths"].items()},
                unexplained_targets=[str(c) for c in data.get("unexplained_targets", [])],
            )
        except (KeyError, TypeError) as exc:
            raise InputError(
                "not a thinking graph", where=where, value=str(exc),
                fix="give the JSON written by ThinkingGraph.to_json",
            ) from exc
        graph.validate()
        return graph

    @classmethod
    def from_json(cls, text: str) -> ThinkingGraph:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError("not JSON", where="thinking graph", value=text[:80], fix="give valid JSON") from exc
        return cls.from_dict(data)

    def validate(self) -> None:
        """Every reference resolves: roles and origins known, path edges present and connected."""
        where = f"thinking graph {self.sample_id}"
        cuis = {n.cui for n in self.nodes}
        for node in self.nodes:
            if node.role not in ROLES:
                raise InputError("unknown node role", where=where, value=node.role, fix=f"use one of {ROLES}")
        edge_ids = set()
        for edge in self.edges:
            if edge.origin not in ORIGINS:
                raise InputError("unknown edge origin", where=where, value=edge.origin, fix=f"use one of {ORIGINS}")
            if edge.source not in cuis or edge.target not in cuis:
                raise InputError("edge end is not a node", where=where, value=edge.edge_id, fix="add the node")
            edge_ids.add(edge.edge_id)
        for target, target_paths in self.paths.items():
            for index, path in enumerate(target_paths):
                missing = [e for e in path if e not in edge_ids]
                if missing or not path:
                    raise InputError("path uses an unknown edge", where=where, value=missing, fix="add the edge")
                self.steps(target, index)

    # ---- networkx
    def to_networkx(self):
        """A ``networkx.MultiDiGraph``: nodes keyed by CUI, edges keyed by edge_id in stored direction."""
        import networkx as nx

        graph = nx.MultiDiGraph(
            sample_id=self.sample_id,
            task=self.task,
            graph_hash=self.graph_hash,
            config_hash=self.config_hash,
            paths={t: [list(p) for p in ps] for t, ps in self.paths.items()},
            evidence={t: list(c) for t, c in self.evidence.items()},
            unexplained_targets=list(self.unexplained_targets),
        )
        for node in self.nodes:
            attrs = node.to_dict()
            attrs.pop("cui")
            graph.add_node(node.cui, **attrs)
        for edge in self.edges:
            attrs = edge.to_dict()
            graph.add_edge(attrs.pop("source"), attrs.pop("target"), key=edge.edge_id, **attrs)
        return graph


def merge_role(current: str | None, new: str) -> str:
    """A concept that is both a target and evidence (or intermediate) shows as the stronger role."""
    if current is None:
        return new
    return current if _ROLE_RANK[current] <= _ROLE_RANK[new] else new
