"""The RRF reader on hand-made release snippets: filters, direction, inverse collapse, groups, bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from graphkit.errors import ConfigError, GraphError, InputError
from graphkit.umls import open_release
from graphkit.umls.relations import RelationNames, forward_name, type_label
from graphkit.umls.rrf import find_rrf, scan_rrf
from graphkit.umls.semantic import group_of, semantic_types

# CUI|LAT|TS|LUI|STT|SUI|ISPREF|AUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|
MRCONSO = """\
C0011849|ENG|P|L1|PF|S1|Y|A0000001||||MSH|MH|D003920|Diabetes Mellitus|0|N||
C0011849|ENG|S|L2|PF|S2|Y|A0000002||||SNOMEDCT_US|PT|73211009|Diabetes mellitus (disorder)|9|N||
C0011849|SPA|P|L3|PF|S3|Y|A0000003||||MSHSPA|MH|D003920|Diabetes Mellitus (es)|3|N||
C0011860|ENG|P|L4|PF|S4|Y|A0000004||||ICD10CM|PT|E11|Type 2 diabetes mellitus|0|N||
C0011860|ENG|S|L5|PF|S5|Y|A0000005||||SNOMEDCT_US|PT|44054006|Type 2 diabetes mellitus (disorder)|9|N||
C0025598|ENG|P|L6|PF|S6|Y|A0000006||||RXNORM|IN|6809|metformin|0|N||
C0025598|ENG|S|L7|PF|S7|N|A0000007||||RXNORM|SY|6809|metformin hydrochloride old|0|O||
C0020538|ENG|P|L8|PF|S8|Y|A0000008||||SNOMEDCT_US|PT|38341003|Hypertensive disorder|9|N||
C0000001|ENG|P|L9|PF|S9|Y|A0000009||||SNOMEDCT_US|PT|1|Only suppressed|9|E||
"""
# CUI1|AUI1|STYPE1|REL|CUI2|AUI2|STYPE2|RELA|RUI|SRUI|SAB|SL|RG|DIR|SUPPRESS|CVF|
# Facts: T2DM isa DM (both rows); metformin may_treat T2DM (both rows); DM RO hypertension
# (symmetric, both rows); MSH broader/narrower without RELA; an XR row; a suppressed row.
MRREL = """\
C0011849||CUI|CHD|C0011860||CUI|isa|R1||SNOMEDCT_US|SNOMEDCT_US|||N||
C0011860||CUI|PAR|C0011849||CUI|inverse_isa|R2||SNOMEDCT_US|SNOMEDCT_US|||N||
C0011860||CUI|RO|C0025598||CUI|may_treat|R3||RXNORM|RXNORM|||N||
C0025598||CUI|RO|C0011860||CUI|may_be_treated_by|R4||RXNORM|RXNORM|||N||
C0011849||CUI|RO|C0020538||CUI||R5||SNOMEDCT_US|SNOMEDCT_US|||N||
C0020538||CUI|RO|C0011849||CUI||R6||SNOMEDCT_US|SNOMEDCT_US|||N||
C0011860||CUI|RB|C0011849||CUI||R7||MSH|MSH|||N||
C0011849||CUI|RN|C0011860||CUI||R8||MSH|MSH|||N||
C0011849||CUI|XR|C0025598||CUI||R9||MSH|MSH|||N||
C0011849||CUI|RO|C0020538||CUI|associated_with|R10||SNOMEDCT_US|SNOMEDCT_US|||O||
C0011849||CUI|RO|C0000001||CUI|has_finding_site|R11||SNOMEDCT_US|SNOMEDCT_US|||N||
"""
MRSTY = """\
C0011849|T047|B2.2.1.2.1|Disease or Syndrome|AT1||
C0011860|T047|B2.2.1.2.1|Disease or Syndrome|AT2||
C0025598|T109|A1.4.1.1.1|Organic Chemical|AT3||
C0025598|T121|A1.4.1.1.1|Pharmacologic Substance|AT4||
C0020538|T033|A2.2|Finding|AT5||
C0020538|T047|B2.2.1.2.1|Disease or Syndrome|AT6||
"""
MRSAB = "".join(
    f"||{sab}_2024|{sab}|{sab} source|{sab}|2024|||||||0||||||ENG|UTF-8|Y|Y|{sab}|cite|\n"
    for sab in ("MSH", "MSHSPA", "SNOMEDCT_US", "ICD10CM", "RXNORM")
)
MRDOC = """\
RELA|may_treat|rela_inverse|may_be_treated_by|
RELA|may_be_treated_by|rela_inverse|may_treat|
"""


def write_release(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    base = {"MRCONSO": MRCONSO, "MRREL": MRREL, "MRSTY": MRSTY, "MRSAB": MRSAB, "MRDOC": MRDOC}
    base.update(files)
    for name, text in base.items():
        if text is not None:
            (folder / f"{name}.RRF").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture()
def release_dir(tmp_path) -> Path:
    return write_release(tmp_path / "META")


def edges(release) -> set[tuple[str, str, str, str]]:
    frame = release.relations().collect()
    return {(r["src"], r["type"], r["dst"], r["sab"]) for r in frame.iter_rows(named=True)}


def test_direction_follows_cui2_rel_cui1_and_inverse_pairs_collapse(release_dir):
    release = open_release(release_dir)
    found = edges(release)
    assert ("C0011860", "ISA", "C0011849", "SNOMEDCT_US") in found  # T2DM isa DM, from both rows
    assert ("C0025598", "MAY_TREAT", "C0011860", "RXNORM") in found  # metformin may_treat T2DM
    assert ("C0011860", "NARROWER_THAN", "C0011849", "MSH") in found  # RB/RN without RELA
    assert ("C0011849", "RELATED_TO", "C0020538", "SNOMEDCT_US") in found  # symmetric: smaller CUI first
    # exactly one edge per fact: XR, the suppressed row and the edge to a concept without kept atoms are gone
    assert len(found) == 4
    row = release.relations().filter(pl.col("type") == "ISA").collect().row(0, named=True)
    assert (row["rel"], row["rela"], row["inverse_rel"], row["inverse_rela"]) == (
        "CHD",
        "isa",
        "PAR",
        "inverse_isa",
    )


def test_single_row_of_a_pair_gives_the_same_edge(tmp_path):
    only_backward = "C0011860||CUI|PAR|C0011849||CUI|inverse_isa|R2||SNOMEDCT_US|SNOMEDCT_US|||N||\n"
    release = open_release(write_release(tmp_path / "r", MRREL=only_backward))
    assert edges(release) == {("C0011860", "ISA", "C0011849", "SNOMEDCT_US")}


def test_relation_without_known_inverse_is_kept_as_stated(tmp_path):
    text = "C0011849||CUI|RO|C0011860||CUI|has_odd_link|R1||SNOMEDCT_US|SNOMEDCT_US|||N||\n"
    release = open_release(write_release(tmp_path / "r", MRREL=text, MRDOC=None))
    assert edges(release) == {("C0011860", "HAS_ODD_LINK", "C0011849", "SNOMEDCT_US")}
    table = release.reading_table()
    assert table.filter(pl.col("RELA") == "has_odd_link")["collapsed"].to_list() == [False]


def test_mrdoc_inverses_decide_direction(tmp_path):
    doc = "RELA|zz_forward|rela_inverse|aa_backward|\nRELA|aa_backward|rela_inverse|zz_forward|\n"
    rows = (
        "C0011849||CUI|RO|C0011860||CUI|zz_forward|R1||SNOMEDCT_US|SNOMEDCT_US|||N||\n"
        "C0011860||CUI|RO|C0011849||CUI|aa_backward|R2||SNOMEDCT_US|SNOMEDCT_US|||N||\n"
    )
    release = open_release(write_release(tmp_path / "r", MRREL=rows, MRDOC=doc))
    # alphabetical rule picks aa_backward as forward: "C0011849 aa_backward C0011860"
    assert edges(release) == {("C0011849", "AA_BACKWARD", "C0011860", "SNOMEDCT_US")}


def test_naming_rules():
    assert forward_name("inverse_isa", "isa") == "isa"
    assert forward_name("has_part", "part_of") == "part_of"  # pinned: child-to-whole
    assert forward_name("finding_site_of", "has_finding_site") == "has_finding_site"
    assert forward_name("may_be_treated_by", "may_treat") == "may_treat"
    assert forward_name("measured_by", "measures") == "measures"
    assert type_label("may_treat") == "MAY_TREAT"
    assert type_label("associated_with") == "SRC_ASSOCIATED_WITH"  # engine's own type stays free
    assert type_label("3d-shape of") == "R_3D_SHAPE_OF"
    names = RelationNames()
    assert not names.reading("XR", "").keep
    assert names.reading("PAR", "").type == "CHILD_OF" and names.reading("PAR", "").swap


def test_concepts_names_types_and_groups(release_dir):
    concepts = open_release(release_dir).concepts().collect().sort("cui")
    by_cui = {r["cui"]: r for r in concepts.iter_rows(named=True)}
    assert set(by_cui) == {
        "C0011849",
        "C0011860",
        "C0025598",
        "C0020538",
    }  # C0000001 only has a suppressed atom
    assert by_cui["C0011849"]["name"] == "Diabetes Mellitus"  # TS=P, ENG
    assert by_cui["C0025598"]["semantic_types"] == ["T109", "T121"]
    assert by_cui["C0025598"]["semantic_group"] == "CHEM"
    assert by_cui["C0020538"]["semantic_group"] == "DISO"


def test_filters_sab_language_suppression(release_dir):
    release = open_release(release_dir, sabs=["ICD10CM", "RXNORM"])
    assert set(release.concepts().collect()["cui"]) == {"C0011860", "C0025598"}
    assert edges(release) == {("C0025598", "MAY_TREAT", "C0011860", "RXNORM")}
    spanish = open_release(release_dir, languages=["SPA"])
    assert spanish.concepts().collect()["name"].to_list() == ["Diabetes Mellitus (es)"]
    with_obsolete = open_release(release_dir, suppress=["N", "O"])
    names = set(with_obsolete.names().collect()["name"])
    assert "metformin hydrochloride old" in names
    assert "metformin hydrochloride old" not in set(open_release(release_dir).names().collect()["name"])


def test_codes_and_materialize(release_dir, tmp_path):
    release = open_release(release_dir)
    codes = release.codes().collect()
    assert codes.filter((pl.col("sab") == "ICD10CM") & (pl.col("code") == "E11"))["cui"].to_list() == [
        "C0011860"
    ]
    stats = release.materialize(tmp_path / "out")
    assert stats["counts"]["concepts"] == 4 and stats["counts"]["relations"] == 4
    again = open_release(release_dir).materialize(tmp_path / "out2")
    for name in ("concepts", "codes", "names", "relations"):
        assert (tmp_path / "out" / f"{name}.parquet").read_bytes() == (
            tmp_path / "out2" / f"{name}.parquet"
        ).read_bytes()
    assert stats["fingerprint"] == again["fingerprint"]


def test_semgroups_mapping_shape():
    types = semantic_types()
    assert len(types) == 127
    assert len({t.group for t in types.values()}) == 15
    assert types["T047"].group == "DISO" and types["T121"].group == "CHEM" and types["T061"].group == "PROC"
    assert group_of(["T167", "T121"]) == "CHEM"  # Substance (OBJC) loses to CHEM
    assert group_of(["T999"]) == "UNKN"


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("MRCONSO", "C0011849|ENG|P|L1|PF|S1|Y|A1||||MSH|MH|D1|Diabetes|0|N|\n", "wrong field count"),
        ("MRCONSO", "X0011849|ENG|P|L1|PF|S1|Y|A1||||MSH|MH|D1|Diabetes|0|N||\n", "bad CUI"),
        ("MRREL", MRREL + "C0011849||CUI|RO|C123||CUI||R1||MSH|MSH|||N||\n", "bad CUI2"),
        ("MRSTY", "C0011849|T047|B|Disease|AT1|||extra|\n", "wrong field count"),
        ("MRCONSO", "C0011849|ENG|P|L1|PF|S1|Y|A1||||||D1|Diabetes|0|N||\n", "empty SAB"),
    ],
)
def test_malformed_lines_name_file_line_value_and_fix(tmp_path, name, text, problem):
    folder = write_release(tmp_path / "bad", **{name: text})
    release = open_release(folder)
    with pytest.raises(GraphError) as caught:
        release.materialize(tmp_path / "out")
    message = str(caught.value)
    assert f"{name}.RRF" in message and problem in message and "fix:" in message
    last_line = len(text.splitlines())
    assert f"line {last_line}" in message
    assert "\n" not in message


def test_unknown_sab_and_bad_options(release_dir):
    with pytest.raises(ConfigError) as caught:
        open_release(release_dir, sabs=["SNOMEDCT"]).concepts()
    assert (
        "SNOMEDCT" in str(caught.value)
        and "SNOMEDCT_US" in str(caught.value)
        and "MRSAB" in str(caught.value)
    )
    with pytest.raises(ConfigError):
        open_release(release_dir, languages=["EN"])
    with pytest.raises(ConfigError):
        open_release(release_dir, suppress=["X"])
    with pytest.raises(InputError):
        open_release(release_dir / "nowhere")


def test_meta_subfolder_gzip_split_parts_and_mrfiles(tmp_path):
    root = tmp_path / "2024AA"
    meta = write_release(root / "META")
    assert find_rrf(root, "MRCONSO") == [meta / "MRCONSO.RRF"]
    lines = MRCONSO.splitlines(keepends=True)
    (meta / "MRCONSO.RRF").unlink()
    (meta / "MRCONSO.RRF.aa").write_text("".join(lines[:4]))
    (meta / "MRCONSO.RRF.ab.gz").write_bytes(gzip.compress("".join(lines[4:]).encode()))
    assert [p.name for p in find_rrf(root, "MRCONSO")] == ["MRCONSO.RRF.aa", "MRCONSO.RRF.ab.gz"]
    assert scan_rrf(root, "MRCONSO", ["CUI"]).collect().height == len(lines)
    # MRFILES names the columns of a release whose layout differs from the built-in one
    (meta / "MRFILES.RRF").write_text("MRSTY.RRF|Semantic Types|CUI,TUI,STY|3|0|0|\n")
    (meta / "MRSTY.RRF").write_text("C0011849|T047|Disease or Syndrome|\n")
    assert scan_rrf(root, "MRSTY", ["CUI", "STY"]).collect()["STY"].to_list() == ["Disease or Syndrome"]


def test_mrsat_attributes_and_release_without_mrsab(tmp_path):
    # CUI|LUI|SUI|METAUI|STYPE|CODE|ATUI|SATUI|ATN|SAB|ATV|SUPPRESS|CVF|
    mrsat = (
        "C0025598|L6|S6|A0000006|AUI|6809|AT1||NDC|RXNORM|00093104801|N||\n"
        "C0025598|L6|S6|A0000006|AUI|6809|AT2||NDC|RXNORM|00000000000|O||\n"
        "C0025598|L6|S6|A0000006|AUI|6809|AT3||TTY_NOTE|RXNORM|x|N||\n"
    )
    folder = write_release(tmp_path / "r", MRSAT=mrsat, MRSAB=None)
    release = open_release(folder)
    ndc = release.attributes(["NDC"]).collect()
    assert ndc.select("cui", "sab", "code", "atv").rows() == [("C0025598", "RXNORM", "6809", "00093104801")]
    assert set(release.sources()["sab"]) == {
        "MSH",
        "MSHSPA",
        "SNOMEDCT_US",
        "ICD10CM",
        "RXNORM",
    }  # from MRCONSO
    with pytest.raises(ConfigError) as caught:
        open_release(folder, sabs=["LNC"]).codes()
    assert "MRCONSO" in str(caught.value)
