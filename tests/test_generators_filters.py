"""Every filter returns (keep, reason): sections, leaks, gold recall, answer-blind re-derivation."""

from __future__ import annotations

import asyncio

import pytest

from generators.filters import (
    EMPTY_OUTPUT,
    KEEP,
    LOW_GOLD_RECALL,
    MALFORMED_SECTIONS,
    MENTIONS_ANSWER,
    REDERIVE_FAILED,
    FilterChain,
    GoldRecallFilter,
    LeakFilter,
    RederiveFilter,
    SectionsFilter,
    recovered_items,
)
from generators.inputs import CaseInput
from tests.generators_data import well_formed

GOLD = ["Acute kidney failure", "Hypertension", "Fever", "Sepsis"]


def case(label=GOLD, output_type="set") -> CaseInput:
    return CaseInput(0, {"id": "s", "task": "diagnoses_icd", "input": "record", "instruction": "Predict the diagnoses.",
                         "output": "", "label": label, "output_type": output_type}, None)


@pytest.mark.parametrize("text, reason, detail", [
    ("", EMPTY_OUTPUT, "no text"),
    ("   \n", EMPTY_OUTPUT, "no text"),
    ("## Extraction\nA\n\n## Final Results\nX", MALFORMED_SECTIONS, "got ## Extraction, ## Final Results"),
    ("## Reasoning\nB\n\n## Extraction\nA\n\n## Final Results\nX", MALFORMED_SECTIONS, "expected"),
    ("## Extraction and Analysis\nA\n\n## Reasoning and Summary\nB\n\n## Final Results\nX", MALFORMED_SECTIONS, "Analysis"),
    ("## Extraction\nA\n\n## Reasoning\nB\n\n## Final Results\nX\n\n## Notes\nY", MALFORMED_SECTIONS, "## Notes"),
    ("Sure, here it is.\n## Extraction\nA\n\n## Reasoning\nB\n\n## Final Results\nX", MALFORMED_SECTIONS, "before"),
    ("## Extraction\n\n## Reasoning\nB\n\n## Final Results\nX", MALFORMED_SECTIONS, "empty section ## Extraction"),
    ("## Extraction\nA\n\n## Reasoning\nB\n\n## Final Results\n", MALFORMED_SECTIONS, "empty section ## Final Results"),
    ("## Extraction\nA</think>\n\n## Reasoning\nB\n\n## Final Results\nX", MALFORMED_SECTIONS, "think tag"),
    ("just prose, no sections at all", MALFORMED_SECTIONS, "no level-2 headings"),
])
def test_sections_filter_rejects_malformed_output(text, reason, detail):
    verdict = SectionsFilter()(text, case())
    assert (verdict.keep, verdict.reason) == (False, reason)
    assert detail in verdict.detail


def test_sections_filter_keeps_the_three_sections_with_subheadings():
    text = "## Extraction\nA\n### Labs\nB\n\n## Reasoning\nC\n\n## Final Results\nX"
    keep, reason = SectionsFilter()(text, case())
    assert (keep, reason) == (True, KEEP)


@pytest.mark.parametrize("phrase", [
    "As the ground truth says", "the Ground-Truth list", "matching the given answer", "the provided labels",
    "the gold standard", "from the retrieved medical knowledge", "according to the knowledge above",
    "the answer was given as", "listed under # Task #",
])
def test_leak_filter_rejects_mentions_of_a_given_answer(phrase):
    verdict = LeakFilter()(well_formed(GOLD, extra=f" {phrase}."), case())
    assert (verdict.keep, verdict.reason) == (False, MENTIONS_ANSWER)
    assert "mentions" in verdict.detail


def test_leak_filter_keeps_clinical_wording_and_takes_extra_patterns():
    clinical = well_formed(GOLD, extra=" Heparin was given; the true lumen is patent; an answer to fluids was seen.")
    assert LeakFilter()(clinical, case()).keep
    assert not LeakFilter([r"\bpatent\b"])(clinical, case()).keep


