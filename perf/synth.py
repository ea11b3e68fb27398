"""`ehr-r1 ehr synth`: writing synthetic cohorts of 1k and 10k patients (csv.gz and parquet).

    python -m perf.synth --cpus 2          # 1k and 10k patients, csv.gz and parquet
    python -m perf.synth --quick           # 200 patients: a smoke run

Each case writes a fresh cohort (seed 0) into perf/_scratch/synth/ and keeps it for inspection.
The time includes building the demo profile (a few seconds, once per process). Targets (2 cores):
10k patients in a few minutes (<= 300 s) within a few GiB (peak RSS <= 4 GiB), memory not growing
with the cohort (patients are made 250 at a time). There is no peer: no other open tool writes a
MIMIC-IV cohort with ED, note and chartevents.
"""

from __future__ import annotations

import shutil
import time

from perf.harness import REPO, Case, main_for

SUITE = "synth"
SCRATCH = REPO / "perf" / "_scratch" / "synth"


def run_synth(patients: int, fmt: str = "csv.gz") -> dict:
    from graphkit.ehr.synth import synthesize

    out = SCRATCH / f"synth-{patients}-{fmt.replace('.', '')}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    report = synthesize(out, patients=patients, seed=0, fmt=fmt)
    seconds = time.perf_counter() - started
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    return {
        "rows": report.total_rows,
        "rows_per_s": report.total_rows / seconds,
        "patients_per_s": patients / seconds,
        "chartevents_rows": report.rows["chartevents"],
        "labevents_rows": report.rows["labevents"],
        "size_mb": size / 2**20,
    }


def cases(quick: bool = False) -> list[Case]:
    if quick:
        return [Case("synth-200", "perf.synth:run_synth", {"patients": 200})]
    rss = {"peak_rss_mb": "<= 4096"}
    return [
        Case("synth-1k", "perf.synth:run_synth", {"patients": 1000}, targets=rss),
        Case("synth-10k", "perf.synth:run_synth", {"patients": 10000}, targets={"wall_s": "<= 300", **rss}),
        Case("synth-1k-parquet", "perf.synth:run_synth", {"patients": 1000, "fmt": "parquet"}, targets=rss),
        Case(
            "synth-10k-parquet",
            "perf.synth:run_synth",
            {"patients": 10000, "fmt": "parquet"},
            targets={"wall_s": "<= 300", **rss},
        ),
    ]


if __name__ == "__main__":
    main_for(__name__)
