"""`ehr-r1 ehr synth OUT`: the command, registered on the `ehr` sub-app by graphkit/ehr/cli.py."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from graphkit.cli_common import RichProgress, console

OUT_ARGUMENT = typer.Argument(..., help="Folder to write the cohort to (new or empty).", show_default=False)
PATIENTS_OPTION = typer.Option(100, "--patients", "-n", help="Number of synthetic patients.")
SEED_OPTION = typer.Option(0, "--seed", help="Random seed: the same patients and seed give the same files.")
FORMAT_OPTION = typer.Option(
    "csv.gz",
    "--format",
    help="csv.gz (as PhysioNet ships MIMIC-IV) or parquet (typed, smaller, faster to read).",
)
FORCE_OPTION = typer.Option(False, "--force", help="Replace OUT if it holds an earlier synthetic cohort.")


def synth(
    out: Path = OUT_ARGUMENT,
    patients: int = PATIENTS_OPTION,
    seed: int = SEED_OPTION,
    fmt: str = FORMAT_OPTION,
    force: bool = FORCE_OPTION,
) -> None:
    """Write a deterministic synthetic MIMIC-IV cohort (hosp, icu with chartevents, ed, note) drawn from the demo."""
    from graphkit.ehr.schema import load_schema
    from graphkit.ehr.synth import synthesize

    with RichProgress(transient=True) as progress:
        report = synthesize(out, patients=patients, seed=seed, fmt=fmt, force=force, progress=progress)

    modules = {name: spec.module for name, spec in load_schema().tables.items()}
    table = Table(title=f"Synthetic cohort in {report.path}", title_justify="left")
    for column, justify in (("module", "left"), ("table", "left"), ("rows", "right")):
        table.add_column(column, justify=justify)
    for name, rows in report.rows.items():
        table.add_row(modules[name], name, f"{rows:,}")
    console.print(table)
    console.print(
        f"OK: {report.patients:,} synthetic patients (seed {report.seed}), {report.total_rows:,} rows "
        f"in {len(report.rows)} tables, {report.format}, in {report.seconds:.1f} s; "
        f"validate it with `ehr-r1 ehr check {report.path}`",
        highlight=False,
        soft_wrap=True,
    )
