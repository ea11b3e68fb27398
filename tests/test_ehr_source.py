"""graphkit.ehr.schema and graphkit.ehr.source on the genuine demo and on hand-made broken copies."""

from __future__ import annotations

import random

import polars as pl
import pytest

from graphkit.ehr.schema import DTYPES, load_schema
from graphkit.ehr.source import open_source, shard_expr, shard_of
from graphkit.errors import ConfigError, InputError, SchemaError
from tests.ehr_demo_copy import demo_copy, read_csv_gz, replace_in_table, write_csv_gz

DEMO_TABLES = {
    "admissions": 275,
    "patients": 100,
    "diagnoses_icd": 4506,
    "labevents": 107727,
    "icustays": 140,
    "d_labitems": 1622,
    "procedureevents": 1468,
    "provider": 40508,
}


@pytest.fixture(scope="module")
def demo(demo_dir):
    return open_source(demo_dir)


# ---------------------------------------------------------------- schema


def test_schema_covers_all_modules_with_unique_table_names():
    schema = load_schema()
    assert set(schema.modules) == {"hosp", "icu", "ed", "note"}
    assert schema.versions == ("2.2", "3.1")
    assert {t.name for t in schema.tables_in("ed")} == {
        "edstays",
        "triage",
        "vitalsign",
        "medrecon",
        "pyxis",
        "diagnosis",
    }
    assert {t.name for t in schema.tables_in("note")} == {
        "discharge",
        "discharge_detail",
        "radiology",
        "radiology_detail",
    }
    assert len(schema.tables_in("hosp")) == 22 and len(schema.tables_in("icu")) == 9
    assert schema.modules["hosp"].required and schema.modules["icu"].required
    assert not schema.modules["ed"].required and not schema.modules["note"].required


def test_schema_table_spec_matches_the_contract():
    schema = load_schema()
    spec = schema.table("labevents")
    assert (spec.module, spec.subject_column, spec.time_column) == ("hosp", "subject_id", "charttime")
    assert spec.columns["valuenum"].dtype == "float"
    assert spec.columns["charttime"].dtype == "datetime"
    assert spec.columns["order_provider_id"].since == "2.2"
    assert not spec.columns["subject_id"].nullable and spec.columns["hadm_id"].nullable
    assert not schema.table("chartevents").required
    for dictionary in (
        "d_labitems",
        "d_items",
        "d_icd_diagnoses",
        "d_icd_procedures",
        "d_hcpcs",
        "provider",
        "caregiver",
    ):
        assert schema.table(dictionary).is_dictionary
    codes = [
        ("diagnoses_icd", "icd_code"),
        ("procedures_icd", "icd_code"),
        ("prescriptions", "ndc"),
        ("prescriptions", "gsn"),
        ("drgcodes", "drg_code"),
        ("hcpcsevents", "hcpcs_cd"),
        ("d_hcpcs", "code"),
        ("medrecon", "ndc"),
        ("pyxis", "gsn"),
        ("diagnosis", "icd_code"),
    ]
    for table, column in codes:
        assert schema.table(table).columns[column].dtype == "str", (table, column)


def test_unknown_table_names_the_choices():
    with pytest.raises(SchemaError, match="labevnts.*fix: use one of: .*labevents"):
        load_schema().table("labevnts")


def test_bad_schema_file_is_a_config_error(tmp_path):
    bad = tmp_path / "schema.yaml"
    bad.write_text(
        "format: 1\nversions: ['3.1']\nmodules: {hosp: {required: true}}\n"
        "tables:\n  t:\n    module: hosp\n    columns:\n      a: integer, not null\n"
    )
    with pytest.raises(
        ConfigError, match=r"tables\.t\.columns\.a: is not a column definition \(got 'integer, not null'\)"
    ):
        load_schema(bad)


# ---------------------------------------------------------------- reading the demo


def test_demo_opens_with_hosp_and_icu_and_no_chartevents(demo):
    assert demo.kind == "raw" and demo.n_shards == 1
    assert demo.modules == frozenset({"hosp", "icu"})
    assert not demo.has("chartevents") and demo.has("labevents")
    assert "chartevents" not in demo.tables and len(demo.tables) == 30


def test_demo_row_counts_match_the_official_demo(demo):
    for table, rows in DEMO_TABLES.items():
        assert demo.scan(table).select(pl.len()).collect().item() == rows, table


