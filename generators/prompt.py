"""What the LLM verbalizer is asked, and how its answer is cut into sections.

The prompt follows the EHR-R1 reference (thinking_graph_preprocess/reasoning_generation_new.py):
the serialized record, the retrieved knowledge (here: the thinking graph's paths, with relation
names and directions), the gold answer and the task, then the request for three sections
``## Extraction``, ``## Reasoning``, ``## Final Results`` written as if the answer had been
derived, never revealing that it was given. The wording is ours; the structure and the rules
are the reference's. ``knowledge=False`` is the reference's "without knowledge" variant (the
one its published script runs), for samples without a thinking graph.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from graphkit.thinking.model import Step, ThinkingGraph

SECTIONS = ("Extraction", "Reasoning", "Final Results")
RULE = "=" * 40

_PREAMBLE = """{rule}
# Patient EHR Context #
{record}

{knowledge_block}{rule}
# Ground Truth #
{gold}

{rule}
# Task #
{instruction}
{rule}
"""

_KNOWLEDGE_BLOCK = """{rule}
# Retrieved Medical Knowledge #
{knowledge}

"""

_DATA_DESCRIPTION = """
# About the data
- # Patient EHR Context #: every event of the patient's stay so far, oldest first.
{knowledge_line}- # Ground Truth #: the right answer to the task; your final results must use exactly these strings.
- # Task #: what has to be predicted from the # Patient EHR Context #.

# What to do
Write a rigorous clinical reasoning that leads from the # Patient EHR Context # and the # Task # to the
# Ground Truth #, in three sections: Extraction, Reasoning and Final Results.

## Extraction
{extraction_knowledge}- Leave out information that does not help the reasoning.
- One line per finding, naming the event and its time:
    **Event Name [Event Time]**: the information taken from the event and how it bears on the answer.

## Reasoning
- Explain, specifically and in professional terms, how the extracted findings lead to each answer item,
  one step at a time, naming the medical knowledge each step uses.
- Cover as many answer items as the context supports; leave out items the context cannot support.
- Do not hedge with "maybe", "possible" or "though": find the supporting evidence instead.
- Reason forward from the context to the answer, never backwards from the answer.

## Final Results
- Only the answer items that the Reasoning section actually derived, one per line.
- Each line must be a # Ground Truth # item spelled exactly as given.

# Important
{important_knowledge}- Work out carefully in the Reasoning section how every answer item follows.
- Never reveal that the answer{reveal_knowledge} was given to you: no "ground truth", no "the given answer",
  no "according to the knowledge above", nothing that shows you saw them. Write as if you derived it.

# Output format
## Extraction
[your extraction]

## Reasoning
[your reasoning]

