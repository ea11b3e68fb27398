"""graphkit.link on the bundled MIMIC-IV demo and a tiny hand-made release: tiers, groups, keys, table API."""

from __future__ import annotations

import random
import string

import polars as pl
import pytest

from graphkit.ehr.source import open_source
from graphkit.errors import InputError
from graphkit.link import LinkOptions, collect_items, key_expr, link_mimic, map_items, read_links, write_links
from graphkit.link.names import candidates, normalized
from graphkit.link.report import link_report
from graphkit.umls import open_release
from graphkit.umls.names import drug_name_candidates, normalize_name
from tests.kg_data import write_tiny_release


@pytest.fixture(scope="module")
def demo_source(demo_dir):
    return open_source(demo_dir)


@pytest.fixture(scope="module")
def demo_items(demo_source):
    return collect_items(demo_source, count_rows=True)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, demo_source):
    release = open_release(write_tiny_release(tmp_path_factory.mktemp("tiny") / "META"))
    return link_mimic(release, demo_source, count_rows=True)


def links_of(result, key: str) -> list[tuple[str, str, float]]:
    frame = result.links.filter(pl.col("key") == key).sort("cui")
    return [(r["cui"], r["method"], r["score"]) for r in frame.iter_rows(named=True)]


def test_normalization_matches_the_python_reference():
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + " ()%-./,é\tÜ"
    texts = ["HYDROmorphone (Dilaudid)", "Sodium Chloride 0.9%  Flush", "(a)", "a(b", "  ", "Na"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(500)]
    frame = pl.DataFrame({"name": texts, "key": [str(i) for i in range(len(texts))], "kind": "drug"})
    assert frame.select(normalized(pl.col("name")))["name"].to_list() == [normalize_name(t) for t in texts]
    found = candidates(frame)
    for i, text in enumerate(texts):
        got = found.filter(pl.col("key") == str(i)).sort("rank")["candidate"].to_list()
        assert got == drug_name_candidates(text), text


def test_item_keys_are_built_from_row_values_only():
    rows = pl.DataFrame({"icd_version": [9, 10], "icd_code": [" 3893", "E119 "], "drug": [" Heparin ", "x"]})
    keys = rows.select(key_expr("procedures_icd", ("icd_version", "icd_code")).alias("k"))["k"].to_list()
    assert keys == ["procedures_icd:9:3893", "procedures_icd:10:E119"]
    drugs = rows.select(key_expr("prescriptions", ("drug",)).alias("k"))["k"].to_list()
    assert drugs == ["prescriptions:Heparin", "prescriptions:x"]


def test_demo_items_cover_every_dictionary_and_text_table(demo_items, demo_dir):
    d_icd = pl.read_csv(demo_dir / "hosp" / "d_icd_diagnoses.csv.gz", infer_schema=False)
    dx = demo_items.filter(pl.col("table") == "diagnoses_icd")
    assert dx.height == d_icd.height  # every dictionary code is an item, used or not
    assert dx.filter(pl.col("rows") > 0)["rows"].sum() == 4506  # every diagnoses_icd row counted once
    assert demo_items["key"].is_unique().all()
    kinds = dict(demo_items.select("key", "kind").rows())
    assert kinds["microbiologyevents:org:80002"] == "organism"
    assert kinds["microbiologyevents:test:90201"] == "test"
    assert kinds["inputevents:225158"] == "drug"
    assert (
        kinds["chartevents:220045"] == "measurement"
    )  # listed by d_items though the demo has no chartevents
    prescriptions = demo_items.filter(pl.col("table") == "prescriptions")
    assert prescriptions["rows"].sum() == 18087


def test_exact_codes_come_first_and_the_dot_separates_icd9_procedures_from_diagnoses(tiny):
    assert links_of(tiny, "diagnoses_icd:10:E119") == [("C0011860", "icd_code", 1.0)]
    assert links_of(tiny, "procedures_icd:9:3893") == [("C0394664", "icd_code", 1.0)]
    assert links_of(tiny, "labevents:50931") == [("C0484431", "code_map", 1.0)]


def test_names_respect_the_item_kind_and_the_candidate_order(tiny):
    assert links_of(tiny, "prescriptions:Heparin") == [("C0019134", "name", 0.9)]
    assert links_of(tiny, "prescriptions:Insulin") == []  # the only "insulin" concept is a disease here
    assert links_of(tiny, "prescriptions:Vancomycin") == [
        ("C0042313", "name", 0.9),
        ("C0700000", "name", 0.9),
    ]
    assert links_of(tiny, "prescriptions:Metoprolol Tartrate") == [("C0025859", "name_words", 0.6)]
    assert links_of(tiny, "prescriptions:Potassium Chloride") == [("C0032825", "name", 0.9)]
    assert links_of(tiny, "microbiologyevents:org:80002") == [("C0014834", "name", 0.9)]


def test_each_item_is_linked_by_one_tier_and_at_most_max_concepts(tiny, demo_source, tmp_path):
    assert tiny.links.group_by("key").agg(pl.col("method").n_unique())["method"].max() == 1
    release = open_release(write_tiny_release(tmp_path / "META"))
    one = link_mimic(release, demo_source, options=LinkOptions(max_concepts=1, tiers=("name",)))
    assert links_of(one, "prescriptions:Vancomycin") == [("C0042313", "name", 0.9)]
    # without the code tier the ICD item still finds its concept, by its title
    assert links_of(one, "diagnoses_icd:10:E119") == [("C0011860", "name", 0.9)]
    with pytest.raises(InputError, match="unknown linking tier"):
        link_mimic(release, demo_source, options=LinkOptions(tiers=("codes",)))


