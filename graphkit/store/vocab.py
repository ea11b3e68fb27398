"""The closed vocabulary of the graph: node labels, relationship types and their properties.

Labels and relationship types can never be Cypher parameters, so every label or type that
reaches query text comes from here, after validation. The vocabulary is closed but extensible
by data: the engine's own labels and types are fixed below; concept-to-concept relation types
come from the data (UMLS REL/RELA and the demo sources, named by ``graphkit.umls.relations``),
are checked against ``TYPE_PATTERN`` and recorded with the graph itself (the types present in
the database), so every process that opens the graph sees the same closed set.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from graphkit.errors import GraphError

TYPE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,62}$")
PROPERTY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

STATUSES = ("active", "rejected")


@dataclass(frozen=True)
class NodeSpec:
    key: str
    properties: Mapping[str, str]


@dataclass(frozen=True)
class RelationshipSpec:
    src: str
    dst: str
    properties: Mapping[str, str]
    # properties whose values identify one relationship between the same two nodes (MERGE key)
    identity: tuple[str, ...] = field(default=())


NODE_LABELS: Mapping[str, NodeSpec] = {
    "Concept": NodeSpec(
        "cui", {"cui": "string", "name": "string", "semantic_types": "string[]", "semantic_group": "string"}
    ),
    "Code": NodeSpec("id", {"id": "string", "sab": "string", "code": "string", "name": "string"}),
    "Item": NodeSpec("id", {"id": "string", "table": "string", "code": "string", "name": "string"}),
    # thinking-graph records (graphkit.thinking, docs/interfaces.md §8)
    "Case": NodeSpec(
        "id",
        {
            "id": "string",
            "task": "string",
            "sample_id": "string",
            "graph_hash": "string",
            "config_hash": "string",
            "targets": "string[]",
            "unexplained_targets": "string[]",
            "n_paths": "int",
            "thinking_graph": "string",
        },
    ),
    "EdgeRef": NodeSpec(
        "edge_id",
        {"edge_id": "string", "src": "string", "dst": "string", "relation": "string", "origin": "string"},
    ),
    "AssociationRun": NodeSpec(
        "id",
        {
            "id": "string",
            "task": "string",
            "cohort": "string",
            "cohort_label": "string",
            "n_samples": "int",
            "config": "string",
            "options": "string",
            "associations": "int",
            "version": "string",
        },
    ),
}

CONCEPT_RELATION_PROPERTIES: Mapping[str, str] = {
    "rel": "string",
    "rela": "string",
    "inverse_rel": "string",
    "inverse_rela": "string",
    "sab": "string",
    "source": "string",
    "status": "string",
    "edge_id": "string",
}

ENGINE_TYPES: Mapping[str, RelationshipSpec] = {
    "CODE_OF": RelationshipSpec("Code", "Concept", {"source": "string"}),
    "MAPS_TO": RelationshipSpec(
        # status: set by curators (curation_set_mapping_status.cypher); absent means active
        "Item", "Concept", {"method": "string", "score": "float", "source": "string", "status": "string"}
    ),
    # mined by graphkit.thinking on training patients (context concept -> target concept)
    "ASSOCIATED_WITH": RelationshipSpec(
        "Concept",
        "Concept",
        {
            "task": "string",
            "support": "int",
            "confidence": "float",
            "lift": "float",
            "source_count": "int",
            "target_count": "int",
            "n_samples": "int",
            "rank": "int",
            "sab": "string",
            "cohort": "string",
            "config": "string",
            "source": "string",
            "status": "string",
            "edge_id": "string",
        },
        identity=("edge_id",),
    ),
    "USES_EDGE": RelationshipSpec(
        "Case",
        "EdgeRef",
        {"target_cui": "string", "role": "string", "path": "int", "position": "int", "edge_id": "string"},
    ),
}

CONCEPT_RELATION = RelationshipSpec("Concept", "Concept", CONCEPT_RELATION_PROPERTIES, identity=("edge_id",))


def check_relation_type(name: object) -> str:
    """A concept relation type name, or GraphError: pattern-checked and not an engine type."""
    if not isinstance(name, str) or not TYPE_PATTERN.match(name):
        raise GraphError(
            "not a valid relationship type",
            where="relation type",
            value=name,
            fix="use upper case letters, digits and _ (pattern ^[A-Z][A-Z0-9_]{0,62}$)",
        )
    if name in ENGINE_TYPES or name in NODE_LABELS:
        raise GraphError(
            "this name belongs to the engine and cannot name a source relation",
            where="relation type",
            value=name,
            fix="prefix it (graphkit.umls.relations uses SRC_)",
        )
    return name


def edge_id(src: str, rel_type: str, dst: str, sab: str | None) -> str:
    """Deterministic id of a relationship from its stable key; the same across rebuilds."""
    key = "\x1f".join((src, rel_type, dst, sab or ""))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]


class Vocabulary:
    """The labels and relationship types a query may name. Immutable; ``with_relation_types`` extends."""

    def __init__(self, relation_types: Iterable[str] = ()):
        self._relation_types = frozenset(check_relation_type(name) for name in relation_types)

    @property
    def labels(self) -> frozenset[str]:
        return frozenset(NODE_LABELS)

    @property
    def relation_types(self) -> frozenset[str]:
        """Concept-to-concept relation types (from the data)."""
        return self._relation_types

    @property
    def types(self) -> frozenset[str]:
        return self._relation_types | frozenset(ENGINE_TYPES)

    def with_relation_types(self, names: Iterable[str]) -> Vocabulary:
        return Vocabulary(self._relation_types | {check_relation_type(name) for name in names})

    def label(self, name: object) -> str:
        if not isinstance(name, str) or name not in NODE_LABELS:
            raise GraphError(
                "unknown node label",
                where="label",
                value=name,
                fix=f"use one of {', '.join(sorted(NODE_LABELS))}",
            )
        return name

    def rel_type(self, name: object) -> str:
        if isinstance(name, str) and name in self.types:
            return name
        if isinstance(name, str) and TYPE_PATTERN.match(name):
            problem = "relationship type not in the graph's vocabulary"
        else:
            problem = "not a valid relationship type"
        known = sorted(self.types)
        shown = ", ".join(known[:12]) + (f" ... ({len(known)} in all)" if len(known) > 12 else "")
        raise GraphError(problem, where="relationship type", value=name, fix=f"use one of {shown}")

    def spec(self, rel_type: str) -> RelationshipSpec:
        self.rel_type(rel_type)
        return ENGINE_TYPES.get(rel_type, CONCEPT_RELATION)

    def node_spec(self, label: str) -> NodeSpec:
        return NODE_LABELS[self.label(label)]


def check_property_name(name: object, where: str = "property") -> str:
    if not isinstance(name, str) or not PROPERTY_PATTERN.match(name):
        raise GraphError(
            "not a valid property name",
            where=where,
            value=name,
            fix="use lower_snake_case (pattern ^[a-z][a-z0-9_]*$)",
        )
    return name
