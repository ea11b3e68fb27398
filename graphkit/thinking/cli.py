"""`ehr-r1 generate mine | thinking | usage`: association mining, thinking graphs, their usage records.

Registered on the `generate` group by ``register(app)`` (ehr_r1/cli.py); the store is opened with
the `graph` group's connection options.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from graphkit.atomic import atomic_path
from graphkit.cli_common import RichProgress, console, err_console, workspace
from graphkit.store.cli import Connection, with_connection

SamplesOption = Annotated[list[Path], typer.Option(
    "--samples", "-s", help="EHR-Bench sample rows: parquet/JSONL files or folders (default <workspace>/bench/samples).",
    show_default=False)]
TaskOption = Annotated[list[str], typer.Option("--task", "-t", help="Only these tasks (repeatable).", show_default=False)]
LinksOption = Annotated[Path, typer.Option(
    "--links", help="Item links (parquet/JSONL: key, cui) instead of the graph's MAPS_TO edges.", show_default=False)]


def register(app: typer.Typer) -> None:
    app.command("mine")(mine)
    app.command("thinking")(thinking)
    app.command("usage")(usage)


def _links(store, links: Path | None):
    from graphkit.thinking.samples import read_links
    from graphkit.thinking.store_io import load_item_links

    return read_links(links) if links else load_item_links(store)


@with_connection
def mine(
    ctx: typer.Context,
    samples: SamplesOption = None,
    task: TaskOption = None,
    min_support: Annotated[int, typer.Option("--min-support", help="Train samples with both concepts, at least.")] = 5,
    min_lift: Annotated[float, typer.Option("--min-lift", help="Lift strictly above this.")] = 5.0,
    min_confidence: Annotated[float, typer.Option("--min-confidence", help="Confidence at least this.")] = 0.0,
    top_k: Annotated[int, typer.Option("--top-k", help="Associations kept per target concept, best lift first.")] = 20,
    links: LinksOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Mine and report; write nothing to the graph.")] = False,
    out: Annotated[Path, typer.Option("--out", help="Parquet copy of the associations "
                                      "(default <workspace>/graph/associations/<graph>.parquet).", show_default=False)] = None,
    connection: Connection = None,
) -> None:
    """Mine context -> target concept associations per task on train samples; store them as ASSOCIATED_WITH edges."""
    from graphkit.atomic import atomic_path, atomic_write_text
    from graphkit.thinking.mining import mine_associations, sample_concepts
    from graphkit.thinking.options import MiningOptions
    from graphkit.thinking.samples import scan_samples
    from graphkit.thinking.store_io import ensure_thinking_schema, write_associations

    options = MiningOptions(min_support=min_support, min_lift=min_lift, min_confidence=min_confidence, top_k=top_k)
    ws = workspace(ctx)
    paths = samples or [ws.bench / "samples"]
    with connection.open(ctx) as store:
        rows = scan_samples(paths, tasks=task)
        concepts = sample_concepts(rows, _links(store, links))
        result = mine_associations(
            concepts, options, samples=rows, tasks=task, cohort_label=",".join(str(p) for p in paths)
        )
        if not dry_run:
            ensure_thinking_schema(store)
            write_associations(store, result)
    target = out or ws.graph / "associations" / f"{connection.graph}.parquet"
    with atomic_path(target, suffix=".parquet") as tmp:
        result.associations.write_parquet(tmp)
    atomic_write_text(target.with_suffix(".runs.json"), json.dumps(result.runs, indent=1, sort_keys=True))
    from rich.table import Table

    table = Table("task", "train samples", "associations", "targets", "cohort", title=f"associations (config {options.hash()})")
    for run in result.runs:
        mined = result.for_task(run["task"])
        table.add_row(run["task"], f"{run['n_samples']:,}", f"{run['associations']:,}", f"{mined['target'].n_unique():,}", run["cohort"])
    console.print(table)
    where = "not written (dry run)" if dry_run else "written to the graph"
    err_console.print(f"{result.associations.height:,} associations {where}; copy in {target}")


@with_connection
def thinking(
    ctx: typer.Context,
    samples: SamplesOption = None,
    task: TaskOption = None,
    split: Annotated[list[str], typer.Option("--split", help="Only these splits (repeatable; default all).",
                                             show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="JSONL of thinking graphs, one per sample "
                                      "(default <workspace>/thinking/<graph>.jsonl).", show_default=False)] = None,
    live: Annotated[bool, typer.Option("--live", help="Search the live graph through Cypher instead of the CSR snapshot.")] = False,
    refresh_snapshot: Annotated[bool, typer.Option("--refresh-snapshot", help="Export a new CSR snapshot from the graph first.")] = False,
    workers: Annotated[int, typer.Option("--workers", help="Processes building graphs (snapshot only).")] = 2,
    record: Annotated[bool, typer.Option("--record/--no-record", help="Write (:Case) usage records to the graph.")] = True,
    max_evidence: Annotated[int, typer.Option("--max-evidence", help="Evidence concepts per target, best lift first.")] = 20,
    paths_per_pair: Annotated[int, typer.Option("--paths-per-pair", help="Shortest paths kept per evidence-target pair.")] = 1,
    max_hops: Annotated[int, typer.Option("--max-hops", help="Levels each side of the bidirectional search may grow.")] = 10,
    max_paths: Annotated[int, typer.Option("--max-paths", help="Shortest paths enumerated per pair.")] = 10,
    max_expanded: Annotated[int, typer.Option("--max-expanded", help="Nodes expanded per pair, both sides together.")] = 2000,
    direction: Annotated[str, typer.Option("--direction", help="both (edges walked either way) or forward.")] = "both",
    exclude: Annotated[list[str], typer.Option("--exclude", help="Also never traverse this relationship type (repeatable).",
                                               show_default=False)] = None,
    include: Annotated[list[str], typer.Option("--include", help="Traverse this default-excluded type after all (repeatable).",
                                               show_default=False)] = None,
    links: LinksOption = None,
    connection: Connection = None,
) -> None:
    """Build a thinking graph per sample (evidence, typed paths to each gold target) as JSONL; resumable."""
    from graphkit.thinking.options import DEFAULT_EXCLUDED_TYPES, SearchOptions, ThinkingOptions
    from graphkit.thinking.run import links_sidecar, run_thinking

    excluded = (DEFAULT_EXCLUDED_TYPES | set(exclude or [])) - set(include or [])
    options = ThinkingOptions(
        search=SearchOptions(direction=direction, max_hops=max_hops, max_paths=max_paths, max_expanded=max_expanded,
                             excluded_types=frozenset(excluded)),
        max_evidence=max_evidence,
        paths_per_pair=paths_per_pair,
    )
    ws = workspace(ctx)
    target = out or ws.sub("thinking") / f"{connection.graph}.jsonl"
    with connection.open(ctx) as store, RichProgress() as progress:
        item_links = _links(store, links)
        report = run_thinking(
            store, ws, samples or [ws.bench / "samples"], target, options,
            tasks=task, splits=split, links=item_links, live=live, refresh_snapshot=refresh_snapshot,
            workers=workers, record=record, graph=connection.graph, progress=progress,
        )
    # `generate cases` needs the same links to tell which graph target stands for which gold item
    sidecar = links_sidecar(target)
    with atomic_path(sidecar) as tmp:
        item_links.write_parquet(tmp)
    report["links"] = str(sidecar)
    console.print_json(json.dumps(report))



@with_connection
def usage(
    ctx: typer.Context,
    case: Annotated[str, typer.Option("--case", help="Which paths support this case (sample id).", show_default=False)] = None,
    edge: Annotated[str, typer.Option("--edge", help="Which cases use this edge (edge_id).", show_default=False)] = None,
    top: Annotated[bool, typer.Option("--top", help="Most used edges (per task with --task).")] = False,
    task: Annotated[str, typer.Option("--task", help="The task for --top (default all).", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows for --top.")] = 20,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    connection: Connection = None,
) -> None:
    """Thinking-graph usage: the paths behind a case, the cases behind an edge, the most used edges."""
    from graphkit.errors import ConfigError
    from graphkit.thinking.store_io import case_paths, cases_using_edge, top_edges

    if sum(bool(x) for x in (case, edge, top)) != 1:
        raise ConfigError("choose one question", where="--case / --edge / --top", fix="pass exactly one of them")
    if output not in ("table", "json"):
        raise ConfigError("unknown format", where="--format", value=output, fix="table or json")
    with connection.open(ctx) as store:
        if case:
            rows = case_paths(store, case)
        elif edge:
            rows = cases_using_edge(store, edge)
        else:
            rows = top_edges(store, task, limit)
    if output == "json":
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
        return
    from rich.table import Table

    columns = list(dict.fromkeys(k for row in rows for k in row))
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(table)
    err_console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}")
