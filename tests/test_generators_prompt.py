"""The generation prompt (reference-shaped), the thinking graph as knowledge lines, section parsing."""

from __future__ import annotations

from generators.prompt import (
    SECTIONS,
    fact,
    knowledge_lines,
    node_names,
    prompt_gold,
    relation_phrase,
    render_judge_prompt,
    render_prompt,
    split_sections,
    strip_think,
)
from graphkit.thinking.model import ThinkingGraph
from tests.generators_data import CIRRHOSIS, COPD, COPD_CUI, INSTRUCTION, PORTAL, thinking_graph


def graph() -> ThinkingGraph:
    return ThinkingGraph.from_dict(thinking_graph("s"))


def test_knowledge_lines_keep_relation_names_and_stored_direction():
    assert knowledge_lines(graph()) == [
        # stored (cirrhosis)-[ISA]->(liver disease), walked from the evidence: the arrow points back
        "Aspartate aminotransferase measurement -[FINDING_OF]-> Liver disease <-[ISA]- Liver Cirrhosis",
        "Aspartate aminotransferase measurement -[FINDING_OF]-> Liver disease <-[ISA]- Liver Cirrhosis "
        f"-[CAUSE_OF]-> {PORTAL}",
        "Albuterol <-[MAY_BE_TREATED_BY]- Chronic Obstructive Airway Disease",
        "Ipratropium Bromide -[ISA]-> Bronchodilator Agents -[MAY_TREAT]-> Chronic Obstructive Airway Disease",
    ]
    assert knowledge_lines(None) == []


def test_facts_are_stated_in_stored_direction():
    thinking = graph()
    (step,) = thinking.steps(COPD_CUI, 0)
    assert not step.forward
    assert fact(step, node_names(thinking)) == "Chronic Obstructive Airway Disease may be treated by Albuterol"


def test_relation_phrases_read_as_verbs():
    assert relation_phrase("MAY_TREAT") == "may treat"
    assert relation_phrase("ISA") == "is a"
    assert relation_phrase("CAUSE_OF") == "is cause of"
    assert relation_phrase("HAS_FINDING_SITE") == "has finding site"


def test_prompt_carries_record_knowledge_gold_task_and_the_rules():
    prompt = render_prompt("## Admission [2180-01-01 00:00:00]\n- Admission Type: URGENT", INSTRUCTION,
                           [CIRRHOSIS, COPD], graph())
    order = ["# Patient EHR Context #", "Admission Type: URGENT", "# Retrieved Medical Knowledge #",
             "-[CAUSE_OF]->", "# Ground Truth #", f"\n- {CIRRHOSIS}", f"\n- {COPD}", "# Task #", INSTRUCTION]
    positions = [prompt.index(part) for part in order]
    assert positions == sorted(positions)
    for heading in SECTIONS:
        assert f"## {heading}" in prompt
    assert prompt_gold(prompt) == [CIRRHOSIS, COPD]
    assert "Never reveal that the answer or the medical knowledge was given" in prompt
    assert "**Event Name [Event Time]**" in prompt


def test_prompt_without_knowledge_has_no_knowledge_block():
    prompt = render_prompt("record", INSTRUCTION, [CIRRHOSIS], graph(), knowledge=False)
    assert "Retrieved Medical Knowledge" not in prompt and "-[" not in prompt
    assert "# Ground Truth #" in prompt and "Never reveal that the answer was given" in prompt
    assert render_prompt("record", INSTRUCTION, [CIRRHOSIS], None) == prompt


def test_judge_prompt_has_the_notes_but_neither_record_nor_answer():
    text = render_judge_prompt(INSTRUCTION, "AST 98 IU/L", "transaminases point to liver disease")
    assert "AST 98 IU/L" in text and "transaminases" in text and INSTRUCTION in text
    assert "Final Results" not in text and "Ground Truth" not in text


def test_split_sections_and_final_items():
    text = "## Extraction\nA\n\n## Reasoning\nB\n### detail\nC\n\n## Final Results\n- X\n2. Y\n**Z**\n\n"
    sections = split_sections(text)
    assert sections.headings == SECTIONS and sections.preamble == ""
    assert sections.get("Reasoning") == "B\n### detail\nC"
    assert sections.final_items == ["X", "Y", "Z"]
    odd = split_sections("Sure!\n## Extraction and Analysis\nA")
    assert odd.preamble == "Sure!" and odd.headings == ("Extraction and Analysis",)


def test_strip_think_removes_a_leading_think_block_only():
    assert strip_think("<think>\nprivate\n</think>\n\n## Extraction\nA") == "## Extraction\nA"
    assert strip_think("## Extraction\n<think>x</think>") == "## Extraction\n<think>x</think>"
