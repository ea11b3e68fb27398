"""Typed paths between two concepts (`ehr-r1 graph paths`): endpoints by CUI or name."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from graphkit.errors import ConfigError, GraphError
from graphkit.store.base import GraphStore

CUI = re.compile(r"^C\d{7}$")
_CANDIDATES_SHOWN = 5


@dataclass(frozen=True)
class Step:
    type: str
    forward: bool  # True: the relationship points from the previous node to the next one
    edge_id: str | None
    sab: str | None


@dataclass(frozen=True)
class ConceptPath:
    cuis: list[str]
    names: list[str | None]
    steps: list[Step]

    def to_dict(self) -> dict:
        return {
            "length": len(self.steps),
            "nodes": [{"cui": c, "name": n} for c, n in zip(self.cuis, self.names, strict=True)],
            "steps": [s.__dict__ for s in self.steps],
        }

    def render(self) -> str:
        """``A (C1) -[ISA]-> B (C2) <-[MAY_TREAT]- C (C3)``: relation names and their direction."""
        parts = [_label(self.cuis[0], self.names[0])]
        for step, cui, name in zip(self.steps, self.cuis[1:], self.names[1:], strict=True):
            arrow = f"-[{step.type}]->" if step.forward else f"<-[{step.type}]-"
            parts += [arrow, _label(cui, name)]
        return " ".join(parts)


def _label(cui: str, name: str | None) -> str:
    return f"{name} ({cui})" if name else cui


def resolve_concept(store: GraphStore, text: str, where: str) -> dict:
    """A concept by CUI, else by exact name, else by name ignoring case; ambiguity is an error."""
    text = text.strip()
    if CUI.match(text):
        rows = store.run("concept_by_cui", cui=text)
        if not rows:
            raise GraphError("no concept with this CUI in the graph", where=where, value=text)
        return rows[0]
    rows = store.run("concepts_by_name", name=text, limit=_CANDIDATES_SHOWN + 1)
    if not rows:
        rows = store.run("concepts_by_name_ci", name_lower=text.lower(), limit=_CANDIDATES_SHOWN + 1)
    if not rows:
        raise GraphError(
            "no concept with this name",
            where=where,
            value=text,
            fix="give a CUI (C0000000) or the exact name",
        )
    if len(rows) > 1:
        shown = ", ".join(f"{row['cui']} {row['name']}" for row in rows[:_CANDIDATES_SHOWN])
        raise GraphError(
            "several concepts have this name", where=where, value=text, fix=f"give a CUI: {shown}"
        )
    return rows[0]


def find_paths(
    store: GraphStore,
    source: str,
    target: str,
    *,
    max_hops: int = 6,
    types: Iterable[str] | None = None,
    any_direction: bool = False,
    limit: int = 10,
) -> tuple[dict, dict, list[ConceptPath]]:
    """(source concept, target concept, shortest typed paths); rejected edges are never used.

    Steps follow the stored direction (source -> ... -> target) unless ``any_direction``, which
    also walks relationships backwards and is far more expensive on graphs with hub concepts.
    """
    start = resolve_concept(store, source, "SOURCE")
    end = resolve_concept(store, target, "TARGET")
    if start["cui"] == end["cui"]:
        raise ConfigError("source and target are the same concept", where="TARGET", value=end["cui"])
    if limit < 1:
        raise ConfigError("must be at least 1", where="--limit", value=limit)
    chosen = sorted(store.vocab.relation_types) if types is None else [store.vocab.rel_type(t) for t in types]
    if not chosen:
        return start, end, []
    rows = store.run(
        "typed_paths_any_direction" if any_direction else "typed_paths",
        slots={"rel_types": chosen, "max_hops": max_hops},
        source=start["cui"],
        target=end["cui"],
        limit=limit,
    )
    paths = []
    for row in rows:
        steps = [
            Step(t, s == row["cuis"][i], e, sab)
            for i, (t, s, e, sab) in enumerate(
                zip(row["types"], row["starts"], row["edge_ids"], row["sabs"], strict=True)
            )
        ]
        paths.append(ConceptPath(list(row["cuis"]), list(row["names"]), steps))
    paths.sort(key=lambda p: (len(p.steps), [s.edge_id or "" for s in p.steps]))
    return start, end, paths