def test_scan_gives_lowercase_names_and_schema_dtypes(demo):
    frame = demo.scan("procedureevents").collect()
    assert frame.columns[-2:] == ["originalamount", "originalrate"]  # header says ORIGINALAMOUNT
    assert frame.schema["originalamount"] == pl.Float64
    labs = demo.scan("labevents").collect_schema()
    assert labs["subject_id"] == pl.Int64 and labs["itemid"] == pl.Int64
    assert labs["charttime"] == pl.Datetime("us") and labs["value"] == pl.String
    assert demo.scan("omr").collect_schema()["chartdate"] == pl.Date
    assert demo.scan("patients").collect_schema()["dod"] == pl.Date


def test_codes_keep_their_leading_zeros(demo):
    codes = demo.scan("d_icd_diagnoses", columns=["icd_code"]).head(2).collect()["icd_code"].to_list()
    assert codes == ["0090", "01160"]
    rx = demo.scan("prescriptions", columns=["gsn", "ndc"]).filter(pl.col("ndc") == "00002821501").collect()
    assert rx.height > 0 and set(rx["gsn"]) == {"001723"}


def test_scan_is_column_pruned(demo):
    lazy = demo.scan("labevents", columns=["subject_id", "ValueNum"])
    assert lazy.collect_schema().names() == ["subject_id", "valuenum"]
    assert "PROJECT 2/16 COLUMNS" in lazy.explain()


def test_scan_errors(demo):
    with pytest.raises(SchemaError, match="column 'valeu'"):
        demo.scan("labevents", columns=["valeu"])
    with pytest.raises(InputError, match="'chartevents' \\(icu/\\) is not in this dataset"):
        demo.scan("chartevents")
    with pytest.raises(ConfigError, match="shard: is out of range"):
        demo.scan("labevents", shard=1)
    assert demo.scan("labevents", shard=0).select(pl.len()).collect().item() == 107727


# ---------------------------------------------------------------- formats


def test_csv_and_parquet_read_the_same_as_csv_gz(demo, demo_dir, tmp_path):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    (copy / "hosp" / "admissions.csv.gz").unlink()
    (copy / "hosp" / "admissions.csv").write_text(read_csv_gz(demo_dir / "hosp" / "admissions.csv.gz"))
    (copy / "hosp" / "labevents.csv.gz").unlink()
    # a typical foreign parquet: narrower ints, nanosecond times, upper-case names
    (
        demo.scan("labevents")
        .with_columns(
            pl.col("subject_id", "itemid").cast(pl.Int32), pl.col("charttime").cast(pl.Datetime("ns"))
        )
        .rename({"valuenum": "VALUENUM"})
        .collect()
        .write_parquet(copy / "hosp" / "labevents.parquet")
    )
    other = open_source(copy)
    assert other.files["admissions"].format == "csv" and other.files["labevents"].format == "parquet"
    for table in ("admissions", "labevents"):
        assert other.scan(table).collect().equals(demo.scan(table).collect()), table


def test_parquet_code_stored_as_number_is_rejected(demo, demo_dir, tmp_path):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    (copy / "hosp" / "diagnoses_icd.csv.gz").unlink()
    demo.scan("diagnoses_icd").with_columns(
        pl.col("icd_code").cast(pl.Int64, strict=False)
    ).collect().write_parquet(copy / "hosp" / "diagnoses_icd.parquet")
    with pytest.raises(
        SchemaError,
        match=r"diagnoses_icd.parquet: column 'icd_code': has the wrong type: expected str \(got 'Int64'\).*leading zeros",
    ):
        open_source(copy)


# ---------------------------------------------------------------- bad structure


def test_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        open_source(tmp_path / "nowhere")


def test_not_a_mimic_folder(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="is not a MIMIC-IV folder"):
        open_source(tmp_path)


def test_module_folder_itself_suggests_the_parent(demo_dir):
    with pytest.raises(InputError, match="pass its parent folder"):
        open_source(demo_dir / "hosp")


def test_missing_required_module(demo_dir, tmp_path):
    copy = demo_copy(demo_dir, tmp_path / "mimic", modules=("hosp",))
    with pytest.raises(InputError, match="required module folder icu/ is missing"):
        open_source(copy)


def _drop(copy, relative):
    (copy / relative).unlink()


