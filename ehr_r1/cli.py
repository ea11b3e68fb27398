"""Root typer app. Thin: each package owns its sub-app in its own ``cli.py``."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from typer.core import TyperGroup

from graphkit import __version__
from graphkit.cli_common import AppState, err_console
from graphkit.errors import EhrR1Error
from graphkit.workspace import ENV_VAR


class EhrR1Group(TyperGroup):
    """Turns every EhrR1Error raised below it into one line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EhrR1Error as exc:
            typer.echo(f"error: {exc.one_line()}", err=True)
            raise typer.Exit(2) from exc


app = typer.Typer(
    cls=EhrR1Group,
    name="ehr-r1",
    help="Turn EHRs and a medical knowledge graph into reasoning data, benchmarks and models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ehr-r1 {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    workspace: Path = typer.Option(
        None,
        "--workspace",
        "-w",
        envvar=ENV_VAR,
        help="Directory for everything ehr-r1 writes (converted data, graph, datasets, runs). "
        "Default ./ehr-r1-work.",
        show_default=False,
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details to stderr."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
        force=True,
    )
    ctx.obj = AppState(workspace_option=workspace, verbose=verbose)


def _register() -> None:
    from graphkit.ehr.cli import app as ehr_app

    app.add_typer(ehr_app, name="ehr")
    from bench.cli import app as bench_app; app.add_typer(bench_app, name="bench")  # noqa: E702
    from training.cli import app as train_app; app.add_typer(train_app, name="train")  # noqa: E702
    from graphkit.store.cli import app as graph_app; app.add_typer(graph_app, name="graph")  # noqa: E702
    from graphkit.kg.cli import register as register_kg; register_kg(graph_app)  # noqa: E702
    from generators.cli import app as generate_app; app.add_typer(generate_app, name="generate")  # noqa: E702
    from graphkit.thinking.cli import register as register_thinking; register_thinking(generate_app)  # noqa: E702
    from graphkit.curation.cli import app as curate_app; app.add_typer(curate_app, name="curate")  # noqa: E702


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
