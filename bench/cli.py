"""`ehr-r1 bench ...`: EHR-Bench task definitions and target mappings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from graphkit.cli_common import console, err_console

app = typer.Typer(help="EHR-Bench: task definitions, target mappings.", no_args_is_help=True)


@app.command("list")
def list_tasks(
    family: str = typer.Option(None, "--family", help="Only this family: decision or risk."),
    reported: bool = typer.Option(False, "--reported", help="Only the tasks the EHR-R1 paper reports."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the bundled EHR-Bench tasks (key, family, output, metric, modules, reported in paper)."""
    from bench.taskdef import load_tasks

    tasks = load_tasks(family=family, reported_only=reported)
    if as_json:
        rows = [
            {
                "key": t.key,
                "family": t.family,
                "version": t.version,
                "output_type": t.output_type,
                "metric": t.metric,
                "modules": list(t.requires.modules),
                "reported_in_paper": t.paper.reported,
                "paper_name": t.paper.name,
            }
            for t in tasks.values()
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"EHR-Bench tasks ({len(tasks)})")
    for column in ("key", "family", "output", "metric", "modules", "paper"):
        table.add_column(column)
    for t in sorted(tasks.values(), key=lambda t: (t.family, t.key)):
        table.add_row(
            t.key,
            t.family,
            t.output_type,
            t.metric,
            ",".join(t.requires.modules),
            "reported" if t.paper.reported else "not reported",
        )
    console.print(table)


@app.command("validate")
def validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Task YAML files or folders (default: the bundled tasks).")
    ] = None,
) -> None:
    """Check task YAML files; every problem is printed as file: key: problem; fix: ..."""
    from bench.taskdef import validate_paths

    tasks, problems = validate_paths(paths or None)
    for problem in problems:
        err_console.print(f"error: {problem.one_line()}", markup=False, highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(2)
    typer.echo(f"{len(tasks)} task(s) valid")


@app.command("mappings")
def mappings(
    mimic: Annotated[
        Path,
        typer.Option(
            "--mimic", help="A MIMIC-IV directory (PhysioNet layout or `ehr-r1 ehr convert` output)."
        ),
    ],
    atc: Annotated[
        Path | None,
        typer.Option("--atc", help="An NDC->ATC table (ndc, atc_code, atc_name) to measure as well."),
    ] = None,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Report how many diagnosis/procedure codes and NDCs the CCS and ATC mappings leave unmapped."""
    from bench.mappings import load_atc, unmapped_rates
    from graphkit.ehr.source import open_source

    rows = unmapped_rates(open_source(mimic), load_atc(atc) if atc else None)
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    table = Table(title="Unmapped codes")
    for column in ("mapping", "table", "coded rows", "unmapped rows", "codes", "unmapped codes", "note"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.mapping,
            r.table,
            str(r.rows - r.rows_without_code),
            f"{r.rows_unmapped} ({r.row_rate:.2%})",
            str(r.codes),
            f"{r.codes_unmapped} ({r.code_rate:.2%})",
            r.note,
        )
    console.print(table)


@app.command("atc-from-umls")
def atc_from_umls(
    meta: Annotated[
        Path, typer.Argument(help="The META/ folder of a licensed UMLS release (MRCONSO, MRREL, MRSAT).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the NDC->ATC table (.tsv or .tsv.gz).")],
    level: int = typer.Option(4, "--level", help="ATC level of the classes: 1-5 (4 = chemical subgroup)."),
) -> None:
    """Build the NDC->ATC table for the ATC tasks from RxNorm inside a licensed UMLS release."""
    from bench.mappings import build_atc_from_umls

    stats = build_atc_from_umls(meta, out, level=level)
    typer.echo(
        f"{stats.ndcs_mapped}/{stats.ndcs} NDCs mapped to {stats.classes} ATC level-{stats.level} classes -> {stats.path}"
    )


from bench.eval_cli import register as _register_eval  # noqa: E402 (eval, baseline, report)

_register_eval(app)

from bench.build_cli import register as _register_build  # noqa: E402 (build)

_register_build(app)
