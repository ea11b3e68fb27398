"""A deterministic synthetic MIMIC-IV cohort (hosp, icu with chartevents, ed, note).

``synthesize(out, patients=N, seed=S)`` writes a folder in PhysioNet's layout that passes
``ehr-r1 ehr check``: the demo's dictionaries unchanged; admission shapes, event groups, item
frequencies and values resampled from the MIMIC-IV demo (graphkit.ehr.synth.profile); ED and note
content invented from templates (the demo has neither). Same N and seed, same bytes.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from graphkit import __version__
from graphkit.atomic import atomic_dir
from graphkit.errors import ConfigError
from graphkit.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

MARKER = "synth.json"
FORMATS = ("csv.gz", "parquet")
# keeps every id range of the cohort apart (1 M patients are about 11 billion rows anyway)
MAX_PATIENTS = 1_000_000


@dataclass
class SynthReport:
    path: Path
    patients: int
    seed: int
    format: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def check_target(out: Path, force: bool) -> None:
    """Refuse to write over anything but an empty folder or, with force, an earlier cohort."""
    if out.exists() and not out.is_dir():
        raise ConfigError("exists and is a file", where=str(out), fix="choose a folder path for the cohort")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ConfigError(
                "exists and is not empty",
                where=str(out),
                fix="choose a new or empty folder, or pass --force to replace an earlier synthetic cohort",
            )
        if not (out / MARKER).is_file():
            raise ConfigError(
                f"is not a synthetic cohort written by ehr-r1 (no {MARKER}); --force only replaces those",
                where=str(out),
                fix="choose a new or empty folder",
            )


def synthesize(
    out: str | Path,
    patients: int,
    seed: int = 0,
    fmt: str = "csv.gz",
    force: bool = False,
    progress: Progress | None = None,
) -> SynthReport:
    """Write a synthetic cohort of ``patients`` patients to ``out`` (atomically)."""
    if isinstance(patients, bool) or not isinstance(patients, int) or not 1 <= patients <= MAX_PATIENTS:
        raise ConfigError(
            f"must be a whole number from 1 to {MAX_PATIENTS:,}",
            where="--patients",
            value=patients,
            fix="pass e.g. --patients 100 (10,000 patients are about 108 M rows)",
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError("must be a whole number >= 0", where="--seed", value=seed, fix="pass e.g. --seed 0")
    if fmt not in FORMATS:
        raise ConfigError(
            "is not a supported format", where="--format", value=fmt, fix=f"use one of: {', '.join(FORMATS)}"
        )
    out = Path(out).expanduser()
    check_target(out, force)

    from graphkit.ehr.synth.cohort import CHUNK_PATIENTS, generate_chunk, new_counters
    from graphkit.ehr.synth.profile import DICTIONARY_TABLES, load_profile
    from graphkit.ehr.synth.writer import CohortWriter, copy_dictionary

    progress = progress or NULL_PROGRESS
    started = time.perf_counter()
    profile = load_profile()
    schema = profile.schema
    patient_tables = [name for name, spec in schema.tables.items() if not spec.is_dictionary]
    report = SynthReport(path=out.resolve(), patients=patients, seed=seed, format=fmt)

    with atomic_dir(out) as tmp:
        writer = CohortWriter(tmp, schema, fmt)
        try:
            writer.start(patient_tables)
            counters = new_counters()
            handle = progress.start(f"synthesizing {patients:,} patients", total=patients)
            for index, first in enumerate(range(0, patients, CHUNK_PATIENTS)):
                count = min(CHUNK_PATIENTS, patients - first)
                writer.write(generate_chunk(profile, seed, index, first, count, counters))
                progress.advance(handle, count)
                log.info("synth: %d/%d patients", first + count, patients)
            progress.finish(handle)
            writer.finish(progress)
        except BaseException:
            writer.abort()
            raise
        report.rows.update(writer.rows)

        from graphkit.ehr.source import open_source

        demo = open_source(profile.demo_dir, schema)
        for name in DICTIONARY_TABLES:
            spec = schema.table(name)
            report.rows[name] = copy_dictionary(
                demo.file(name).path,
                spec,
                lambda name=name: demo.scan(name).collect(),
                tmp / spec.module / f"{name}.{fmt}",
                fmt,
            )
        shutil.copyfile(profile.demo_dir / "LICENSE.txt", tmp / "LICENSE.txt")
        report.rows = {name: report.rows[name] for name in schema.tables if name in report.rows}
        (tmp / MARKER).write_text(_marker(report), encoding="utf-8")
    report.seconds = time.perf_counter() - started
    log.info("synth: wrote %s rows in %.1f s to %s", f"{report.total_rows:,}", report.seconds, out)
    return report


def _marker(report: SynthReport) -> str:
    from graphkit.ehr.synth.cohort import CHUNK_PATIENTS

    body = {
        "generator": "ehr-r1 ehr synth",
        "version": __version__,
        "synthetic": True,
        "note": (
            "Synthetic patients. Dictionaries (d_*, provider, caregiver) are the MIMIC-IV demo's; "
            "admission shapes, event groups and values are resampled from the MIMIC-IV Clinical "
            "Database Demo 2.2 (ODbL 1.0, see LICENSE.txt); ED and note content is invented from templates."
        ),
        "patients": report.patients,
        "seed": report.seed,
        "format": report.format,
        "chunk_patients": CHUNK_PATIENTS,
        "rows": report.rows,
    }
    return json.dumps(body, indent=2, sort_keys=False) + "\n"
