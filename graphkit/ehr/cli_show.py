"""`ehr-r1 ehr show`: print one patient's record (registered on graphkit/ehr/cli.py's app)."""

from __future__ import annotations

from pathlib import Path

import typer

from graphkit.cli_common import err_console
from graphkit.errors import ConfigError

PATH_ARGUMENT = typer.Argument(
    ..., help="A MIMIC-IV folder (hosp/ icu/ [ed/] [note/]) or an `ehr convert` output.", show_default=False
)


def show(
    path: Path = PATH_ARGUMENT,
    subject: int = typer.Option(..., "--subject", help="subject_id of the patient."),
    hadm: int = typer.Option(None, "--hadm", help="hadm_id: only this admission (with its header)."),
    since: str = typer.Option(
        None, "--since", help="Only events at or after this time (YYYY-MM-DD[ HH:MM:SS])."
    ),
    until: str = typer.Option(None, "--until", help="Only events before this time (YYYY-MM-DD[ HH:MM:SS])."),
    style: str = typer.Option(
        "clean", "--style", help="clean (default) or ehr-r1 (the reference's exact text)."
    ),
    max_tokens: int = typer.Option(
        None, "--max-tokens", help="Keep the latest events that fit this many tokens."
    ),
) -> None:
    """Print a patient's record as the serializer writes it for models (markdown, one block per event)."""
    from graphkit.ehr.serialize import check_style, parse_time, show_record
    from graphkit.ehr.source import open_source

    check_style(style, "--style")
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError(
            "must be a positive number of tokens",
            where="--max-tokens",
            value=max_tokens,
            fix="pass a budget such as 8192, or leave it out",
        )
    source = open_source(path)
    record = show_record(
        source,
        subject,
        hadm_id=hadm,
        since=parse_time(since, "--since") if since else None,
        until=parse_time(until, "--until") if until else None,
        style=style,
        max_tokens=max_tokens,
    )
    typer.echo(record.text)
    summary = f"{record.n_events} events, ~{record.n_tokens} tokens"
    if record.n_events_dropped:
        summary += f", {record.n_events_dropped} older events left out to fit {max_tokens} tokens"
    if record.over_budget:
        summary += f"; the header alone exceeds {max_tokens} tokens"
    err_console.print(summary, style="dim", markup=False, highlight=False)
