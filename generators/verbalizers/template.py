"""The offline, deterministic verbalizer: text built from the thinking graph and the record.

Extraction: the evidence concept of each path used, cited at the latest event of the record that
mentions it (by its name or the names of its context items), with the line that mentions it. Reasoning: per gold item
explained by the graph (generators.inputs says which targets stand for which gold item), each
path as a chain of typed facts stated in their stored direction. Final Results: the gold items
that have a path. Nothing is invented: a gold item without a path is left out (so the 70 % filter
judges the graph's coverage, as it judges an LLM's).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from generators.inputs import CaseInput
from generators.prompt import fact, has_paths, node_names, walks
from generators.verbalizers.base import Verbalization, Verbalizer
from graphkit.thinking.model import Node, Step

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


def _mentions(line: str, name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(_norm(name))}(?!\w)", _norm(line)) is not None


def _quote(line: str) -> str:
    text = " ".join(line.split())
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 3] + "..."


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _extraction_line(node: Node, names: Sequence[str], events: Sequence[Event]) -> str:
    """The latest record line that names the concept (by its own name or its items' names)."""
    label = node.name or node.cui
    semantic_type = f" ({node.semantic_type})" if node.semantic_type else ""
    for event in reversed(events):
        for line in event.lines:
            if any(_mentions(line, name) for name in names):
                return f"**{event.name} [{event.time}]**: {_quote(line)}; {label}{semantic_type} is documented."
    return f"**Patient record**: {label}{semantic_type} is documented."


class TemplateVerbalizer(Verbalizer):
    kind = "template"

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": 1}

    def verbalize(self, case: CaseInput) -> str:
        graph = case.thinking
        if not has_paths(graph):
            return ""
        names = node_names(graph)
        paths_to: dict[str, list[list[Step]]] = {}
        for target, steps in walks(graph):
            paths_to.setdefault(target, []).append(steps)
        blocks: list[str] = []
        evidence: list[str] = []
        explained: list[str] = []
        for item in case.gold_items:
            lines = []
            for target in case.gold_targets.get(item, ()):
                for steps in paths_to.get(target, []):
                    evidence.append(steps[0].start)
                    facts = "; ".join(fact(step, names) for step in steps)
                    lines.append(f"- {_sentence(names[steps[0].start])} is present: {facts}. This supports {item}.")
            if lines:
                explained.append(item)
                blocks.append(f"**{item}**\n" + "\n".join(dict.fromkeys(lines)))
        if not blocks:
            return ""
        events = record_events(case.record)
        nodes = {node.cui: node for node in graph.nodes}
        extraction = [_extraction_line(nodes[cui], [names[cui], *case.item_names.get(cui, ())], events)
                      for cui in dict.fromkeys(evidence)]
        return (
            "## Extraction\n" + "\n".join(extraction) + "\n\n"
            "## Reasoning\n" + "\n\n".join(blocks) + "\n\n"
            "## Final Results\n" + "\n".join(explained)
        )

    async def stream(self, cases: Iterable[CaseInput]) -> AsyncIterator[tuple[CaseInput, Verbalization]]:
        for case in cases:
            text = self.verbalize(case)
            yield case, Verbalization([text] if text else [])