def test_gold_recall_filter_uses_the_70_percent_threshold():
    assert GoldRecallFilter()(well_formed(GOLD[:3]), case()).keep  # 75 %
    verdict = GoldRecallFilter()(well_formed(GOLD[:2]), case())  # 50 %
    assert (verdict.keep, verdict.reason) == (False, LOW_GOLD_RECALL)
    assert verdict.detail == "2/4 gold items (50% < 70%)"
    assert GoldRecallFilter(min_recall=0.5)(well_formed(GOLD[:2]), case()).keep


def test_gold_recall_counts_only_the_final_results():
    text = "## Extraction\nHypertension, Fever, Sepsis\n\n## Reasoning\nAcute kidney failure\n\n## Final Results\nSepsis"
    verdict = GoldRecallFilter()(text, case())
    assert not verdict.keep and verdict.detail.startswith("1/4")


def test_recovered_items_match_whole_phrases_case_and_markers_insensitive():
    final = "- acute KIDNEY failure\n2. Hypertension (essential)\nfeverish\n"
    assert recovered_items(GOLD, final) == ["Acute kidney failure", "Hypertension"]
    assert recovered_items(["no"], "No") == ["no"]
    assert recovered_items(["no"], "not known") == []


def test_gold_recall_on_a_yes_no_task():
    assert GoldRecallFilter()(well_formed(["yes"]), case("yes", "binary")).keep
    assert not GoldRecallFilter()(well_formed(["no"]), case("yes", "binary")).keep


def judge(answer):
    prompts = []

    async def ask(prompt: str):
        prompts.append(prompt)
        return answer

    return ask, prompts


def test_rederive_filter_passes_when_the_judge_reaches_the_gold():
    ask, prompts = judge("<think>hmm</think>\nAcute kidney failure\nHypertension\nFever\n")
    verdict = asyncio.run(RederiveFilter(ask)(well_formed(GOLD), case()))
    assert verdict.keep
    # the judge saw the notes, not the final results (the gold list) nor the record
    assert "Raised transaminases" in prompts[0] and "Final Results" not in prompts[0] and "Sepsis" not in prompts[0]


def test_rederive_filter_rejects_when_the_judge_misses():
    ask, _ = judge("Pneumonia\nFever")
    verdict = asyncio.run(RederiveFilter(ask)(well_formed(GOLD), case()))
    assert (verdict.keep, verdict.reason) == (False, REDERIVE_FAILED)
    assert "1/4" in verdict.detail


def test_rederive_filter_on_class_tasks_and_failed_endpoint():
    assert asyncio.run(RederiveFilter(judge("Yes.")[0])(well_formed(["yes"]), case("yes", "binary"))).keep
    assert not asyncio.run(RederiveFilter(judge("no")[0])(well_formed(["yes"]), case("yes", "binary"))).keep
    verdict = asyncio.run(RederiveFilter(judge(None)[0])(well_formed(["yes"]), case("yes", "binary")))
    assert (verdict.keep, verdict.reason) == (False, REDERIVE_FAILED)


def test_chain_order_first_rejection_wins_and_judge_runs_last():
    ask, prompts = judge("Acute kidney failure\nHypertension\nFever\nSepsis")
    chain = FilterChain(rederive=RederiveFilter(ask))
    bad_and_leaky = "The ground truth is:\n## Extraction\nA\n\n## Reasoning\nB\n\n## Final Results\nX"
    assert asyncio.run(chain.check(bad_and_leaky, case())).reason == MALFORMED_SECTIONS
    assert asyncio.run(chain.check(well_formed(GOLD[:1]), case())).reason == LOW_GOLD_RECALL
    assert prompts == []  # no judge call for a case the cheap filters reject
    assert asyncio.run(chain.check(well_formed(GOLD), case())).keep and len(prompts) == 1
    described = chain.describe()
    assert described["min_recall"] == 0.7 and described["rederive"] == {"min_recall": 0.7}
