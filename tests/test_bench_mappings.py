"""CCS and ATC mappings for grouped targets, and their coverage on the MIMIC-IV demo."""

from __future__ import annotations

import gzip

import polars as pl
import pytest

from bench.mappings import (
    build_atc_from_umls,
    load_atc,
    load_ccs,
    normalize_icd,
    normalize_ndc,
    unmapped_rates,
)
from graphkit.errors import InputError


def test_normalize_codes():
    assert normalize_ndc("00904198261") == "00904198261"
    assert normalize_ndc("904198261.0") == "00904198261"
    assert normalize_ndc(904198261) == "00904198261"
    assert normalize_ndc("0904-1982-61") == "00904198261"  # 4-4-2 labeled form
    assert normalize_ndc("00904-198-61") == "00904019861"  # 5-3-2 labeled form
    for missing in (None, "", "0", "0.0", "n/a", "123456789012"):
        assert normalize_ndc(missing) is None
    assert normalize_icd(" 401.9 ") == "4019"
    assert normalize_icd("i10") == "I10"
    assert normalize_icd("") is None


def test_ccs_diagnoses_both_icd_versions_share_categories():
    dx = load_ccs("dx")
    assert dx.category(9, "4019") == dx.category("10", "I10") == "98"
    assert dx.label(9, "401.9") == "Essential hypertension"
    assert dx.label(10, "A150") == "Tuberculosis"
    assert dx.category(9, "XYZ") is None and dx.category(11, "I10") is None
    assert len(dx.labels) == 283
    assert set(dx.categories.values()) <= set(dx.labels)


def test_ccs_procedures():
    px = load_ccs("px")
    assert px.label(9, "3893") == "Other vascular catheterization; not heart"
    assert px.label(10, "0DTJ4ZZ") == px.label(9, "4701") == "Appendectomy"
    assert len(px.labels) == 231
    assert set(px.categories.values()) <= set(px.labels)
    frame = px.frame()
    assert frame.columns == ["icd_version", "icd_code", "ccs", "ccs_label"]
    assert frame.height == len(px.categories)
    with pytest.raises(InputError):
        load_ccs("rx")


@pytest.fixture(scope="module")
def demo_source(demo_dir):
    from graphkit.ehr.source import open_source

    return open_source(demo_dir)


def test_unmapped_rates_on_the_demo(demo_source, tmp_path):
    rows = {r.table: r for r in unmapped_rates(demo_source)}
    assert set(rows) == {"diagnoses_icd", "procedures_icd", "prescriptions"}  # the demo has no ed/
    dx, px, rx = rows["diagnoses_icd"], rows["procedures_icd"], rows["prescriptions"]
    assert (dx.rows, dx.rows_unmapped, dx.codes, dx.codes_unmapped) == (4506, 0, 1474, 0)
    assert (px.rows, px.rows_unmapped, px.codes, px.codes_unmapped) == (722, 0, 352, 0)
    # Independent count of the prescriptions' NDCs.
    ndcs = demo_source.scan("prescriptions", ["ndc"]).collect()["ndc"].to_list()
    coded = [normalize_ndc(n) for n in ndcs if normalize_ndc(n)]
    assert rx.rows == len(ndcs) and rx.rows - rx.rows_without_code == len(coded)
    assert rx.codes == len(set(coded)) and rx.code_rate == 1.0 and "no NDC->ATC table" in rx.note

    # With a table covering the two most frequent NDCs, exactly their rows become mapped.
    top = pl.Series(coded).value_counts(sort=True).head(2)
    table = tmp_path / "atc.csv"
    table.write_text("ndc,atc_code,atc_name\n" + "".join(f"{n},A01AB,Example class\n" for n in top[:, 0]))
    atc = load_atc(table)
    rx = {r.table: r for r in unmapped_rates(demo_source, atc)}["prescriptions"]
    assert rx.codes_unmapped == len(set(coded)) - 2
    assert rx.rows_unmapped == len(coded) - int(top[:, 1].sum())
    assert atc.names(top[0, 0]) == ("Example class",)


def test_cli_mappings(cli, demo_dir):
    result = cli("bench", "mappings", "--mimic", demo_dir, "--json")
    assert result.exit_code == 0
    assert '"unmapped_code_rate": 0.0' in result.output


