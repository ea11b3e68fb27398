"""The template verbalizer on a genuine MIMIC-IV demo record and hand-made thinking graphs."""

from __future__ import annotations

import asyncio

from generators.filters import FilterChain
from generators.verbalizers.template import TemplateVerbalizer, record_events
from tests.generators_data import (
    CIRRHOSIS,
    COPD,
    PORTAL,
    UNEXPLAINED,
    case_input,
    demo_record,
    sample,
    thinking_graph,
)


def make(gold, graph="default", links="default"):
    row = sample("s", "diagnoses_icd", gold)
    graph = thinking_graph("s") if graph == "default" else graph
    return case_input(row, graph) if links == "default" else case_input(row, graph, links)


def test_record_events_read_headings_and_table_rows():
    events = record_events(demo_record())
    assert events[0].name == "Admission"  # the untimed demographics header is not an event
    labs = next(e for e in events if e.name == "Laboratory Test Events" and any("Creatinine" in x for x in e.lines))
    creatinine = next(line for line in labs.lines if line.startswith("Creatinine"))
    assert creatinine.startswith("Creatinine: Value ") and "Unit mg/dL" in creatinine


def test_template_cites_real_events_states_typed_facts_and_lists_explained_gold():
    case = make([CIRRHOSIS, PORTAL, COPD])
    text = TemplateVerbalizer().verbalize(case)
    extraction, rest = text.split("## Reasoning\n")
    reasoning, final = rest.split("## Final Results\n")
    # the lab concept is found through its context item's record name, at an event that holds it
    cited = extraction.splitlines()[1]
    assert cited.startswith("**Laboratory Test Events [") and "Asparate Aminotransferase (AST): Value 98" in cited
    assert f"## {cited.split('**')[1]}" in demo_record()
    assert "Aspartate aminotransferase measurement (Laboratory Procedure) is documented" in cited
    assert "Albuterol Inhaler" in extraction and "Ipratropium Bromide Neb" in extraction
    # facts in their stored direction, with readable relation names
    assert "Chronic Obstructive Airway Disease may be treated by Albuterol" in reasoning
    assert ("Ipratropium Bromide is a Bronchodilator Agents; Bronchodilator Agents may treat "
            "Chronic Obstructive Airway Disease") in reasoning
    assert "Liver Cirrhosis is a Liver disease; Liver Cirrhosis is cause of Portal hypertension" in reasoning
    assert final.splitlines() == [CIRRHOSIS, PORTAL, COPD]
    verdict = asyncio.run(FilterChain().check(text, case))
    assert verdict.keep, verdict


def test_template_is_deterministic():
    assert TemplateVerbalizer().verbalize(make([CIRRHOSIS, COPD])) == TemplateVerbalizer().verbalize(make([CIRRHOSIS, COPD]))


def test_template_leaves_unexplained_gold_out_so_the_recall_filter_decides():
    gold = [CIRRHOSIS, PORTAL, COPD, *UNEXPLAINED]
    case = make(gold)
    text = TemplateVerbalizer().verbalize(case)
    assert text.split("## Final Results\n")[1].splitlines() == [CIRRHOSIS, PORTAL, COPD]
    verdict = asyncio.run(FilterChain().check(text, case))
    assert (verdict.keep, verdict.reason, verdict.detail) == (False, "low_gold_recall", "3/6 gold items (50% < 70%)")


def test_without_item_links_only_names_connect_gold_and_record():
    case = make([CIRRHOSIS, PORTAL, COPD], links=None)
    assert case.gold_targets == {CIRRHOSIS: (), PORTAL: ("C0020541",), COPD: ()}
    text = TemplateVerbalizer().verbalize(case)
    assert text.split("## Final Results\n")[1] == PORTAL
    assert "**Patient record**: Aspartate aminotransferase measurement" in text  # no record name for the lab


def test_nothing_is_written_without_paths_or_explained_gold():
    assert TemplateVerbalizer().verbalize(make([COPD], graph={**thinking_graph("s"), "paths": {}})) == ""
    assert TemplateVerbalizer().verbalize(make([COPD], graph=None)) == ""
    assert TemplateVerbalizer().verbalize(make(["Something else"])) == ""