@pytest.mark.parametrize(
    ("break_it", "error", "message"),
    [
        (
            lambda copy: _drop(copy, "hosp/labevents.csv.gz"),
            InputError,
            r"hosp/labevents.csv.gz: table file is missing; fix: add hosp/labevents.csv.gz",
        ),
        (
            lambda copy: replace_in_table(copy, "hosp/admissions.csv.gz", ",race,", ",ethnicity,"),
            SchemaError,
            r"hosp/admissions.csv.gz: column 'race': required column is missing",
        ),
        (  # a MIMIC-IV 2.1 header
            lambda copy: replace_in_table(
                copy, "hosp/labevents.csv.gz", "itemid,order_provider_id,", "itemid,"
            ),
            SchemaError,
            r"column 'order_provider_id'.*exists since MIMIC-IV 2.2; use MIMIC-IV 2.2 or 3.1",
        ),
    ],
    ids=["missing-table", "missing-column", "pre-2.2-download"],
)
def test_structure_errors(demo_dir, tmp_path, break_it, error, message):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    break_it(copy)
    with pytest.raises(error, match=message):
        open_source(copy)


def test_empty_files(demo_dir, tmp_path):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    (copy / "hosp" / "omr.csv.gz").unlink()
    (copy / "hosp" / "omr.csv.gz").write_bytes(b"")
    with pytest.raises(InputError, match=r"hosp/omr.csv.gz: file is empty \(0 bytes\)"):
        open_source(copy)
    write_csv_gz(copy / "hosp" / "omr.csv.gz", "")
    with pytest.raises(InputError, match=r"hosp/omr.csv.gz: file is empty \(no header line\)"):
        open_source(copy)


def test_not_gzip(demo_dir, tmp_path):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    (copy / "hosp" / "omr.csv.gz").unlink()
    (copy / "hosp" / "omr.csv.gz").write_text("subject_id,chartdate\n")
    with pytest.raises(InputError, match=r"hosp/omr.csv.gz: cannot be read as csv.gz"):
        open_source(copy)


def test_table_file_names_are_case_insensitive(demo, demo_dir, tmp_path):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    (copy / "hosp" / "admissions.csv.gz").rename(copy / "hosp" / "ADMISSIONS.csv.gz")
    assert open_source(copy).scan("admissions").collect().equals(demo.scan("admissions").collect())


def test_optional_module_is_read_when_present(demo_dir, tmp_path):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    (copy / "note").mkdir()
    write_csv_gz(
        copy / "note" / "discharge.csv.gz",
        "note_id,subject_id,hadm_id,note_type,note_seq,charttime,storetime,text\n"
        '10000032-DS-21,10000032,22595853,DS,21,2180-05-07 00:00:00,2180-05-09 15:26:00,"Name: ___\nLine two, with a comma"\n',
    )
    write_csv_gz(
        copy / "note" / "radiology.csv.gz",
        "note_id,subject_id,hadm_id,note_type,note_seq,charttime,storetime,text\n",
    )
    src = open_source(copy)
    assert src.modules == frozenset({"hosp", "icu", "note"})
    assert src.has("discharge") and not src.has("discharge_detail")
    notes = src.scan("discharge").collect()
    assert notes["text"].to_list() == ["Name: ___\nLine two, with a comma"]
    assert src.scan("radiology").collect().height == 0


# ---------------------------------------------------------------- sharding


def test_shard_of_and_shard_expr_agree_and_balance():
    rng = random.Random(7)
    ids = [rng.randrange(10_000_000, 20_000_000) for _ in range(20_000)] + [0, 1, 2**31 - 1]
    for n in (1, 2, 7, 64):
        expected = [shard_of(i, n) for i in ids]
        got = pl.DataFrame({"subject_id": ids}).select(shard_expr(n))["subject_id"].to_list()
        assert got == expected
        assert all(0 <= s < n for s in expected)
    counts = pl.Series([shard_of(i, 16) for i in range(10_000_000, 10_016_000)]).value_counts()["count"]
    assert counts.min() > 800 and counts.max() < 1200  # sequential ids spread evenly
    assert shard_of(10000032, 16) == shard_of(10000032, 16)
    with pytest.raises(ConfigError):
        shard_of(1, 0)


def test_dtypes_table_is_what_the_contract_promises():
    assert DTYPES["int"] == pl.Int64 and DTYPES["str"] == pl.String
    assert DTYPES["datetime"] == pl.Datetime("us") and DTYPES["date"] == pl.Date
