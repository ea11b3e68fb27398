"""`ehr-r1 ehr ...`: check, convert, show and synthesize MIMIC-IV data."""

from __future__ import annotations

import typer

app = typer.Typer(help="Check, convert, show and synthesize MIMIC-IV data.", no_args_is_help=True)

# ---------------------------------------------------------------- synth (synth: graphkit/ehr/synth/cli.py)
from graphkit.ehr.synth.cli import synth as synth_command  # noqa: E402

app.command("synth")(synth_command)
