"""Builds shared by the `bench build` test modules: made once per test process, removed at exit.

- ``demo_build()``: every task the MIMIC-IV demo supports, at most ``CAP`` samples per task and split.
- ``synth_cohort()``: a small synthetic cohort (``ehr-r1 ehr synth``: hosp, icu with chartevents, ed,
  note), the only way to exercise the ED, radiology, chartevents and note-anchored tasks.
- ``synth_build()``: every task on it (units of 12 subjects, so the merge of units is exercised).
- ``read_build(path)``: every split file of a build as one frame per task.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import polars as pl

DEMO_DIR = Path(__file__).resolve().parents[1] / "graphkit" / "data" / "mimic-iv-demo"
CAP = 150
SYNTH_PATIENTS = 36
SYNTH_SEED = 5


@functools.cache
def scratch() -> Path:
    path = Path(tempfile.mkdtemp(prefix="ehr-r1-bench-build-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def demo_build() -> Path:
    from bench.builder import BuildConfig, build

    out = scratch() / "demo"
    build(DEMO_DIR, out, BuildConfig(per_task=CAP))
    return out


@functools.cache
def synth_cohort() -> Path:
    from graphkit.ehr.synth import synthesize

    out = scratch() / "synth"
    synthesize(out, patients=SYNTH_PATIENTS, seed=SYNTH_SEED, fmt="parquet")
    return out


@functools.cache
def synth_build() -> Path:
    from bench.builder import BuildConfig, build

    out = scratch() / "synth-build"
    build(synth_cohort(), out, BuildConfig(per_task=CAP, subjects_per_unit=12))
    return out


def read_build(path: Path) -> dict[str, pl.DataFrame]:
    frames = {}
    for folder in sorted((path / "data").iterdir()):
        parts = [pl.read_parquet(p) for p in sorted(folder.glob("*.parquet"))]
        frames[folder.name] = pl.concat(parts, how="vertical")
    return frames
