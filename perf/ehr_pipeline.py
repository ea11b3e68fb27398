"""check + convert + serialize-all-admissions on synthetic cohorts of 1k and 10k patients (and the demo).

    python -m perf.ehr_pipeline            # demo, 1k and 10k patients (the 10k cohort: ~1.4 GB)
    python -m perf.ehr_pipeline --quick    # demo and 200 patients: a smoke run
    python -m perf.ehr_pipeline --only convert-1k polars-sink-1k

Cohorts are made once by `ehr-r1 ehr synth` (seed 0, csv.gz as PhysioNet ships) into
perf/_scratch/ehr_pipeline/ and reused; making them is a set-up, not measured. Targets (2 cores):
convert >= 1M event rows/s; serialize >= 300 records/s at an 8k-token budget; peak RSS <= 4 GiB at
10k patients, growing less than linearly with the cohort. `polars-sink-*` is the peer: plain
polars reading the same files into one unsorted parquet per table, no validation, no shards, the
floor of what reading .csv.gz costs here.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from perf.harness import REPO, Case, main_for

SUITE = "ehr_pipeline"
SCRATCH = REPO / "perf" / "_scratch" / "ehr_pipeline"
DEMO = REPO / "graphkit" / "data" / "mimic-iv-demo"
BUDGET = 8192


def cohort_path(patients: int) -> Path:
    return SCRATCH / f"synth-{patients}"


def converted_path(patients: int | None) -> Path:
    return SCRATCH / ("converted-demo" if patients is None else f"converted-{patients}")


def _source(patients: int | None) -> Path:
    return DEMO if patients is None else cohort_path(patients)


# ---------------------------------------------------------------- set-ups (not measured)


def make_cohort(patients: int, seed: int = 0) -> dict:
    from graphkit.ehr.synth import MARKER, synthesize

    out = cohort_path(patients)
    marker = out / MARKER
    if marker.exists():
        recorded = json.loads(marker.read_text())
        if recorded.get("patients") == patients and recorded.get("seed") == seed:
            return {"reused": True}
    started = time.perf_counter()
    report = synthesize(out, patients=patients, seed=seed, force=out.exists())
    return {"reused": False, "rows": report.total_rows, "seconds": time.perf_counter() - started}


def make_converted(patients: int | None) -> dict:
    from graphkit.ehr.convert import convert

    if patients is not None:
        make_cohort(patients)
    out = converted_path(patients)
    if not (out / "manifest.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        convert(_source(patients), out)
    return {}


# ---------------------------------------------------------------- measured functions


def run_check(patients: int | None) -> dict:
    from graphkit.ehr.check import check

    started = time.perf_counter()
    report = check(_source(patients))
    seconds = time.perf_counter() - started
    return {
        "tables": len(report.tables),
        "rows": report.total_rows,
        "rows_per_s": report.total_rows / seconds,
        "tasks_enabled": len(report.enabled()),
    }


def run_convert(patients: int | None) -> dict:
    from graphkit.ehr.convert import convert

    out = converted_path(patients)
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    manifest = convert(_source(patients), out)
    seconds = time.perf_counter() - started
    events = sum(t["rows"] for t in manifest["tables"].values() if t["layout"] == "sharded")
    total = sum(t["rows"] for t in manifest["tables"].values())
    return {
        "event_rows": events,
        "rows": total,
        "event_rows_per_s": events / seconds,
        "shards": manifest["n_shards"],
    }


def run_polars_sink(patients: int | None) -> dict:
    """The peer: plain polars, each table's file to one parquet, no checks, no shards, no sort."""
    import polars as pl

    from graphkit.ehr.source import open_source

    source = open_source(_source(patients))
    out = SCRATCH / f"polars-sink-{patients or 'demo'}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.perf_counter()
    rows = 0
    for table in source.tables:
        path = source.file(table).path
        frame = (
            pl.scan_parquet(path)
            if path.suffix == ".parquet"
            else pl.scan_csv(path, infer_schema_length=10000)
        )
        frame.sink_parquet(out / f"{table}.parquet")
        if not source.spec(table).is_dictionary:
            rows += pl.scan_parquet(out / f"{table}.parquet").select(pl.len()).collect().item()
    seconds = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return {"event_rows": rows, "event_rows_per_s": rows / seconds}


def run_serialize(patients: int | None, max_tokens: int = BUDGET, style: str = "clean") -> dict:
    """Every admission of the cohort as one record (its whole stay), shard by shard."""
    import polars as pl

    from graphkit.ehr.serialize import Serializer
    from graphkit.ehr.source import open_source
    from graphkit.ehr.timeline import iter_timelines, load_lookups

    source = open_source(converted_path(patients))
    started = time.perf_counter()
    lookups = load_lookups(source)
    records = tokens = truncated = events = 0
    for timeline in iter_timelines(source, definition="clean", lookups=lookups):
        windows = timeline.admissions.select("subject_id", "hadm_id")
        out = Serializer(timeline, style=style).serialize_many(windows, max_tokens=max_tokens)
        records += out.height
        tokens += int(out["n_tokens"].sum() or 0)
        truncated += int(out["truncated"].sum() or 0)
        events += int(timeline.events.height)
        del timeline, out
    seconds = time.perf_counter() - started
    return {
        "records": records,
        "records_per_s": records / seconds,
        "mean_tokens": tokens / max(records, 1),
        "truncated_share": truncated / max(records, 1),
        "events": events,
        "shards": source.n_shards,
        "polars": pl.__version__,
    }


# ---------------------------------------------------------------- the suite


def cases(quick: bool = False) -> list[Case]:
    sizes = [200] if quick else [1000, 10000]
    result = [
        Case("check-demo", "perf.ehr_pipeline:run_check", {"patients": None}),
        Case("convert-demo", "perf.ehr_pipeline:run_convert", {"patients": None}),
        Case(
            "serialize-demo",
            "perf.ehr_pipeline:run_serialize",
            {"patients": None},
            setup="perf.ehr_pipeline:make_converted",
            setup_params={"patients": None},
            targets={"records_per_s": ">= 300"},
        ),
    ]
    for n in sizes:
        tag = f"{n // 1000}k" if n >= 1000 else str(n)
        cohort = {"setup": "perf.ehr_pipeline:make_cohort", "setup_params": {"patients": n}}
        rss = {"peak_rss_mb": "<= 4096"}
        result += [
            Case(f"check-{tag}", "perf.ehr_pipeline:run_check", {"patients": n}, targets=rss, **cohort),
            Case(
                f"convert-{tag}",
                "perf.ehr_pipeline:run_convert",
                {"patients": n},
                targets={"event_rows_per_s": ">= 1000000", **rss},
                **cohort,
            ),
            Case(
                f"polars-sink-{tag}",
                "perf.ehr_pipeline:run_polars_sink",
                {"patients": n},
                peer_of=f"convert-{tag}",
                **cohort,
            ),
            Case(
                f"serialize-{tag}",
                "perf.ehr_pipeline:run_serialize",
                {"patients": n},
                setup="perf.ehr_pipeline:make_converted",
                setup_params={"patients": n},
                targets={"records_per_s": ">= 300", **rss},
            ),
        ]
    return result


if __name__ == "__main__":
    main_for(__name__)