def test_load_atc_errors(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("ndc\tatc\n1\tx\n")
    with pytest.raises(InputError, match="atc_code"):
        load_atc(bad)
    bad.write_text("ndc\tatc_code\tatc_name\nabc\tA\tB\n")
    with pytest.raises(InputError, match="line 2: not an NDC"):
        load_atc(bad)
    with pytest.raises(InputError, match="not found"):
        load_atc(tmp_path / "missing.tsv")


def _rrf(tmp_path):
    """A tiny UMLS-shaped release: a brand product, a pack, a drug without ATC, and a brand-name trap."""
    from graphkit.umls.rrf import COLUMNS, write_rrf

    tmp_path.mkdir()

    def frame(name, rows):
        cols = COLUMNS[name]
        return pl.DataFrame(
            [{c: r.get(c, "") for c in cols} for r in rows], schema={c: pl.String for c in cols}
        )

    conso = [
        ("C0000001", "RXNORM", "SBD", "1", "Brandx 10 MG Oral Tablet"),
        ("C0000002", "RXNORM", "SCD", "2", "druga 10 MG Oral Tablet"),
        ("C0000003", "RXNORM", "SCDC", "3", "druga 10 MG"),
        ("C0000004", "RXNORM", "IN", "4", "druga"),
        ("C0000004", "ATC", "RXN_IN", "A01AB01", "druga"),
        ("C0000012", "ATC", "RXN_PT", "A01AB", "Antiinfectives for local oral treatment"),
        ("C0000005", "RXNORM", "BN", "5", "Brandx"),
        ("C0000006", "RXNORM", "SBD", "6", "Brandx Night Oral Tablet"),
        ("C0000007", "RXNORM", "IN", "7", "drugb"),
        ("C0000007", "ATC", "RXN_IN", "B01AC06", "drugb"),
        ("C0000013", "ATC", "RXN_PT", "B01AC", "Platelet aggregation inhibitors"),
        ("C0000008", "RXNORM", "GPCK", "8", "pack of druga and drugc"),
        ("C0000009", "RXNORM", "SCD", "9", "drugc 5 MG Oral Tablet"),
        ("C0000014", "RXNORM", "IN", "14", "drugc"),
        ("C0000014", "ATC", "RXN_IN", "C03CA01", "drugc"),
        ("C0000015", "ATC", "RXN_PT", "C03CA", "Sulfonamides, plain"),
        ("C0000010", "RXNORM", "SCD", "10", "drugd 1 MG Oral Tablet"),
        ("C0000011", "RXNORM", "IN", "11", "drugd"),
    ]
    rel = [
        ("C0000001", "C0000002", "tradename_of"),
        ("C0000002", "C0000003", "consists_of"),
        ("C0000003", "C0000004", "has_ingredient"),
        ("C0000001", "C0000005", "has_ingredient"),  # SBD -> BN
        ("C0000006", "C0000005", "has_ingredient"),  # another product of the same brand
        ("C0000006", "C0000007", "has_ingredient"),
        ("C0000008", "C0000002", "contains"),
        ("C0000008", "C0000009", "contains"),
        ("C0000009", "C0000014", "has_ingredient"),
        ("C0000010", "C0000011", "has_ingredient"),
    ]
    sat = [
        ("C0000001", "11111111111"),
        ("C0000008", "22222-2222-22"),
        ("C0000010", "33333333333"),
        ("C0000006", "44444444444"),
    ]
    write_rrf(
        frame(
            "MRCONSO",
            [
                {"CUI": c, "LAT": "ENG", "SAB": s, "TTY": t, "CODE": code, "STR": name}
                for c, s, t, code, name in conso
            ],
        ),
        tmp_path / "MRCONSO.RRF",
        COLUMNS["MRCONSO"],
    )
    inverse = {
        "tradename_of": "has_tradename",
        "consists_of": "constitutes",
        "has_ingredient": "ingredient_of",
        "contains": "contained_in",
    }
    rows = []
    for a, b, rela in rel:  # MRREL lists every relation in both directions
        rows.append({"CUI1": b, "REL": "RO", "CUI2": a, "RELA": rela, "SAB": "RXNORM"})
        rows.append({"CUI1": a, "REL": "RO", "CUI2": b, "RELA": inverse[rela], "SAB": "RXNORM"})
    write_rrf(frame("MRREL", rows), tmp_path / "MRREL.RRF", COLUMNS["MRREL"])
    write_rrf(
        frame("MRSAT", [{"CUI": c, "ATN": "NDC", "SAB": "RXNORM", "ATV": ndc} for c, ndc in sat]),
        tmp_path / "MRSAT.RRF",
        COLUMNS["MRSAT"],
    )
    return tmp_path


def test_build_atc_from_umls(tmp_path):
    meta = _rrf(tmp_path / "META")
    stats = build_atc_from_umls(meta, tmp_path / "atc.tsv.gz", level=4)
    assert (stats.ndcs, stats.ndcs_mapped, stats.classes) == (4, 3, 3)
    atc = load_atc(stats.path)
    assert atc.names("11111111111") == ("Antiinfectives for local oral treatment",)  # not drugb via the brand
    assert atc.names("22222222222") == ("Antiinfectives for local oral treatment", "Sulfonamides, plain")
    assert atc.names("33333333333") == ()  # drugd has no ATC atom
    assert atc.names("44444444444") == ("Platelet aggregation inhibitors",)
    level5 = load_atc(build_atc_from_umls(meta, tmp_path / "atc5.tsv", level=5).path)
    assert level5.names("11111111111") == ("druga",)
    assert gzip.open(stats.path, "rt").readline().strip().split("\t") == ["ndc", "atc_code", "atc_name"]
    with pytest.raises(InputError, match="level"):
        build_atc_from_umls(meta, tmp_path / "x.tsv", level=6)
