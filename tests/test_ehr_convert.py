"""`ehr-r1 ehr convert`: layout, equality with the raw source, atomic resume after SIGKILL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from graphkit.ehr import source as source_module
from graphkit.ehr.convert import convert, sort_rows
from graphkit.ehr.source import open_source, shard_expr, shard_of
from graphkit.errors import ConfigError, InputError
from tests.ehr_demo_copy import demo_copy, replace_in_table, write_csv_gz

SHARDS = 3
SMALL_BUFFER = 256 << 10  # forces the staged (two-pass) path on the demo's larger tables


@pytest.fixture(scope="module")
def raw(demo_dir):
    return open_source(demo_dir)


@pytest.fixture(scope="module")
def converted(demo_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("converted") / "demo"
    convert(demo_dir, out, n_shards=SHARDS)
    return out


def _tree(root: Path) -> dict[str, pl.DataFrame | dict]:
    """Every file of a conversion: parquet as frames, the manifest as data."""
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = str(path.relative_to(root))
        files[key] = json.loads(path.read_text()) if path.suffix == ".json" else pl.read_parquet(path)
    return files


def _assert_same_tree(left: Path, right: Path) -> None:
    a, b = _tree(left), _tree(right)
    assert sorted(a) == sorted(b)
    for key in a:
        if isinstance(a[key], dict):
            assert a[key] == b[key], key
        else:
            assert a[key].equals(b[key]), key


def test_layout_and_manifest(converted, raw):
    manifest = json.loads((converted / "manifest.json").read_text())
    assert manifest["format"] == "ehr-r1-mimic-parquet" and manifest["n_shards"] == SHARDS
    assert manifest["modules"] == ["hosp", "icu"] and manifest["source"] == str(raw.path)
    assert set(manifest["tables"]) == set(raw.tables)
    labs = manifest["tables"]["labevents"]
    assert labs == {
        "module": "hosp",
        "source_file": "hosp/labevents.csv.gz",
        "complete": True,
        "layout": "sharded",
        "rows": 107727,
        "sorted_by": ["subject_id", "charttime"],
    }
    assert manifest["tables"]["d_items"]["layout"] == "whole"
    assert sorted(p.name for p in (converted / "labevents").iterdir()) == [
        "shard-00000.parquet",
        "shard-00001.parquet",
        "shard-00002.parquet",
    ]
    assert [p.name for p in (converted / "d_labitems").iterdir()] == ["all.parquet"]
    assert not list(converted.rglob(".*"))  # no staging, state or temporary files left


def test_each_shard_is_its_subjects_sorted_by_subject_then_time(converted, raw):
    """Shard k holds exactly the raw rows whose subject hashes to k, stably sorted by the keys."""
    manifest = json.loads((converted / "manifest.json").read_text())
    for table, entry in manifest["tables"].items():
        frame = raw.scan(table).collect()
        if entry["layout"] == "whole":
            assert pl.read_parquet(converted / table / "all.parquet").equals(frame), table
            continue
        for shard in range(SHARDS):
            expected = frame.filter(shard_expr(SHARDS) == shard).sort(
                entry["sorted_by"], nulls_last=True, maintain_order=True
            )
            got = pl.read_parquet(converted / table / f"shard-{shard:05d}.parquet")
            assert got.equals(expected), (table, shard)


def test_open_source_on_the_output_gives_the_raw_data(converted, raw):
    copy = open_source(converted)
    assert copy.kind == "converted" and copy.n_shards == SHARDS
    assert copy.modules == raw.modules and copy.tables == raw.tables
    assert not copy.has("chartevents")
    for table in raw.tables:
        keys = list(raw.spec(table).columns)
        mine = copy.scan(table).collect()
        assert mine.schema == raw.scan(table).collect_schema(), table
        assert mine.sort(keys, nulls_last=True).equals(
            raw.scan(table).collect().sort(keys, nulls_last=True)
        ), table
    one = copy.scan("labevents", columns=["subject_id", "valuenum"], shard=1).collect()
    assert one.columns == ["subject_id", "valuenum"]
    assert one.height > 0 and {shard_of(s, SHARDS) for s in one["subject_id"]} == {1}
    assert copy.scan("d_items", shard=2).collect().height == 4014  # dictionaries are whole


def test_staged_two_pass_path_writes_the_same_files(demo_dir, converted, tmp_path, monkeypatch):
    monkeypatch.setattr(source_module, "BATCH_BYTES", 1 << 20)  # many gzip chunks per table too
    out = tmp_path / "staged"
    convert(demo_dir, out, n_shards=SHARDS, buffer_bytes=SMALL_BUFFER)
    _assert_same_tree(converted, out)


def test_rerun_of_a_complete_conversion_is_a_no_op(demo_dir, converted):
    before = {p: p.stat().st_mtime_ns for p in converted.rglob("*")}
    convert(demo_dir, converted)  # shard count taken from the manifest
    assert {p: p.stat().st_mtime_ns for p in converted.rglob("*")} == before


def test_refuses_other_shard_counts_and_foreign_folders(demo_dir, converted, tmp_path):
    with pytest.raises(
        ConfigError, match=r"already holds a conversion with a different n_shards \(3\).*pass --shards 3"
    ):
        convert(demo_dir, converted, n_shards=5)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("x")
    with pytest.raises(ConfigError, match="is not empty and holds no conversion to resume"):
        convert(demo_dir, busy)


def test_bad_structure_writes_nothing(demo_dir, tmp_path):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    (copy / "hosp" / "omr.csv.gz").unlink()
    with pytest.raises(InputError, match="omr.csv.gz: table file is missing"):
        convert(copy, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_value_names_the_file_and_the_check_command(demo_dir, tmp_path):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    replace_in_table(copy, "hosp/labevents.csv.gz", "2180-03-23 11:51:00", "2180-03-23 11:5l:00")
    with pytest.raises(
        InputError, match=r"hosp/labevents.csv.gz: cannot be read to the end .*fix: run `ehr-r1 ehr check"
    ):
        convert(copy, tmp_path / "out")


def test_gzip_chunks_split_on_records_not_inside_quoted_newlines(demo_dir, tmp_path, monkeypatch):
    """Notes hold newlines, commas and doubled quotes inside quoted fields; tiny chunks must not cut them."""
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    (copy / "note").mkdir()
    rows = ["note_id,subject_id,hadm_id,note_type,note_seq,charttime,storetime,text"]
    for i, (subject, hadm) in enumerate([(10000032, 22595853), (10001217, 24597018)] * 20):
        text = f'"Line {i}\n""quoted"", with comma\n\nend"'
        rows.append(
            f"{subject}-DS-{i},{subject},{hadm},DS,{i},2180-05-07 00:00:{i:02d},2180-05-09 15:26:00.5,{text}"
        )
    write_csv_gz(copy / "note" / "discharge.csv.gz", "\n".join(rows) + "\n")
    write_csv_gz(copy / "note" / "radiology.csv.gz", rows[0] + "\n")
    src = open_source(copy)
    monkeypatch.setattr(source_module, "BATCH_BYTES", 97)  # a chunk boundary falls in most notes
    batches = list(src.batches("discharge"))
    assert len(batches) > 10
    got = pl.concat(batches)
    assert got.equals(src.scan("discharge").collect()) and got.height == 40
    assert got["text"][0] == 'Line 0\n"quoted", with comma\n\nend'
    assert got["storetime"][0].microsecond == 500000  # the fractional-seconds fallback parse
    monkeypatch.undo()
    out = tmp_path / "out"
    convert(copy, out, n_shards=2)
    assert open_source(out).scan("discharge").collect().sort("note_seq").equals(got.sort("note_seq"))
    assert open_source(out).scan("radiology").collect().height == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sort_rows_matches_a_stable_two_column_sort(seed):
    rng = random.Random(seed)
    n = 2000
    base = datetime(2150, 1, 1)
    subjects = [rng.choice([10000032, 10000033, 19999999, 7]) for _ in range(n)]
    times = [None if rng.random() < 0.1 else base + timedelta(hours=rng.randrange(50)) for _ in range(n)]
    frame = pl.DataFrame({"subject_id": subjects, "t": times, "row": range(n)})
    expected = frame.sort(["subject_id", "t"], nulls_last=True, maintain_order=True)
    assert sort_rows(frame, "subject_id", "t").equals(expected)  # packed-key path
    assert sort_rows(expected, "subject_id", "t").equals(expected)  # already sorted
    odd = frame.with_columns(
        pl.when(pl.col("row") == 5)
        .then(pl.lit(datetime(2150, 1, 1, 0, 0, 0, 1)))
        .otherwise(pl.col("t"))
        .alias("t")
    )
    assert sort_rows(odd, "subject_id", "t").equals(
        odd.sort(["subject_id", "t"], nulls_last=True, maintain_order=True)
    )
    early = frame.with_columns(
        pl.when(pl.col("row") == 9).then(pl.lit(datetime(1901, 1, 1))).otherwise("t").alias("t")
    )
    assert sort_rows(early, "subject_id", "t").equals(
        early.sort(["subject_id", "t"], nulls_last=True, maintain_order=True)
    )
    days = frame.with_columns(pl.col("t").dt.date())
    assert sort_rows(days, "subject_id", "t").equals(
        days.sort(["subject_id", "t"], nulls_last=True, maintain_order=True)
    )
    only = frame.drop("t")
    assert sort_rows(only, "subject_id").equals(only.sort("subject_id", maintain_order=True))


def test_last_record_end():
    cut = source_module._last_record_end
    assert cut(b"a,b\n1,2\n3,") == 8
    assert cut(b'1,"x\ny"\n2,"p\nq') == 8  # the last newline is inside an open quote
    assert cut(b'1,"a ""b""\n c"\n') == 15
    assert cut(b'1,"open\nstill open') == 0
    assert cut(b'still quoted\n" end\n2,x', odd_quotes=True) == 19  # started inside a quoted field


def test_cli_convert_default_out_in_workspace(cli, demo_dir, workspace_dir):
    result = cli("ehr", "convert", demo_dir, "--shards", "2")
    assert result.exit_code == 0, result.output
    out = workspace_dir / "mimic" / "mimic-iv-demo"
    assert (out / "manifest.json").exists()
    assert "labevents" in result.output and "107,727" in result.output and "2 shards" in result.output
    assert "OK: 729,638 rows in 30 tables" in result.output
    bad = cli("ehr", "convert", demo_dir, "--shards", "0")
    assert bad.exit_code == 2 and "--shards: is out of range" in bad.output


# ---------------------------------------------------------------- SIGKILL and resume

_CHILD = textwrap.dedent(
    """
    import sys
    from graphkit.ehr.convert import convert, sort_rows

    class Announce:
        # prints one line per step so the parent can kill at a chosen moment
        def start(self, description, total=None):
            return 0
        def advance(self, handle, amount=1):
            print("step", flush=True)
        def finish(self, handle):
            pass

    convert(sys.argv[1], sys.argv[2], n_shards=int(sys.argv[3]), buffer_bytes=int(sys.argv[4]), progress=Announce())
    print("done", flush=True)
    """
)


@pytest.fixture(scope="module")
def uninterrupted(demo_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "out"
    convert(demo_dir, out, n_shards=SHARDS, buffer_bytes=SMALL_BUFFER)
    return out


@pytest.mark.parametrize("kill_after", [1, 12, 40])
def test_sigkill_mid_conversion_then_resume_gives_the_same_result(
    demo_dir, uninterrupted, tmp_path, kill_after
):
    out = tmp_path / "out"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(demo_dir), str(out), str(SHARDS), str(SMALL_BUFFER)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    steps = 0
    for line in child.stdout:
        steps += line.startswith("step")
        if steps >= kill_after:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert (out / ".convert-state.json").exists() and not (out / "manifest.json").exists(), "killed too late"
    with pytest.raises(InputError, match="is an unfinished conversion"):
        open_source(out)

    convert(demo_dir, out)  # the same command again: shard count from the saved state
    _assert_same_tree(uninterrupted, out)
