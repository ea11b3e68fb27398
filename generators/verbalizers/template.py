"""The offline, deterministic verbalizer: text built from the thinking graph and the record.

Extraction: each evidence concept of the graph, cited at the latest event of the record that
mentions it (by the concept's name or the names of the items linked to it), with the line of
that event that mentions it. Reasoning: per gold item explained by the graph, each path as a
chain of typed facts stated in their stored direction. Final Results: the gold items that have
a path. Nothing is invented: a gold item without a path is left out (so the 70 % filter judges
the graph's coverage, as it judges an LLM's).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from generators.inputs import CaseInput
from generators.prompt import Hop, has_paths, path_hops
from generators.verbalizers.base import Verbalization, Verbalizer

_HEADING = re.compile(r"^## (?P<name>.+?) \[(?P<time>[^\]]+)\]\s*$")
_MAX_QUOTE = 160


@dataclass(frozen=True)
class Event:
    name: str
    time: str
    lines: tuple[str, ...]


def record_events(record: str) -> list[Event]:
    """The timed ``## Name [time]`` blocks of a serialized record, oldest first.

    Table rows are read with their header, so a row reads "Creatinine: Value 2.3, Unit mg/dL".
    """
    events: list[Event] = []
    current: tuple[str, str] | None = None
    lines: list[str] = []
    header: list[str] | None = None
    for line in record.splitlines():
        match = _HEADING.match(line)
        if match:
            if current:
                events.append(Event(current[0], current[1], tuple(lines)))
            current, lines, header = (match["name"].strip(), match["time"].strip()), [], None
            continue
        if current is None or not line.strip():
            continue
        if line.lstrip().startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
            elif not all(set(cell) <= {"-", ":"} for cell in cells):
                pairs = [f"{key} {value}" for key, value in zip(header[1:], cells[1:], strict=False) if value]
                lines.append(f"{cells[0]}: {', '.join(pairs)}" if pairs else cells[0])
        else:
            lines.append(line.strip().removeprefix("- "))
    if current:
        events.append(Event(current[0], current[1], tuple(lines)))
    return events


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _mentions(line: str, names: Sequence[str]) -> bool:
    low = _norm(line)
    return any(re.search(rf"(?<!\w){re.escape(name)}(?!\w)", low) for name in names)


def _names(node: Mapping[str, Any]) -> list[str]:
    """The strings a concept can appear as in the record: its name and its linked items' names."""
    names = [node.get("name") or ""]
    for item in node.get("items") or ():
        if isinstance(item, Mapping) and item.get("name"):
            names.append(str(item["name"]))
    return [n for n in dict.fromkeys(_norm(n) for n in names) if n]


def _quote(line: str) -> str:
    text = " ".join(line.split())
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 3] + "..."


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fact(hop: Hop) -> str:
    if hop.origin == "association":
        subject, obj = (hop.start, hop.end) if hop.forward else (hop.end, hop.start)
        return f"{subject} goes together with {obj} far more often than chance in comparable stays"
    return hop.fact


def _targets_for_gold(graph: Mapping[str, Any], gold_items: Sequence[str]) -> dict[str, list[str]]:
    """gold item -> target cuis of the graph that stand for it (same name, or a linked item of that name)."""
    targets = [node for node in graph.get("nodes", []) if node.get("role") == "target"]
    found: dict[str, list[str]] = {}
    for item in gold_items:
        wanted = _norm(item)
        found[item] = [node["cui"] for node in targets if wanted in _names(node) or wanted == _norm(node["cui"])]
    return found


class TemplateVerbalizer(Verbalizer):
    kind = "template"

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": 1}

    def verbalize(self, case: CaseInput) -> str:
        graph = case.thinking or {}
        if not has_paths(graph):
            return ""
        nodes = {node["cui"]: node for node in graph.get("nodes", [])}
        events = record_events(case.record)
        explained = {item: [t for t in cuis if graph.get("paths", {}).get(t)]
                     for item, cuis in _targets_for_gold(graph, case.gold_items).items()}
        reasoning_blocks: list[str] = []
        used_evidence: list[str] = []
        for item in case.gold_items:
            lines = []
            for target in explained.get(item, []):
                for edge_ids in graph["paths"][target]:
                    hops = path_hops(graph, target, edge_ids)
                    if not hops:
                        continue
                    evidence = hops[0].start_cui
                    if evidence not in used_evidence:
                        used_evidence.append(evidence)
                    facts = "; ".join(_fact(hop) for hop in hops)
                    line = f"- {_sentence(hops[0].start)} is present: {facts}. This supports {item}."
                    if line not in lines:
                        lines.append(line)
            if lines:
                reasoning_blocks.append(f"**{item}**\n" + "\n".join(lines))
        if not reasoning_blocks:
            return ""
        extraction = [self._extraction_line(nodes.get(cui, {"cui": cui, "name": cui}), events) for cui in used_evidence]
        final = [item for item in case.gold_items if explained.get(item)]
        return (
            "## Extraction\n" + "\n".join(extraction) + "\n\n"
            "## Reasoning\n" + "\n\n".join(reasoning_blocks) + "\n\n"
            "## Final Results\n" + "\n".join(final)
        )

    @staticmethod
    def _extraction_line(node: Mapping[str, Any], events: Sequence[Event]) -> str:
        names = _names(node)
        label = node.get("name") or node["cui"]
        semantic_type = f" ({node['semantic_type']})" if node.get("semantic_type") else ""
        for event in reversed(events):
            for line in event.lines:
                if _mentions(line, names):
                    return f"**{event.name} [{event.time}]**: {_quote(line)}; {label}{semantic_type} is documented."
        return f"**Patient record**: {label}{semantic_type} is documented."

    async def stream(self, cases: Iterable[CaseInput]) -> AsyncIterator[tuple[CaseInput, Verbalization]]:
        for case in cases:
            text = self.verbalize(case)
            yield case, Verbalization([text] if text else [])

