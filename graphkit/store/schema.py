"""cypher/schema.cypher on both dialects.

The file is written in Neo4j 5 syntax. On FalkorDB each statement is parsed (three strict
forms, anything else is an error) and replaced by what FalkorDB understands: ``CREATE INDEX FOR
(n:L) ON (n.p)`` for each missing property, and the ``GRAPH.CONSTRAINT CREATE`` command for a
missing unique constraint. Existing indexes and constraints are skipped, so that nothing fails
(a failed GRAPH.CONSTRAINT would even be written to the AOF and logged at every restart).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import cypher
from graphkit.errors import ConfigError
from graphkit.store.base import render_slots
from graphkit.store.vocab import ENGINE_TYPES, Vocabulary

log = logging.getLogger(__name__)
_warned: set[str] = set()

_CONSTRAINT = re.compile(
    r"^CREATE CONSTRAINT (\w+) IF NOT EXISTS FOR \((\w+):(\w+)\) REQUIRE \2\.(\w+) IS UNIQUE$"
)
_NODE_INDEX = re.compile(r"^CREATE INDEX (\w+) IF NOT EXISTS FOR \((\w+):(\w+)\) ON \(([\w.,\s]+)\)$")
_REL_INDEX = re.compile(
    r"^CREATE INDEX (\w+) IF NOT EXISTS FOR \(\)-\[(\w+):(\w+)\]-\(\) ON \(([\w.,\s]+)\)$"
)


@dataclass(frozen=True)
class SchemaItem:
    kind: str  # "unique" | "node_index" | "rel_index"
    name: str
    label: str  # node label or relationship type
    properties: tuple[str, ...]
    text: str  # the Neo4j statement


def _properties(variable: str, text: str, statement: str) -> tuple[str, ...]:
    props = []
    for part in text.split(","):
        owner, _, prop = part.strip().partition(".")
        if owner != variable or not prop:
            raise ConfigError(
                "cannot read the indexed properties", where="cypher/schema.cypher", value=statement
            )
        props.append(prop)
    return tuple(props)


def parse(statement: str) -> SchemaItem:
    text = " ".join(statement.split())
    if match := _CONSTRAINT.match(text):
        name, _, label, prop = match.groups()
        return SchemaItem("unique", name, label, (prop,), text)
    if match := _NODE_INDEX.match(text):
        name, variable, label, props = match.groups()
        return SchemaItem("node_index", name, label, _properties(variable, props, text), text)
    if match := _REL_INDEX.match(text):
        name, variable, rel_type, props = match.groups()
        return SchemaItem("rel_index", name, rel_type, _properties(variable, props, text), text)
    raise ConfigError(
        "schema statement of a form the FalkorDB translation does not know",
        where="cypher/schema.cypher",
        value=text,
        fix="use CREATE CONSTRAINT ... IS UNIQUE or CREATE INDEX ... IF NOT EXISTS FOR ... ON (...)",
    )


def schema_items(vocab: Vocabulary, present_types: set[str], name: str = "schema") -> list[SchemaItem]:
    """The statements of cypher/<name>.cypher, per-type ones expanded for the types in the graph."""
    with_edge_id = sorted(
        t
        for t in present_types & vocab.types
        if t not in ENGINE_TYPES or "edge_id" in ENGINE_TYPES[t].properties
    )
    items = []
    for statement in cypher.statements(name):
        if "{{" in statement:
            items += [parse(render_slots(statement, {"rel_type": t}, vocab, name)) for t in with_edge_id]
        else:
            items.append(parse(statement))
    return items


def apply_schema_file(store, name: str = "schema") -> list[str]:
    """Apply cypher/<name>.cypher (Neo4j 5 syntax) on the store's dialect; idempotent. The changes made."""
    present = {row["relationshipType"] for row in store.run("relationship_types")}
    return store.apply_schema_items(schema_items(store.vocab, present, name))


def apply_neo4j(items: list[SchemaItem], execute: Callable[[str], object]) -> list[str]:
    for item in items:
        execute(item.text)
    return [item.text for item in items]


def apply_falkordb(
    items: list[SchemaItem],
    execute: Callable[[str], list[dict]],
    create_unique: Callable[[str, str], None] | None,
) -> list[str]:
    """Create what is missing; ``create_unique(label, prop)`` is None where GRAPH.CONSTRAINT is unreachable."""
    indexed: set[tuple[str, str, str]] = set()
    for row in execute(
        "CALL db.indexes() YIELD label, properties, types, entitytype RETURN label, properties, types, entitytype"
    ):
        entity = "rel" if str(row["entitytype"]).upper().startswith("REL") else "node"
        for prop in row["properties"]:
            if "RANGE" in (row["types"].get(prop) or []):
                indexed.add((entity, row["label"], prop))
    unique = {
        (row["label"], tuple(row["properties"]))
        for row in execute(
            "CALL db.constraints() YIELD type, label, properties RETURN type, label, properties"
        )
        if row["type"] == "UNIQUE"
    }
    applied: list[str] = []
    for item in items:
        entity = "rel" if item.kind == "rel_index" else "node"
        missing = [p for p in item.properties if (entity, item.label, p) not in indexed]
        if missing:
            if entity == "rel":
                text = f"CREATE INDEX FOR ()-[r:{item.label}]-() ON ({', '.join('r.' + p for p in missing)})"
            else:
                text = f"CREATE INDEX FOR (n:{item.label}) ON ({', '.join('n.' + p for p in missing)})"
            execute(text)
            indexed.update((entity, item.label, p) for p in missing)
            applied.append(text)
        if item.kind == "unique" and (item.label, item.properties) not in unique:
            if create_unique is None:
                if item.name not in _warned:
                    _warned.add(item.name)
                    log.warning(
                        "unique constraint %s left out: GRAPH.CONSTRAINT cannot be sent over Bolt", item.name
                    )
                continue
            create_unique(item.label, item.properties[0])
            applied.append(
                f"GRAPH.CONSTRAINT CREATE UNIQUE NODE {item.label} PROPERTIES 1 {item.properties[0]}"
            )
    return applied
