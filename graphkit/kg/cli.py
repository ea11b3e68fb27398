"""`ehr-r1 graph build` and `ehr-r1 graph link-report`, added to the graph group by ``register(app)``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from graphkit.cli_common import RichProgress, console, err_console, workspace
from graphkit.store.cli import Connection, graph_name_option, with_connection

_UMLS_OPTION = typer.Option(
    None, "--umls", help="Your licensed UMLS Metathesaurus folder (or its META/).", show_default=False
)
_MIMIC_OPTION = typer.Option(
    None,
    "--mimic",
    help="MIMIC-IV folder (PhysioNet layout or `ehr-r1 ehr convert` output) to link; default: the bundled demo.",
    show_default=False,
)
_SAB_OPTION = typer.Option(
    None,
    "--sab",
    help="Keep only these source vocabularies (repeat, or comma-separated).",
    show_default=False,
)
_LINKS_OPTION = typer.Option(
    None,
    "--links",
    help="Extra hand-made links (parquet or CSV: key, cui[, score]); they win.",
    show_default=False,
)
_REPORT_MIMIC_OPTION = typer.Option(
    None,
    "--mimic",
    help="MIMIC-IV folder to measure (default: the one the graph was built with).",
    show_default=False,
)


@with_connection
def build(
    ctx: typer.Context,
    umls: Path = _UMLS_OPTION,
    demo: bool = typer.Option(False, "--demo", help="Build the open demo graph instead (no licence needed)."),
    mimic: Path = _MIMIC_OPTION,
    sab: list[str] = _SAB_OPTION,
    text: str = typer.Option(
        "auto", "--text", help="QuickUMLS text linking: auto (when installed), on, off."
    ),
    links: Path = _LINKS_OPTION,
    connection: Connection = None,
) -> None:
    """Build the knowledge graph (release + MIMIC-IV links); resumable, a no-op when nothing changed."""
    from graphkit.kg.build import BuildConfig, build_graph

    sabs = tuple(s.strip() for value in sab or [] for s in value.split(",") if s.strip()) or None
    config = BuildConfig(
        umls=umls, demo=demo, mimic=mimic, sabs=sabs, text=text, extra_links=links, graph=connection.graph
    )
    config.check()
    ws = workspace(ctx)

    with RichProgress() as progress:
        result = build_graph(config, ws, store_factory=lambda: connection.open(ctx), progress=progress)
    if result.noop:
        typer.echo(f"graph {result.graph_hash} is up to date (nothing to do)")
        return
    counts = result.counts
    typer.echo(
        f"graph {result.graph_hash}: {counts['total_nodes']:,} nodes, {counts['total_relationships']:,} relationships"
        f" ({', '.join(f'{n:,} {label}' for label, n in counts['nodes'].items())})"
    )
    summary = result.links
    typer.echo(
        f"linked {summary['items_linked']:,} of {summary['items']:,} MIMIC items"
        f" ({', '.join(f'{method} {n:,}' for method, n in summary['items_by_method'].items())}); text: {summary['text_matching']}"
    )
    if summary["dropped_links"]:
        err_console.print(
            f"{summary['dropped_links']} links named concepts that are not in the release and were dropped: "
            + ", ".join(f"{d['key']} -> {d['cui']}" for d in summary["dropped_examples"])
        )
    typer.echo(
        f"ran {', '.join(result.ran)} in {sum(result.seconds.values()):.1f} s; state in {result.folder}"
    )


def link_report(
    ctx: typer.Context,
    mimic: Path = _REPORT_MIMIC_OPTION,
    top: int = typer.Option(10, "--top", help="Unlinked items listed per table (most rows first)."),
    output: str = typer.Option("table", "--format", help="table or json."),
    graph: str = graph_name_option(),
) -> None:
    """Per MIMIC table: share of rows and of distinct items linked to concepts, by method; top unlinked items."""
    from graphkit.ehr.source import open_source
    from graphkit.errors import ConfigError
    from graphkit.kg.build import BuildPaths, graph_info
    from graphkit.link import collect_items, read_items, read_links
    from graphkit.link.report import link_report as make_report
    from graphkit.link.report import methods_of

    if output not in ("table", "json"):
        raise ConfigError("unknown choice", where="--format", value=output, fix="table or json")
    ws = workspace(ctx)
    info = graph_info(ws, graph)
    folder = BuildPaths(ws, graph).links
    links = read_links(folder)
    source = open_source(mimic or info["mimic"])
    items = collect_items(source, count_rows=True) if mimic else read_items(folder)
    report = make_report(items, links, present=set(source.tables), top=top)
    report["mimic"] = str(source.path)
    report["graph_hash"] = info["graph_hash"]
    if output == "json":
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.table import Table

    methods = methods_of(report)
    table = Table("table", "items linked", "rows linked", *methods, title=f"MIMIC-IV links ({source.path})")
    for row in report["tables"]:
        share = "-" if row["row_share"] is None else f"{row['row_share']:.1%}"
        table.add_row(
            row["table"],
            f"{row['items_linked']:,}/{row['items']:,} ({row['item_share']:.1%})",
            f"{row['rows_linked']:,}/{row['rows']:,} ({share})",
            *(f"{row.get(f'items_{m}', 0):,} / {row.get(f'rows_{m}', 0):,}" for m in methods),
        )
    console.print(table)
    err_console.print("method columns: items / rows linked by that method")
    for name, worst in report["unlinked"].items():
        if not worst:
            continue
        listing = Table("unlinked item", "name", "rows", title=f"{name}: top unlinked")
        for item in worst:
            listing.add_row(item["key"], item["name"] or "", f"{item['rows']:,}")
        console.print(listing)


def register(app: typer.Typer) -> None:
    """Add build and link-report to the `graph` group (called by ehr_r1/cli.py)."""
    app.command("build")(build)
    app.command("link-report")(link_report)
