"""`ehr-r1 ehr ...`: check, convert, show and synthesize MIMIC-IV data."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from rich.table import Table

from graphkit.cli_common import RichProgress, console, err_console, workspace

app = typer.Typer(help="Check, convert, show and synthesize MIMIC-IV data.", no_args_is_help=True)

SOURCE_ARGUMENT = typer.Argument(
    ...,
    help="A MIMIC-IV folder (hosp/, icu/, optional ed/ and note/; .csv, .csv.gz or .parquet) or an `ehr convert` output.",
    show_default=False,
)


# ---------------------------------------------------------------- check


@app.command("check")
def check_command(path: Path = SOURCE_ARGUMENT) -> None:
    """Validate every table against the MIMIC-IV schema; print row counts and the tasks the data enables."""
    from graphkit.ehr.check import check

    with RichProgress(transient=True) as progress:
        report = check(path, progress=progress)

    tables = Table(title=f"MIMIC-IV tables in {report.path}", title_justify="left")
    for column, justify in (
        ("module", "left"),
        ("table", "left"),
        ("file", "left"),
        ("rows", "right"),
        ("no time", "right"),
    ):
        tables.add_column(column, justify=justify)
    for row in report.tables:
        untimed = "" if row.untimed_rows is None else f"{row.untimed_rows:,}"
        tables.add_row(row.module, row.table, row.file, f"{row.rows:,}", untimed)
    console.print(tables)

    tasks = Table(title="EHR-Bench tasks", title_justify="left")
    for column in ("family", "status", "tasks", "reason"):
        tasks.add_column(column)
    for family, enabled, reason, keys in _task_groups(report):
        tasks.add_row(family, "enabled" if enabled else "[red]disabled[/red]", ", ".join(keys), reason)
    console.print(tasks)

    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    console.print(
        f"OK: {len(report.tables)} tables, {report.total_rows:,} rows valid "
        f"(modules: {', '.join(sorted(report.modules))}) in {report.seconds:.1f} s; "
        f"{len(report.enabled())} of {len(report.tasks)} tasks enabled",
        highlight=False,
        soft_wrap=True,
    )


def _task_groups(report) -> list[tuple[str, bool, str, list[str]]]:
    """Tasks grouped by family, status and the reason, so 45 tasks fit in a few rows."""
    groups: dict[tuple[str, bool, str], list[str]] = {}
    for status in report.tasks:
        if status.enabled:
            reason = ""
            if status.uses:
                reason = "reads " + ", ".join(status.uses)
            elif status.task.optional:
                reason = f"no {', '.join(status.task.optional)}: uses structured data"
        else:
            reason = "needs " + ", ".join(status.missing)
        groups.setdefault((status.task.family, status.enabled, reason), []).append(status.task.key)
    return [(family, enabled, reason, keys) for (family, enabled, reason), keys in groups.items()]


# ---------------------------------------------------------------- convert


OUT_OPTION = typer.Option(
    None, "--out", help="Output folder. Default: <workspace>/mimic/<name of PATH>.", show_default=False
)
SHARDS_OPTION = typer.Option(
    None,
    "--shards",
    help="Number of patient shards. Default: about 5,000 patients a shard, more when a shard of the largest table would not fit in ~384 MB.",
    show_default=False,
)
BUFFER_OPTION = typer.Option(
    256, "--buffer-mb", help="Rows held per table before staging to disk (peak memory is a few times this)."
)


@app.command("convert")
def convert_command(
    ctx: typer.Context,
    path: Path = SOURCE_ARGUMENT,
    out: Path = OUT_OPTION,
    shards: int = SHARDS_OPTION,
    buffer_mb: int = BUFFER_OPTION,
) -> None:
    """Write a parquet copy sharded by patient for fast per-patient reads; resumes after a kill."""
    from graphkit.ehr.convert import convert
    from graphkit.errors import ConfigError

    if buffer_mb < 1:
        raise ConfigError(
            "must be at least 1", where="--buffer-mb", value=buffer_mb, fix="pass a size in MiB"
        )
    target = out if out is not None else workspace(ctx).mimic / _dataset_name(path)
    with RichProgress(transient=True) as progress:
        manifest = convert(path, target, n_shards=shards, progress=progress, buffer_bytes=buffer_mb << 20)

    table = Table(title=f"Converted into {target}", title_justify="left")
    for column, justify in (("table", "left"), ("layout", "left"), ("rows", "right")):
        table.add_column(column, justify=justify)
    for name, entry in manifest["tables"].items():
        layout = "whole" if entry["layout"] == "whole" else f"{manifest['n_shards']} shards"
        table.add_row(name, layout, f"{entry['rows']:,}")
    console.print(table)
    total = sum(entry["rows"] for entry in manifest["tables"].values())
    console.print(
        f"OK: {total:,} rows in {len(manifest['tables'])} tables; open it with `ehr-r1 ehr check {target}`",
        highlight=False,
        soft_wrap=True,
    )


def _dataset_name(path: Path) -> str:
    """`.../mimiciv/3.1` -> `mimiciv-3.1`; `.../mimic-iv-demo` -> `mimic-iv-demo`."""
    resolved = path.expanduser().resolve()
    if re.fullmatch(r"[\d.]+", resolved.name) and resolved.parent.name:
        return f"{resolved.parent.name}-{resolved.name}"
    return resolved.name


# ---------------------------------------------------------------- show (records: graphkit/ehr/cli_show.py)
from graphkit.ehr.cli_show import show as show_command  # noqa: E402

app.command("show")(show_command)

# ---------------------------------------------------------------- synth (synth: graphkit/ehr/synth/cli.py)
from graphkit.ehr.synth.cli import synth as synth_command  # noqa: E402

app.command("synth")(synth_command)
