"""Filters on verbalized reasoning: each returns ``(keep, reason)``.

As the EHR-R1 reference (thinking_graph_preprocess/filter_reasoning.py) a case is kept when at
least 70 % of the gold items are recovered in its Final Results and it never mentions the ground
truth; we also require the three sections to be well formed (the reference drops the known
malformed headings only), and optionally re-derive the answer blind: a judge model reads the
Extraction and Reasoning alone and must reach the gold.

Reasons are short stable codes (counted in the dataset card); ``detail`` says more.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from generators.inputs import CaseInput
from generators.prompt import (
    LIST_MARKER,
    SECTIONS,
    Sections,
    render_judge_prompt,
    split_sections,
    strip_think,
)

KEEP = "kept"
EMPTY_OUTPUT = "empty_output"
MALFORMED_SECTIONS = "malformed_sections"
MENTIONS_ANSWER = "mentions_answer"
LOW_GOLD_RECALL = "low_gold_recall"
REDERIVE_FAILED = "rederive_failed"
REASONS = (EMPTY_OUTPUT, MALFORMED_SECTIONS, MENTIONS_ANSWER, LOW_GOLD_RECALL, REDERIVE_FAILED)

# Wording that shows the writer was handed the answer or the knowledge. The reference checks
# "ground truth" only; the others are the ways models actually give it away.
LEAK_PATTERNS = (
    r"ground[\s_-]*truths?",
    r"\bgold(?:en)?[\s-]+(?:answers?|standard|labels?|items?|list|results?)\b",
    r"\b(?:given|provided|supplied|expected|target)\s+(?:answers?|labels?|results?|outputs?)\b",
    r"\banswers?\s+(?:was|were|is|are)\s+(?:given|provided|supplied)\b",
    r"\banswer\s+key\b",
    r"\bretrieved\s+(?:medical\s+)?knowledge\b",
    r"\b(?:according\s+to|based\s+on|from)\s+the\s+(?:medical\s+)?knowledge\s+(?:above|provided|given)\b",
    r"#\s*(?:ground truth|task|retrieved medical knowledge|patient ehr context)\s*#",
)


@dataclass(frozen=True)
class Verdict:
    keep: bool
    reason: str  # KEEP or one of REASONS
    detail: str = ""

    def __iter__(self):  # so that ``keep, reason = verdict`` reads as the (keep, reason) pair
        return iter((self.keep, self.reason))


PASS = Verdict(True, KEEP)


def _normalize(text: str) -> str:
    return " ".join(text.lower().split())


class SectionsFilter:
    """Exactly ``## Extraction``, ``## Reasoning``, ``## Final Results``, in order, none empty, nothing before."""

    name = "sections"

    def __call__(self, text: str, case: CaseInput, sections: Sections | None = None) -> Verdict:
        if not text.strip():
            return Verdict(False, EMPTY_OUTPUT, "the model returned no text")
        sections = sections or split_sections(text)
        if "<think>" in text or "</think>" in text:
            return Verdict(False, MALFORMED_SECTIONS, "a think tag inside the text would break the case's think block")
        if sections.headings != SECTIONS:
            found = ", ".join(f"## {h}" for h in sections.headings) or "no level-2 headings"
            return Verdict(False, MALFORMED_SECTIONS, f"expected ## Extraction, ## Reasoning, ## Final Results; got {found}")
        if sections.preamble:
            return Verdict(False, MALFORMED_SECTIONS, "text before ## Extraction")
        empty = [name for name in SECTIONS if not sections.get(name)]
        if empty:
            return Verdict(False, MALFORMED_SECTIONS, f"empty section ## {empty[0]}")
        return PASS


class LeakFilter:
    """No wording that reveals a given answer, ground truth or retrieved knowledge."""

    name = "leak"

    def __init__(self, extra_patterns: Sequence[str] = ()):
        self.patterns = tuple(re.compile(p, re.IGNORECASE) for p in (*LEAK_PATTERNS, *extra_patterns))

    def __call__(self, text: str, case: CaseInput, sections: Sections | None = None) -> Verdict:
        for pattern in self.patterns:
            match = pattern.search(text)
            if match:
                return Verdict(False, MENTIONS_ANSWER, f"mentions {match.group(0)!r}")
        return PASS


