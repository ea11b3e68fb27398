"""The `graph` command group: stats, query, paths, export, stop (other parts add build, link-report).

Other parts add commands with ``register(app)`` in their own cli module (see docs/interfaces.md §3a)
and open the store with ``open_store_from_cli`` and the shared connection options below.
"""

from __future__ import annotations

import csv
import functools
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from graphkit.cli_common import RichProgress, console, err_console, parse_params, workspace
from graphkit.errors import ConfigError
from graphkit.store import BACKENDS, GraphStore, open_store

app = typer.Typer(
    name="graph",
    help="The knowledge graph: statistics, Cypher queries, typed paths, export, server control.",
    no_args_is_help=True,
)

BACKEND_ENV = "EHR_R1_GRAPH_BACKEND"
_PARAM_OPTION = typer.Option(None, "--param", "-p", help="A parameter as key=value (JSON values are typed).")
_OUT_OPTION = typer.Option(
    None, "--out", help="Output folder (default <workspace>/graph/export/<format>).", show_default=False
)


def backend_option() -> Any:
    return typer.Option(
        "embedded",
        "--backend",
        envvar=BACKEND_ENV,
        help=f"Graph backend: {' or '.join(BACKENDS)}.",
        show_default=True,
    )


def uri_option() -> Any:
    return typer.Option(
        None, "--uri", envvar="NEO4J_URI", help="Neo4j Bolt URI (neo4j backend).", show_default=False
    )


def user_option() -> Any:
    return typer.Option(
        None, "--user", envvar="NEO4J_USER", help="Neo4j user (default neo4j).", show_default=False
    )


def database_option() -> Any:
    return typer.Option(
        None,
        "--database",
        envvar="NEO4J_DATABASE",
        help="Neo4j database (default: the server's).",
        show_default=False,
    )


def ask_password_option() -> Any:
    return typer.Option(
        False,
        "--ask-password",
        help="Prompt for the Neo4j password (hidden) instead of reading NEO4J_PASSWORD.",
    )


def graph_name_option() -> Any:
    return typer.Option("kg", "--graph", help="Graph name inside the embedded server.")


def open_store_from_cli(
    ctx: typer.Context,
    backend: str,
    uri: str | None = None,
    user: str | None = None,
    database: str | None = None,
    ask_password: bool = False,
    graph: str = "kg",
) -> GraphStore:
    """The store the shared options describe; the password is prompted without echo when asked."""
    if backend not in BACKENDS:
        raise ConfigError(
            "unknown graph backend", where="--backend", value=backend, fix=f"use one of {', '.join(BACKENDS)}"
        )
    if backend == "embedded":
        return open_store(workspace(ctx), "embedded", graph=graph)
    password = typer.prompt("Neo4j password", hide_input=True, err=True) if ask_password else None
    return open_store(backend="neo4j", uri=uri, user=user, password=password, database=database)


@dataclass(frozen=True)
class Connection:
    """The shared connection options of a command (see ``with_connection``)."""

    backend: str
    uri: str | None
    user: str | None
    database: str | None
    ask_password: bool
    graph: str

    def open(self, ctx: typer.Context) -> GraphStore:
        return open_store_from_cli(
            ctx, self.backend, self.uri, self.user, self.database, self.ask_password, self.graph
        )


_CONNECTION_OPTIONS = {
    "backend": (str, backend_option),
    "uri": (str, uri_option),
    "user": (str, user_option),
    "database": (str, database_option),
    "ask_password": (bool, ask_password_option),
    "graph": (str, graph_name_option),
}


