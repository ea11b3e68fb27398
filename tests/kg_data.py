"""Shared pieces of the link and kg tests: a tiny hand-made release and the demo graph build."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from graphkit.kg import BuildConfig, BuildResult, build_graph
from graphkit.store import open_store
from graphkit.store.vocab import ENGINE_TYPES
from graphkit.workspace import Workspace

# A release whose codes and names meet items of the bundled MIMIC-IV demo:
# - ICD-10-CM E11.9 and ICD-9 procedure 38.93 next to ICD-9 diagnosis 389.3 (same SAB, the dot
#   decides), LOINC 2345-7 (labevents:50931 glucose through the mimic-code map);
# - drugs by name: heparin (CHEM), "insulin" only as a DISO concept (a drug item must not take
#   it), two CHEM concepts named vancomycin (both kept), metoprolol for "Metoprolol Tartrate"
#   (first word), "potassium chloride" (whole name beats first word "potassium");
# - escherichia coli (LIVB) for the organism item, an is-a and a may_treat fact.
# CUI|LAT|TS|LUI|STT|SUI|ISPREF|AUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|
TINY_MRCONSO = """\
C0011860|ENG|P|L1|PF|S1|Y|A01||||ICD10CM|PT|E11.9|Type 2 diabetes mellitus without complications|0|N||
C0011849|ENG|P|L2|PF|S2|Y|A02||||MSH|MH|D003920|Diabetes Mellitus|0|N||
C0394664|ENG|P|L3|PF|S3|Y|A03||||ICD9CM|PT|38.93|Venous catheterization, not elsewhere classified|0|N||
C0494562|ENG|P|L4|PF|S4|Y|A04||||ICD9CM|PT|389.3|Sensorineural hearing loss, unilateral|0|N||
C0484431|ENG|P|L5|PF|S5|Y|A05||||LNC|LN|2345-7|Glucose [Mass/volume] in Serum or Plasma|0|N||
C0019134|ENG|P|L6|PF|S6|Y|A06||||RXNORM|IN|5224|Heparin|0|N||
C0021641|ENG|P|L7|PF|S7|Y|A07||||MSH|MH|D007328|Insulin|0|N||
C0042313|ENG|P|L8|PF|S8|Y|A08||||RXNORM|IN|11124|Vancomycin|0|N||
C0700000|ENG|P|L9|PF|S9|Y|A09||||MSH|MH|D014640|vancomycin|0|N||
C0025859|ENG|P|L10|PF|S10|Y|A10||||RXNORM|IN|6918|Metoprolol|0|N||
C0032825|ENG|P|L11|PF|S11|Y|A11||||RXNORM|IN|8591|Potassium Chloride|0|N||
C0032821|ENG|P|L12|PF|S12|Y|A12||||RXNORM|IN|8588|Potassium|0|N||
C0014834|ENG|P|L13|PF|S13|Y|A13||||MSH|MH|D004926|Escherichia coli|0|N||
C0025598|ENG|P|L14|PF|S14|Y|A14||||RXNORM|IN|6809|metformin|0|N||
"""
# CUI1|AUI1|STYPE1|REL|CUI2|AUI2|STYPE2|RELA|RUI|SRUI|SAB|SL|RG|DIR|SUPPRESS|CVF|
TINY_MRREL = """\
C0011849||CUI|CHD|C0011860||CUI|isa|R1||MSH|MSH|||N||
C0011860||CUI|PAR|C0011849||CUI|inverse_isa|R2||MSH|MSH|||N||
C0011860||CUI|RO|C0025598||CUI|may_treat|R3||RXNORM|RXNORM|||N||
C0025598||CUI|RO|C0011860||CUI|may_be_treated_by|R4||RXNORM|RXNORM|||N||
"""
TINY_MRSTY = """\
C0011860|T047|B2.2.1.2.1|Disease or Syndrome|AT1||
C0011849|T047|B2.2.1.2.1|Disease or Syndrome|AT2||
C0394664|T061|B1.3.1.3|Therapeutic or Preventive Procedure|AT3||
C0494562|T047|B2.2.1.2.1|Disease or Syndrome|AT4||
C0484431|T059|B1.3.1.1|Laboratory Procedure|AT5||
C0019134|T121|A1.4.1.1.1|Pharmacologic Substance|AT6||
C0021641|T047|B2.2.1.2.1|Disease or Syndrome|AT7||
C0042313|T195|A1.4.1.1.1.1|Antibiotic|AT8||
C0700000|T121|A1.4.1.1.1|Pharmacologic Substance|AT9||
C0025859|T121|A1.4.1.1.1|Pharmacologic Substance|AT10||
C0032825|T121|A1.4.1.1.1|Pharmacologic Substance|AT11||
C0032821|T196|A1.4.1.2.3|Element, Ion, or Isotope|AT12||
C0014834|T007|A1.1.2|Bacterium|AT13||
C0025598|T121|A1.4.1.1.1|Pharmacologic Substance|AT14||
"""
TINY_MRSAB = "".join(
    f"||{sab}_2024|{sab}|{sab} source|{sab}|2024|||||||0||||||ENG|UTF-8|Y|Y|{sab}|cite|\n"
    for sab in ("MSH", "ICD10CM", "ICD9CM", "LNC", "RXNORM")
)
TINY_MRDOC = """\
RELA|may_treat|rela_inverse|may_be_treated_by|
RELA|may_be_treated_by|rela_inverse|may_treat|
"""
TINY_CONCEPTS = 14


def write_tiny_release(folder: Path, **files: str | None) -> Path:
    """The tiny release as RRF files; ``files`` replaces (text) or leaves out (None) a file."""
    folder.mkdir(parents=True, exist_ok=True)
    base = {
        "MRCONSO": TINY_MRCONSO,
        "MRREL": TINY_MRREL,
        "MRSTY": TINY_MRSTY,
        "MRSAB": TINY_MRSAB,
        "MRDOC": TINY_MRDOC,
    }
    base.update(files)
    for name, text in base.items():
        if text is not None:
            (folder / f"{name}.RRF").write_text(text, encoding="utf-8")
    return folder


@dataclass
class DemoGraph:
    """The open demo graph built by `graph build --demo` into its own workspace."""

    workspace: Workspace
    result: BuildResult
    store: object  # an open EmbeddedStore on the built graph

    @property
    def links_dir(self) -> Path:
        return self.result.folder / "links"


@contextlib.contextmanager
def built_demo_graph(root: Path) -> Iterator[DemoGraph]:
    """Build the demo graph (text linking off: QuickUMLS is an optional extra) and open it."""
    workspace = Workspace(root / "ws")
    # opened first: the build's own store attaches to the same server, which then stays up
    # (no stop, save and reload of the graph between the build and the tests)
    store = open_store(workspace, "embedded", linger=0)
    try:
        result = build_graph(
            BuildConfig(demo=True, text="off"),
            workspace,
            store_factory=lambda: open_store(workspace, "embedded", linger=0),
        )
        store.register_relation_types(t for t in result.counts["relationships"] if t not in ENGINE_TYPES)
        yield DemoGraph(workspace, result, store)
    finally:
        store.close()