def recovered_items(gold_items: Sequence[str], final_text: str) -> list[str]:
    """Gold items found in the Final Results: an exact line, or the item as a whole phrase in it.

    The reference counts an item when it is a substring of the text after "Final Results"; we ask
    for word boundaries, so "fever" is not recovered by "feverish", and ignore case and spacing.
    """
    lines = {_normalize(LIST_MARKER.sub("", line.strip())) for line in final_text.splitlines()}
    text = _normalize(final_text)
    found = []
    for item in gold_items:
        wanted = _normalize(item)
        if not wanted:
            continue
        if wanted in lines or re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", text):
            found.append(item)
    return found


class GoldRecallFilter:
    """At least ``min_recall`` of the gold items appear in ``## Final Results`` (reference: 0.7)."""

    name = "gold_recall"

    def __init__(self, min_recall: float = 0.7):
        self.min_recall = min_recall

    def __call__(self, text: str, case: CaseInput, sections: Sections | None = None) -> Verdict:
        sections = sections or split_sections(text)
        gold = [item for item in case.gold_items if item.strip()]
        if not gold:
            return Verdict(False, LOW_GOLD_RECALL, "the sample has no gold items")
        final = sections.get("Final Results") if "Final Results" in sections.bodies else text.rsplit("Final Results", 1)[-1]
        found = recovered_items(gold, final)
        ratio = len(found) / len(gold)
        if ratio < self.min_recall:
            return Verdict(False, LOW_GOLD_RECALL, f"{len(found)}/{len(gold)} gold items ({ratio:.0%} < {self.min_recall:.0%})")
        return PASS


Ask = Callable[[str], Awaitable[str | None]]


class RederiveFilter:
    """A judge answers the task from Extraction + Reasoning alone and must reach the gold.

    ``ask`` sends one user message to the judge model and returns its answer text (None when the
    endpoint failed; such a case is not judged and not kept). Set tasks pass when the judge's
    answer recovers ``min_recall`` of the gold items; yes/no and class tasks when its first line
    is the label.
    """

    name = "rederive"

    def __init__(self, ask: Ask, min_recall: float = 0.7):
        self.ask = ask
        self.min_recall = min_recall

    async def __call__(self, text: str, case: CaseInput, sections: Sections | None = None) -> Verdict:
        sections = sections or split_sections(text)
        answer = await self.ask(render_judge_prompt(case.instruction, sections.get("Extraction"), sections.get("Reasoning")))
        if answer is None:
            return Verdict(False, REDERIVE_FAILED, "the judge endpoint gave no answer")
        answer = strip_think(answer)
        gold = [item for item in case.gold_items if item.strip()]
        if case.output_type == "set":
            found = recovered_items(gold, answer)
            ratio = len(found) / len(gold) if gold else 0.0
            if ratio < self.min_recall:
                return Verdict(False, REDERIVE_FAILED, f"judge recovered {len(found)}/{len(gold)} gold items")
            return PASS
        lines = [LIST_MARKER.sub("", line.strip()).strip() for line in answer.splitlines() if line.strip()]
        first = _normalize(lines[0]) if lines else ""
        if first.rstrip(".") != _normalize(gold[0]):
            return Verdict(False, REDERIVE_FAILED, "the judge answered differently")
        return PASS


@dataclass
class FilterChain:
    """The filters in order; the first rejection wins. ``rederive`` (async, costly) runs last."""

    min_recall: float = 0.7
    extra_leak_patterns: Sequence[str] = ()
    rederive: RederiveFilter | None = None
    checks: list = field(init=False)

    def __post_init__(self):
        self.checks = [SectionsFilter(), LeakFilter(self.extra_leak_patterns), GoldRecallFilter(self.min_recall)]

    def check_sync(self, text: str, case: CaseInput) -> tuple[Verdict, Sections]:
        sections = split_sections(text)
        for check in self.checks:
            verdict = check(text, case, sections)
            if not verdict.keep:
                return verdict, sections
        return PASS, sections

    async def check(self, text: str, case: CaseInput) -> Verdict:
        verdict, sections = self.check_sync(text, case)
        if verdict.keep and self.rederive is not None:
            return await self.rederive(text, case, sections)
        return verdict

    def describe(self) -> dict:
        return {
            "min_recall": self.min_recall,
            "leak_patterns": [p.pattern for p in self.checks[1].patterns],
            "sections": list(SECTIONS),
            "rederive": None if self.rederive is None else {"min_recall": self.rederive.min_recall},
        }
