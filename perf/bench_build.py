"""`ehr-r1 bench build`: every task, serialization included, on the MIMIC-IV demo and synthetic cohorts.

    python -m perf.bench_build --cpus 2       # demo (every sample), 1k and 10k synthetic (--per-task 1000)
    python -m perf.bench_build --quick        # demo and 200 synthetic patients: a smoke run

Synthetic cohorts (`ehr-r1 ehr synth`, seed 0, parquet; hosp, icu with chartevents, ed, note) are
converted into shards of about 450 patients (`ehr-r1 ehr convert --shards N`) into
perf/_scratch/bench_build/ and reused; making them is a set-up, not measured. The build runs in one
job (units of 500 subjects, one after another), default style and 8k-token budget.

Targets (2 cores): the demo in <= 20 s; 10k patients in <= 600 s within 6 GiB peak RSS, the work
growing linearly with the cohort (`unit_cpu_s_per_1k_patients` about equal for 1k and 10k). Peer:
the reference code (MAGIC-AI4Med/EHR-R1: task_sample_info_gen.py, then data_index_gen.py and
mimiciv.py) needs about 6 minutes for the demo (issue 5); it cannot run here (it needs its own
preprocessed per-patient files), so it has no case. The machine is shared while developing: the
load average is recorded with every number.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from perf.harness import REPO, Case, main_for

SUITE = "bench_build"
SCRATCH = REPO / "perf" / "_scratch" / "bench_build"
DEMO = REPO / "graphkit" / "data" / "mimic-iv-demo"
PATIENTS_PER_SHARD = 450  # hashed shards vary by a few percent: each stays one unit of <= 500 subjects


def cohort_path(patients: int) -> Path:
    return SCRATCH / f"synth-{patients}"


def converted_path(patients: int) -> Path:
    return SCRATCH / f"converted-{patients}"


def make_converted(patients: int, seed: int = 0) -> dict:
    from graphkit.ehr.convert import convert
    from graphkit.ehr.synth import MARKER, synthesize

    cohort = cohort_path(patients)
    marker = cohort / MARKER
    fresh = not (marker.exists() and json.loads(marker.read_text()).get("patients") == patients)
    if fresh:
        synthesize(cohort, patients=patients, seed=seed, fmt="parquet", force=cohort.exists())
    out = converted_path(patients)
    shards = max(1, -(-patients // PATIENTS_PER_SHARD))
    manifest = out / "manifest.json"
    if fresh or not manifest.exists() or json.loads(manifest.read_text()).get("n_shards") != shards:
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        convert(cohort, out, n_shards=shards)
        return {"convert_s": time.perf_counter() - started}
    return {"reused": True}


def run_build(patients: int | None, per_task: int | None = None) -> dict:
    from bench.builder import BuildConfig, build

    source = DEMO if patients is None else converted_path(patients)
    out = SCRATCH / f"out-{patients or 'demo'}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = build(source, out, BuildConfig(per_task=per_task))
    seconds = time.perf_counter() - started
    card = result.card
    markers = [json.loads(p.read_text()) for p in sorted((out / "parts").glob("*/done.json"))]
    phases: dict[str, float] = {}
    for marker in markers:
        for name, spent in marker["phases"].items():
            phases[name] = phases.get(name, 0.0) + spent["cpu"]
    unit_cpu = sum(phases.values())
    metrics = {
        "samples": card["totals"]["samples"],
        "samples_per_s": card["totals"]["samples"] / seconds,
        "tasks": len(card["tasks"]),
        "units": card["units"],
        "subjects": card["subjects"],
        "events": card["events"],
        "unit_cpu_s": round(unit_cpu, 1),
        "unit_cpu_s_per_1k_patients": round(unit_cpu / card["subjects"] * 1000, 1),
        **{f"cpu_{name}_s": round(value, 1) for name, value in sorted(phases.items())},
        "data_mb": round(sum(p.stat().st_size for p in (out / "data").rglob("*") if p.is_file()) / 2**20, 1),
    }
    shutil.rmtree(out / "parts", ignore_errors=True)
    return metrics


def cases(quick: bool = False) -> list[Case]:
    demo = Case(
        "build-demo",
        "perf.bench_build:run_build",
        {"patients": None},
        targets={"wall_s": "<= 20"},
        note="every task the demo supports, every sample (no cap)",
    )
    sizes = [200] if quick else [1000, 10000]
    result = [demo]
    for n in sizes:
        tag = f"{n // 1000}k" if n >= 1000 else str(n)
        targets = {"peak_rss_mb": "<= 6144"}
        if n == 10000:
            targets["wall_s"] = "<= 600"
        result.append(
            Case(
                f"build-{tag}",
                "perf.bench_build:run_build",
                {"patients": n, "per_task": 1000},
                setup="perf.bench_build:make_converted",
                setup_params={"patients": n},
                targets=targets,
                note="every task, --per-task 1000 (per split), units of 500 subjects",
            )
        )
    return result


if __name__ == "__main__":
    main_for(__name__)