def test_ndc_route_through_mrsat(tmp_path, demo_source):
    # CUI|LUI|SUI|METAUI|STYPE|CODE|ATUI|SATUI|ATN|SAB|ATV|SUPPRESS|CVF|
    mrsat = "C0016860|L1|S1|A1|SCUI|1|AT1||NDC|RXNORM|00409610204|N||\n"
    folder = write_tiny_release(tmp_path / "META", MRSAT=mrsat)
    folder.joinpath("MRCONSO.RRF").write_text(
        folder.joinpath("MRCONSO.RRF").read_text()
        + "C0016860|ENG|P|L99|PF|S99|Y|A99||||RXNORM|SCD|310429|furosemide 10 MG/ML Injectable Solution|0|N||\n"
    )
    result = link_mimic(open_release(folder), demo_source)
    assert links_of(result, "prescriptions:Furosemide") == [("C0016860", "ndc", 1.0)]


def test_extra_links_win_and_missing_concepts_are_dropped_and_reported(tmp_path, demo_source):
    release = open_release(write_tiny_release(tmp_path / "META"))
    extra = pl.DataFrame(
        {"key": ["prescriptions:Insulin", "labevents:50931"], "cui": ["C0021641", "C9999999"]}
    )
    result = link_mimic(release, demo_source, extra_links=extra)
    assert links_of(result, "prescriptions:Insulin") == [("C0021641", "extra", 1.0)]
    # the extra link to a concept the release lacks is dropped, not replaced by the code link
    assert links_of(result, "labevents:50931") == []
    assert result.dropped.select("key", "cui").rows() == [("labevents:50931", "C9999999")]
    assert result.summary()["dropped_links"] == 1
    with pytest.raises(InputError, match="not MIMIC items"):
        link_mimic(
            release, demo_source, extra_links=pl.DataFrame({"key": ["labevents:1"], "cui": ["C0011860"]})
        )
    with pytest.raises(InputError, match="key and cui"):
        link_mimic(release, demo_source, extra_links=pl.DataFrame({"item": ["x"]}))


def test_link_table_round_trip_and_mapping_sample_items(tiny, tmp_path):
    summary = write_links(tiny, tmp_path / "links")
    assert summary["items_linked"] == tiny.links["key"].n_unique()
    links = read_links(tmp_path / "links")
    assert links.equals(tiny.links)
    sample_items = [
        {"table": "labevents", "key": "labevents:50931", "name": "Glucose"},
        {"table": "prescriptions", "key": "prescriptions:Insulin", "name": "Insulin"},
        {"table": "prescriptions", "key": "prescriptions:Vancomycin", "name": "Vancomycin"},
    ]
    mapped = map_items(sample_items, links)
    assert mapped.select("key", "cui").rows() == [
        ("labevents:50931", "C0484431"),
        ("prescriptions:Vancomycin", "C0042313"),
        ("prescriptions:Vancomycin", "C0700000"),
    ]
    as_struct = pl.Series("context_items", sample_items)
    assert map_items(as_struct, links).equals(mapped)
    assert map_items(["labevents:50931"], links)["cui"].to_list() == ["C0484431"]
    with pytest.raises(InputError, match="no link table"):
        read_links(tmp_path / "nothing")


def test_report_counts_rows_and_items_by_method(tiny, demo_source):
    report = link_report(tiny.items, tiny.links, present=set(demo_source.tables), top=3)
    tables = {row["table"]: row for row in report["tables"]}
    assert "chartevents" not in tables  # the demo has no chartevents rows
    labs = tables["labevents"]
    assert labs["rows"] == 107727 and labs["items"] == 498  # items seen in the rows, not the whole dictionary
    glucose_rows = int(tiny.items.filter(pl.col("key") == "labevents:50931")["rows"][0])
    assert labs["items_code_map"] == 1 and labs["rows_code_map"] == glucose_rows
    for row in tables.values():  # the methods partition what is linked
        methods = [k[len("items_") :] for k in row if k.startswith("items_") and k != "items_linked"]
        assert sum(row[f"items_{m}"] for m in methods) == row["items_linked"]
        assert sum(row[f"rows_{m}"] for m in methods) == row["rows_linked"]
    assert labs["row_share"] == round(labs["rows_linked"] / 107727, 4)
    pres = tables["prescriptions"]
    assert pres["items_name"] + pres.get("items_name_words", 0) == pres["items_linked"]
    worst = report["unlinked"]["prescriptions"]
    assert len(worst) == 3 and worst[0]["key"] == "prescriptions:Insulin"
    assert [w["rows"] for w in worst] == sorted((w["rows"] for w in worst), reverse=True)


def test_bench_item_keys_of_linked_tables_are_link_table_items(demo_source, demo_items):
    """The benchmark builder computes item keys from timeline rows; every one of a table this
    linker covers must be an item here (same key), or samples would not map to concepts."""
    from bench.builder.items import row_items
    from graphkit.ehr.timeline import build_timeline

    subjects = demo_source.scan("patients", ["subject_id"]).head(10).collect()["subject_id"].to_list()
    timeline = build_timeline(demo_source, subjects=subjects)
    covered = set(demo_items["table"].unique())
    known = set(demo_items["key"])
    checked = 0
    for table, rows in timeline.rows.items():
        if table not in covered:
            continue
        keys = set(row_items(table, rows).select(pl.col("item").struct.field("key"))["key"])
        assert keys <= known, (table, sorted(keys - known)[:5])
        checked += len(keys)
    assert checked > 500
