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


@app.command()
def demo(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="Build the benchmark for four tasks only (faster)."),
) -> None:
    """Run the whole pipeline on the bundled MIMIC-IV demo: data, graph, benchmark, cases, tiny training."""
    from ehr_r1.demo import run_demo
    from graphkit.cli_common import state

    app_state = state(ctx)
    root_options = ["--workspace", str(app_state.workspace.root)] + (["--verbose"] if app_state.verbose else [])
    command = typer.main.get_command(app)

    def invoke(args: list[str]) -> None:
        command.main(args=[*root_options, *args], prog_name="ehr-r1", standalone_mode=False)

    run_demo(app_state.workspace, invoke, quick=quick)


def _register() -> None:
    # imported here, after `app` exists: each group's module is the one place that group is defined
    from bench.cli import app as bench_app
    from generators.cli import app as generate_app
    from graphkit.curation.cli import app as curate_app
    from graphkit.ehr.cli import app as ehr_app
    from graphkit.kg.cli import register as register_kg
    from graphkit.store.cli import app as graph_app
    from graphkit.thinking.cli import register as register_thinking
    from training.cli import app as train_app

    register_kg(graph_app)
    register_thinking(generate_app)
    for name, group in (("ehr", ehr_app), ("bench", bench_app), ("train", train_app), ("graph", graph_app),
                        ("generate", generate_app), ("curate", curate_app)):
        app.add_typer(group, name=name)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
