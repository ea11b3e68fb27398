"""The generation prompt (reference-shaped), the thinking graph as knowledge lines, section parsing."""

from __future__ import annotations

import copy

from generators.prompt import (
    SECTIONS,
    knowledge_lines,
    path_hops,
    relation_phrase,
    render_judge_prompt,
    render_prompt,
    split_sections,
    strip_think,
)
from tests.generators_data import CIRRHOSIS, COPD, INSTRUCTION, PORTAL, thinking_graph


def test_knowledge_lines_keep_relation_names_and_stored_direction():
    lines = knowledge_lines(thinking_graph("s"))
    assert lines == [
        f"Aspartate aminotransferase measurement -[ASSOCIATED_WITH]-> {CIRRHOSIS}",
        f"Aspartate aminotransferase measurement -[ASSOCIATED_WITH]-> {CIRRHOSIS} -[CAUSE_OF]-> {PORTAL}",
        # stored (COPD)-[MAY_BE_TREATED_BY]->(albuterol), walked from the evidence: the arrow points back
        f"Albuterol <-[MAY_BE_TREATED_BY]- {COPD}",
        f"Ipratropium Bromide -[ISA]-> Bronchodilator Agents -[MAY_TREAT]-> {COPD}",
    ]


def test_a_path_listed_target_first_reads_the_same():
    graph = thinking_graph("s")
    reversed_graph = copy.deepcopy(graph)
    reversed_graph["paths"] = {target: [list(reversed(p)) for p in paths] for target, paths in graph["paths"].items()}
    assert knowledge_lines(reversed_graph) == knowledge_lines(graph)


def test_hops_state_facts_in_stored_direction():
    graph = thinking_graph("s")
    (hop,) = path_hops(graph, "C0024117", ["e-copd-albut"])
    assert (hop.start, hop.end, hop.forward) == ("Albuterol", COPD, False)
    assert hop.fact == f"{COPD} may be treated by Albuterol"
    assert path_hops(graph, "C0024117", ["no-such-edge"]) == []
    # a chain that does not end at the target is not a path to it
    assert path_hops(graph, "C0020541", ["e-copd-albut"]) == []


def test_relation_phrases_read_as_verbs():
    assert relation_phrase("MAY_TREAT") == "may treat"
    assert relation_phrase("ISA") == "is a"
    assert relation_phrase("CAUSE_OF") == "is cause of"
    assert relation_phrase("HAS_FINDING_SITE") == "has finding site"


def test_prompt_carries_record_knowledge_gold_task_and_the_rules():
    graph = thinking_graph("s")
    prompt = render_prompt("## Admission [2180-01-01 00:00:00]\n- Admission Type: URGENT", INSTRUCTION,
                           [CIRRHOSIS, COPD], graph)
    order = ["# Patient EHR Context #", "Admission Type: URGENT", "# Retrieved Medical Knowledge #",
             "-[CAUSE_OF]->", "# Ground Truth #", f"\n- {CIRRHOSIS}", f"\n- {COPD}", "# Task #", INSTRUCTION]
    positions = [prompt.index(part) for part in order]
    assert positions == sorted(positions)
    for heading in SECTIONS:
        assert f"## {heading}" in prompt
    assert "Never reveal that the answer or the medical knowledge was given" in prompt
    assert "**Event Name [Event Time]**" in prompt


def test_prompt_without_knowledge_has_no_knowledge_block():
    prompt = render_prompt("record", INSTRUCTION, [CIRRHOSIS], thinking_graph("s"), knowledge=False)
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
