"""The template verbalizer on a genuine MIMIC-IV demo record and hand-made thinking graphs."""

from __future__ import annotations

import asyncio
import copy

from generators.filters import FilterChain
from generators.inputs import CaseInput
from generators.verbalizers.template import TemplateVerbalizer, record_events
from tests.generators_data import CIRRHOSIS, COPD, PORTAL, UNEXPLAINED, demo_record, sample, thinking_graph


def make(gold, graph="default") -> CaseInput:
    return CaseInput(0, sample("s", "diagnoses_icd", gold), thinking_graph("s") if graph == "default" else graph)


def test_record_events_read_headings_and_table_rows():
    events = record_events(demo_record())
    assert events[0].name == "Admission"  # the untimed demographics header is not an event
    labs = next(e for e in events if e.name == "Laboratory Test Events" and any("Creatinine" in x for x in e.lines))
    creatinine = next(line for line in labs.lines if line.startswith("Creatinine"))
    assert creatinine.startswith("Creatinine: Value ") and "Unit mg/dL" in creatinine


def test_template_cites_real_events_states_typed_facts_and_lists_explained_gold():
    text = TemplateVerbalizer().verbalize(make([CIRRHOSIS, PORTAL, COPD]))
    extraction, rest = text.split("## Reasoning\n")
    reasoning, final = rest.split("## Final Results\n")
    record = demo_record()
    # the lab evidence is cited at an event of the record that really holds that lab
    cited = extraction.splitlines()[1]
    event = cited.split("**")[1]
    assert f"## {event}" in record and "Asparate Aminotransferase (AST): Value 98" in cited
    assert "Albuterol" in extraction and "Ipratropium Bromide" in extraction
    # facts in their stored direction, with readable relation names
    assert f"{COPD} may be treated by Albuterol" in reasoning
    assert f"Ipratropium Bromide is a Bronchodilator Agents; Bronchodilator Agents may treat {COPD}" in reasoning
    assert f"{CIRRHOSIS} is cause of {PORTAL}" in reasoning
    assert final.splitlines() == [CIRRHOSIS, PORTAL, COPD]
    verdict = asyncio.run(FilterChain().check(text, make([CIRRHOSIS, PORTAL, COPD])))
    assert verdict.keep, verdict


def test_template_is_deterministic():
    graph = thinking_graph("s")
    first = TemplateVerbalizer().verbalize(make([CIRRHOSIS, COPD], copy.deepcopy(graph)))
    assert first == TemplateVerbalizer().verbalize(make([CIRRHOSIS, COPD], copy.deepcopy(graph)))


def test_template_leaves_unexplained_gold_out_so_the_recall_filter_decides():
    gold = [CIRRHOSIS, PORTAL, COPD, *UNEXPLAINED]
    text = TemplateVerbalizer().verbalize(make(gold))
    assert text.split("## Final Results\n")[1].splitlines() == [CIRRHOSIS, PORTAL, COPD]
    verdict = asyncio.run(FilterChain().check(text, make(gold)))
    assert (verdict.keep, verdict.reason, verdict.detail) == (False, "low_gold_recall", "3/6 gold items (50% < 70%)")


def test_template_matches_gold_through_linked_item_names_and_writes_nothing_without_paths():
    graph = thinking_graph("s")
    for node in graph["nodes"]:
        if node["cui"] == "C0024117":
            node["name"] = "Chronic obstructive lung disease"
            node["items"] = [{"table": "diagnoses_icd", "key": "diagnoses_icd:9:496", "name": COPD}]
    assert TemplateVerbalizer().verbalize(make([COPD], graph)).endswith(f"## Final Results\n{COPD}")
    no_paths = {**thinking_graph("s"), "paths": {}}
    assert TemplateVerbalizer().verbalize(make([COPD], no_paths)) == ""
    assert TemplateVerbalizer().verbalize(make([COPD], None)) == ""
    assert TemplateVerbalizer().verbalize(make(["Something else"])) == ""
