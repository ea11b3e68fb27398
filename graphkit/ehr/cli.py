"""`ehr-r1 ehr ...`: check, convert, show and synthesize MIMIC-IV data."""

from __future__ import annotations

import typer

app = typer.Typer(help="Check, convert, show and synthesize MIMIC-IV data.", no_args_is_help=True)