def with_connection(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a typer command the shared options (--backend, --uri, --user, --database,
    --ask-password, --graph); the command takes them as one ``connection: Connection``."""
    # typer reads ``__signature__`` as it is: string annotations (``from __future__ import annotations``)
    # must be resolved here, in the command's module, or Annotated[...] options lose their names and help
    signature = inspect.signature(command, eval_str=True)
    parameters = [p for p in signature.parameters.values() if p.name != "connection"]
    parameters += [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option(), annotation=annotation)
        for name, (annotation, option) in _CONNECTION_OPTIONS.items()
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        connection = Connection(**{name: kwargs.pop(name) for name in _CONNECTION_OPTIONS})
        return command(*args, connection=connection, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return wrapper


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else str(value)


def _print_rows(rows: list[dict], output: str) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if output == "json":
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
    elif output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
    else:
        from rich.table import Table

        table = Table(show_header=True, header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        console.print(table)
        err_console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}")


def _check_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise ConfigError("unknown choice", where=option, value=value, fix=f"use one of {', '.join(choices)}")
    return value


@app.command()
@with_connection
def stats(
    ctx: typer.Context,
    output: str = typer.Option("table", "--format", help="table or json."),
    connection: Connection = None,
) -> None:
    """Nodes by label, relationships by type, rejected edges, and where the graph lives."""
    _check_choice(output, ("table", "json"), "--format")
    with connection.open(ctx) as store:
        facts = store.stats()
    if output == "json":
        typer.echo(json.dumps(facts, indent=2, default=str))
        return
    from rich.table import Table

    about = Table(show_header=False, box=None)
    for key, value in facts.items():
        if not isinstance(value, (dict, list)):
            about.add_row(key, _cell(value))
    console.print(about)
    for section in ("nodes", "relationships", "rejected"):
        if facts[section]:
            table = Table(section, "count")
            for name, count in sorted(facts[section].items(), key=lambda item: (-item[1], item[0])):
                table.add_row(name, f"{count:,}")
            console.print(table)


@app.command()
@with_connection
def query(
    ctx: typer.Context,
    cypher_text: str = typer.Argument(..., metavar="CYPHER", help="The Cypher statement; values as $name."),
    param: list[str] = _PARAM_OPTION,
    output: str = typer.Option("table", "--format", help="table, json or csv."),
    write: bool = typer.Option(
        False, "--write", help="Allow the statement to change the graph (read-only otherwise)."
    ),
    connection: Connection = None,
) -> None:
    """Run one Cypher statement and print its rows."""
    _check_choice(output, ("table", "json", "csv"), "--format")
    params = parse_params(param)
    with connection.open(ctx) as store:
        rows = store.query(cypher_text, params, read_only=not write)
    _print_rows(rows, output)


@app.command()
@with_connection
def paths(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="Source concept: a CUI or its name."),
    target: str = typer.Argument(..., help="Target concept: a CUI or its name."),
    max_hops: int = typer.Option(6, "--max-hops", help="Longest path, in relationships (1-32)."),
    types: str = typer.Option(
        None, "--types", help="Relation types to follow, comma-separated (default: all concept relations)."
    ),
    any_direction: bool = typer.Option(
        False, "--any-direction", help="Let steps follow relations backwards too (slow on big graphs)."
    ),
    limit: int = typer.Option(10, "--limit", help="At most this many paths."),
    output: str = typer.Option("text", "--format", help="text or json."),
    connection: Connection = None,
) -> None:
    """Shortest typed paths from one concept to another, with relation names and directions."""
    from graphkit.store.paths import find_paths

    _check_choice(output, ("text", "json"), "--format")
    chosen = [t.strip() for t in types.split(",") if t.strip()] if types else None
    with connection.open(ctx) as store:
        start, end, found = find_paths(
            store, source, target, max_hops=max_hops, types=chosen, any_direction=any_direction, limit=limit
        )
    if output == "json":
        typer.echo(
            json.dumps({"source": start, "target": end, "paths": [p.to_dict() for p in found]}, indent=2)
        )
        return
    if not found:
        hint = "" if any_direction else " (--any-direction also follows relations backwards)"
        err_console.print(
            f"no path of at most {max_hops} active relationships from {start['cui']} to {end['cui']}{hint}"
        )
        return
    for found_path in found:
        typer.echo(found_path.render())


@app.command()
@with_connection
def export(
    ctx: typer.Context,
    output_format: str = typer.Option(
        "neo4j-admin", "--format", help="neo4j-admin: CSVs for `neo4j-admin database import`."
    ),
    out: Path = _OUT_OPTION,
    connection: Connection = None,
) -> None:
    """Write the graph as files for a bulk import elsewhere (neo4j-admin at full UMLS scale)."""
    from graphkit.store.export import FORMATS, export_neo4j_admin

    _check_choice(output_format, FORMATS, "--format")
    target = out or workspace(ctx).graph / "export" / output_format
    with (
        connection.open(ctx) as store,
        RichProgress() as progress,
    ):
        manifest = export_neo4j_admin(store, target, progress=progress)
    nodes, relationships = sum(manifest["nodes"].values()), sum(manifest["relationships"].values())
    typer.echo(f"{nodes:,} nodes and {relationships:,} relationships written to {target}")
    typer.echo(f"import with: {target / 'neo4j-admin-import.sh'} [DATABASE]")


@app.command()
def stop(
    ctx: typer.Context,
    force: bool = typer.Option(
        False, "--force", help="Kill a server that does not stop in --timeout seconds."
    ),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds to wait for the final save."),
) -> None:
    """Stop the embedded graph server of this workspace now (it saves first)."""
    from graphkit.store.server import FalkorServer

    server = FalkorServer(workspace(ctx).graph)
    if server.stop(force=force, timeout=timeout):
        typer.echo(f"stopped the graph server of {server.data_dir}")
    else:
        typer.echo("no graph server was running")