## Final Results
[your final results]
"""


_VERB_STARTS = frozenset({"is", "isa", "may", "has", "have", "can", "causes", "treats", "prevents", "induces"})
_PREPOSITIONS = frozenset({"of", "with", "to", "by", "in", "from", "for", "on", "at"})


def relation_phrase(relation: str) -> str:
    """The stored type name as a verb phrase: ``MAY_TREAT`` -> "may treat", ``CAUSE_OF`` -> "is cause of"."""
    words = relation.replace("_", " ").lower().split()
    if words == ["isa"]:
        return "is a"
    if words and words[0] not in _VERB_STARTS and words[-1] in _PREPOSITIONS:
        words.insert(0, "is")
    return " ".join(words)


def node_names(graph: ThinkingGraph) -> dict[str, str]:
    return {node.cui: node.name or node.cui for node in graph.nodes}


def fact(step: Step, names: Mapping[str, str]) -> str:
    """The edge of a step as a statement in its stored direction ("COPD may be treated by albuterol")."""
    edge = step.edge
    return f"{names.get(edge.source, edge.source)} {relation_phrase(edge.relation)} {names.get(edge.target, edge.target)}"


def path_line(steps: Sequence[Step], names: Mapping[str, str]) -> str:
    """``heparin -[MAY_PREVENT]-> thrombosis <-[ISA]- deep vein thrombosis``: names, types, directions."""
    if not steps:
        return ""
    parts = [names.get(steps[0].start, steps[0].start)]
    for step in steps:
        relation = step.edge.relation
        parts.append(f"-[{relation}]->" if step.forward else f"<-[{relation}]-")
        parts.append(names.get(step.end, step.end))
    return " ".join(parts)


def walks(graph: ThinkingGraph) -> Iterator[tuple[str, list[Step]]]:
    """``(target, steps)`` of every path, as walked from evidence to target; targets in node order."""
    ordered = [cui for cui in graph.targets if cui in graph.paths]
    for target in ordered + sorted(set(graph.paths) - set(ordered)):
        for index in range(len(graph.paths[target])):
            yield target, graph.steps(target, index)


def knowledge_lines(graph: ThinkingGraph | None) -> list[str]:
    """One line per distinct path of the thinking graph."""
    if graph is None:
        return []
    names = node_names(graph)
    return list(dict.fromkeys(line for _, steps in walks(graph) if (line := path_line(steps, names))))


def has_paths(graph: ThinkingGraph | None) -> bool:
    return graph is not None and any(graph.paths.values())


def render_prompt(record: str, instruction: str, gold_items: Sequence[str], graph: ThinkingGraph | None,
                  *, knowledge: bool = True) -> str:
    """The reference-shaped request for one sample (knowledge from ``graph`` when ``knowledge``)."""
    lines = knowledge_lines(graph) if knowledge else []
    with_knowledge = bool(lines)
    knowledge_block = _KNOWLEDGE_BLOCK.format(rule=RULE, knowledge="\n".join(lines)) if with_knowledge else ""
    head = _PREAMBLE.format(rule=RULE, record=record.strip(), knowledge_block=knowledge_block,
                            gold="\n".join(f"- {item}" for item in gold_items), instruction=instruction.strip())
    body = _DATA_DESCRIPTION.format(
        knowledge_line=("- # Retrieved Medical Knowledge #: links between findings of the context and the answer, "
                        "as typed relations between medical concepts.\n") if with_knowledge else "",
        extraction_knowledge=("- Pick out every finding of the # Patient EHR Context # that the # Retrieved Medical "
                              "Knowledge # bears on.\n") if with_knowledge else "",
        important_knowledge=("- For every piece of # Retrieved Medical Knowledge # that matters for the task, find "
                             "where its first concept occurs in the # Patient EHR Context # and cite that event in the "
                             "Extraction.\n") if with_knowledge else "",
        reveal_knowledge=" or the medical knowledge" if with_knowledge else "",
    )
    return "\n" + head + body


def prompt_gold(prompt: str) -> list[str]:
    """The gold items a rendered generation prompt carries (for mock models and dry runs)."""
    block = prompt.split("# Ground Truth #\n", 1)[1].split(f"\n\n{RULE}", 1)[0]
    return [line[2:] for line in block.splitlines() if line.startswith("- ")]


def render_judge_prompt(instruction: str, extraction: str, reasoning: str) -> str:
    """The answer-blind re-derivation request: the case's own notes, no record, no answer."""
    return (
        "Below are a clinician's notes on a patient: the findings taken from the record and the reasoning "
        "built on them.\n\n"
        f"## Findings\n{extraction.strip()}\n\n## Reasoning\n{reasoning.strip()}\n\n"
        f"Task: {instruction.strip()}\n"
        "Answer the task from these notes alone. Write only the answer items, one per line, nothing else."
    )


# ----------------------------------------------------------------------------- sections

_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]*(.*?)[ \t]*#*[ \t]*$", re.MULTILINE)
_THINK_BLOCK = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL)
LIST_MARKER = re.compile(r"^(?:[-*•+]|\d{1,3}[.)])\s+")


@dataclass(frozen=True)
class Sections:
    """A verbalization cut at its level-2 headings."""

    preamble: str
    headings: tuple[str, ...]  # the level-2 heading titles in order of appearance
    bodies: dict[str, str]  # title -> body (the first occurrence)

    def get(self, name: str) -> str:
        return self.bodies.get(name, "")

    @property
    def final_items(self) -> list[str]:
        """Final Results lines without list markers or emphasis, blanks dropped."""
        items = []
        for line in self.get("Final Results").splitlines():
            line = LIST_MARKER.sub("", line.strip()).strip().strip("*").strip()
            if line:
                items.append(line)
        return items


def strip_think(text: str) -> str:
    """A thinking model may put its private reasoning in the content; it is not part of the case."""
    return _THINK_BLOCK.sub("", text, count=1)


def split_sections(text: str) -> Sections:
    headings: list[str] = []
    bodies: dict[str, str] = {}
    matches = [m for m in _HEADING.finditer(text) if len(m.group(1)) == 2]
    preamble = text[: matches[0].start()] if matches else text
    for number, match in enumerate(matches):
        title = match.group(2).strip().strip("*").strip()
        end = matches[number + 1].start() if number + 1 < len(matches) else len(text)
        headings.append(title)
        bodies.setdefault(title, text[match.end():end].strip())
    return Sections(preamble.strip(), tuple(headings), bodies)
