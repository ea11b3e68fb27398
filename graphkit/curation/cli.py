"""`ehr-r1 curate ...`: the review queue, one edge, changes through the ledger, the web page."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from graphkit.cli_common import RichProgress, console, err_console, workspace
from graphkit.store.cli import Connection, with_connection

app = typer.Typer(
    help="Curate graph edges: a review queue, edge details, reject/restore/add/annotate through a "
    "durable ledger replayed after every build, and a local web page.",
    no_args_is_help=True,
)

CURATOR_ENV = "EHR_R1_CURATOR"
Edge = Annotated[str, typer.Argument(help="The edge: its id, or SOURCE|RELATION|TARGET|SAB (SAB may be left out "
                                     "when one edge fits).", show_default=False)]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why (required; recorded in the ledger).", show_default=False)]
Evidence = Annotated[list[str], typer.Option("--evidence", "-e", help="Evidence: a citation, URL or note (repeatable).",
                                             show_default=False)]
Curator = Annotated[str, typer.Option("--curator", envvar=CURATOR_ENV, help="Who decides (default: the login name).",
                                      show_default=False)]
ExpectVersion = Annotated[int, typer.Option(
    "--expect-version", help="Refuse the change unless the edge's last ledger entry is still this one "
    "(its version in `curate show`; 0 = never curated).", show_default=False)]
Since = Annotated[str, typer.Option("--since", help="After this point: an entry number, an entry hash prefix or an "
                                    "ISO date/time (UTC).", show_default=False)]
Format = Annotated[str, typer.Option("--format", help="table or json.")]


def _curator(name: str | None) -> str:
    return name or getpass.getuser()


def _format(value: str, allowed: tuple[str, ...] = ("table", "json")) -> str:
    from graphkit.errors import ConfigError

    if value not in allowed:
        raise ConfigError("unknown format", where="--format", value=value, fix=" or ".join(allowed))
    return value


def _table(rows: list[dict], columns: list[str], title: str | None = None) -> None:
    from rich.table import Table

    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(table)


@app.command("queue")
@with_connection
def queue_command(
    ctx: typer.Context,
    kinds: Annotated[list[str], typer.Option("--kind", help="used (most cases use them), mappings (low-confidence "
                                             "MAPS_TO) or associations (small support); repeatable.",
                                             show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", help="Edges per kind.")] = 20,
    task: Annotated[str, typer.Option("--task", help="Only this task's cases and associations.", show_default=False)] = None,
    max_score: Annotated[float, typer.Option("--max-score", help="Mappings scored below this (and text-matched ones).")] = 0.8,
    max_support: Annotated[int, typer.Option("--max-support", help="Associations with at most this support.")] = 10,
    include_reviewed: Annotated[bool, typer.Option("--all", help="Also list edges already in the ledger.")] = False,
    output: Format = "table",
    connection: Connection = None,
) -> None:
    """Edges worth a look: most used by cases, low-confidence mappings, associations with small support."""
    from graphkit.curation.ledger import Ledger
    from graphkit.curation.views import QUEUES, ensure_queue_schema, queue

    output = _format(output)
    with connection.open(ctx) as store:
        ensure_queue_schema(store)
        found = queue(store, Ledger.of(workspace(ctx)), kinds=kinds or QUEUES, limit=limit, task=task,
                      max_score=max_score, max_support=max_support, include_reviewed=include_reviewed)
    if output == "json":
        typer.echo(json.dumps(found, ensure_ascii=False, indent=1, default=str))
        return
    extra = {"used": ["cases", "uses"], "mappings": ["method", "score"], "associations": ["task", "support", "lift"]}
    for kind, rows in found.items():
        _table(rows, ["edge_id", "source_name", "relation", "target_name", "status", *extra[kind], "edge"],
               title=f"{kind}: {len(rows)} edge{'s' if len(rows) != 1 else ''}")


@app.command("show")
@with_connection
def show(
    ctx: typer.Context,
    edge: Edge,
    cases: Annotated[int, typer.Option("--cases", help="Cases listed.")] = 20,
    paths: Annotated[int, typer.Option("--paths", help="Example paths shown.")] = 3,
    output: Format = "table",
    connection: Connection = None,
) -> None:
    """One edge: source and evidence, status and version, its ledger history, the cases that used it, example paths."""
    from graphkit.curation.service import Curation
    from graphkit.curation.views import edge_view

    output = _format(output)
    with connection.open(ctx) as store:
        curation = Curation(store, workspace(ctx))
        view = edge_view(store, curation.ledger, curation.resolve(edge), cases=cases, paths=paths).to_dict()
    if output == "json":
        typer.echo(json.dumps(view, ensure_ascii=False, indent=1, default=str))
        return
    names = f"{view['source_name'] or view['edge']['source']} -[{view['edge']['relation']}]-> " \
            f"{view['target_name'] or view['edge']['target']}"
    console.print(f"[bold]{names}[/bold]", markup=True, highlight=False)
    console.print(f"key {view['text']}  id {view['edge_id']}  status {view['status']}  version {view['version']}",
                  markup=False)
    for name, value in view["evidence"].items():
        console.print(f"  {name}: {value}", markup=False)
    if view["history"]:
        _table(view["history"], ["seq", "op", "curator", "time", "reason", "evidence"], title="ledger")
    console.print(f"{view['n_cases']} cases use it ({view['n_uses']} uses)", markup=False)
    if view["cases"]:
        _table(view["cases"], ["case_id", "task", "roles", "uses", "target_cuis"])
    for path in view["example_paths"]:
        console.print(f"  {path['case_id']}: {path['text']}", markup=False)


def _change(ctx, op: str, edge: str, reason: str, evidence: list[str] | None, curator: str | None,
            expect_version: int | None, connection: Connection) -> None:
    from graphkit.curation.service import Curation
    from graphkit.curation.views import count_users

    with connection.open(ctx) as store:
        curation = Curation(store, workspace(ctx))
        if op == "annotate":
            entry = curation.annotate(edge, curator=_curator(curator), reason=reason, evidence=evidence or [])
        else:
            entry = curation.change(op, edge, curator=_curator(curator), reason=reason, evidence=evidence or [],
                                    expected_version=expect_version)
        used = count_users(store, entry.edge_id)[0]
    done = {"reject": "rejected", "restore": "restored", "annotate": "annotated", "add": "added"}[op]
    console.print(f"entry {entry.seq}: {done} {entry.edge.text} (id {entry.edge_id}, version {entry.seq})", markup=False)
    if used and op != "annotate":
        err_console.print(f"{used} cases used this edge: `ehr-r1 curate affected --since {entry.seq - 1}` lists them; "
                          "`ehr-r1 generate cases --only-affected` regenerates them", markup=False)


@app.command("reject")
@with_connection
def reject(ctx: typer.Context, edge: Edge, reason: Reason, evidence: Evidence = None, curator: Curator = None,
           expect_version: ExpectVersion = None, connection: Connection = None) -> None:
    """Reject an edge: kept in the graph with status rejected, never traversed; recorded in the ledger."""
    _change(ctx, "reject", edge, reason, evidence, curator, expect_version, connection)


@app.command("restore")
@with_connection
def restore(ctx: typer.Context, edge: Edge, reason: Reason, evidence: Evidence = None, curator: Curator = None,
            expect_version: ExpectVersion = None, connection: Connection = None) -> None:
    """Restore a rejected edge (status active again); recorded in the ledger."""
    _change(ctx, "restore", edge, reason, evidence, curator, expect_version, connection)


@app.command("annotate")
@with_connection
def annotate(ctx: typer.Context, edge: Edge, reason: Annotated[str, typer.Option(
             "--note", "--reason", "-r", help="The note (required).", show_default=False)],
             evidence: Evidence = None, curator: Curator = None, connection: Connection = None) -> None:
    """Add a note (with evidence) to an edge; its status does not change."""
    _change(ctx, "annotate", edge, reason, evidence, curator, None, connection)


@app.command("add")
@with_connection
def add(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Source CUI (an item id for MAPS_TO).", show_default=False)],
    relation: Annotated[str, typer.Argument(help="Relationship type, e.g. MAY_TREAT (or MAPS_TO).", show_default=False)],
    target: Annotated[str, typer.Argument(help="Target CUI.", show_default=False)],
    reason: Reason,
    evidence: Evidence = None,
    sab: Annotated[str, typer.Option("--sab", help="Source vocabulary of the new edge.")] = "CURATOR",
    rela: Annotated[str, typer.Option("--rela", help="UMLS-style relation name (default: the type in lower case).",
                                      show_default=False)] = None,
    curator: Curator = None,
    connection: Connection = None,
) -> None:
    """Add an edge the release lacks, with curator provenance (source "curator"); replayed after every build."""
    from graphkit.curation.service import Curation

    with connection.open(ctx) as store:
        entry = Curation(store, workspace(ctx)).add(source, relation, target, curator=_curator(curator), reason=reason,
                                                    evidence=evidence or [], sab=sab, rela=rela)
    console.print(f"entry {entry.seq}: added {entry.edge.text} (id {entry.edge_id})", markup=False)


@app.command("log")
def log_command(
    ctx: typer.Context,
    edge: Annotated[str, typer.Option("--edge", help="Only this edge (id or SOURCE|RELATION|TARGET|SAB).",
                                      show_default=False)] = None,
    since: Since = None,
    limit: Annotated[int, typer.Option("--limit", help="The last N entries (0: all).")] = 50,
    output: Annotated[str, typer.Option("--format", help="table, json or jsonl (the ledger lines).")] = "table",
) -> None:
    """The ledger's entries, newest last (the file is verified while it is read)."""
    from graphkit.curation.ledger import EdgeKey, Ledger

    output = _format(output, ("table", "json", "jsonl"))
    ledger = Ledger.of(workspace(ctx))
    entries = ledger.since(since)
    if edge:
        wanted = edge if "|" not in edge else EdgeKey.parse(edge).edge_id
        entries = [e for e in entries if e.edge_id == wanted or (len(edge.split("|")) == 3 and
                                                                 e.edge.text.startswith(edge + "|"))]
    shown = entries[-limit:] if limit else entries
    if output == "jsonl":
        for entry in shown:
            typer.echo(entry.to_line().decode("utf-8"), nl=False)
        return
    if output == "json":
        typer.echo(json.dumps([e.to_dict() for e in shown], ensure_ascii=False, indent=1))
        return
    rows = [{**e.to_dict(), "edge": e.edge.text, "evidence": "; ".join(e.evidence)} for e in shown]
    _table(rows, ["seq", "time", "curator", "op", "edge", "reason", "evidence"],
           title=f"{len(shown)} of {len(entries)} entries")


@app.command("verify")
def verify(
    ctx: typer.Context,
    repair_torn: Annotated[bool, typer.Option("--repair-torn", help="Cut off a torn last line left by a crash "
                                              "(its bytes are kept in ledger.jsonl.torn-<time>).")] = False,
) -> None:
    """Check the ledger's hash chain and its recorded head (tampering, truncation, a torn last line)."""
    from graphkit.curation.ledger import Ledger

    ledger = Ledger.of(workspace(ctx))
    if repair_torn:
        aside = ledger.repair_torn()
        err_console.print(f"torn last line cut off; its bytes are in {aside}" if aside else "no torn line", markup=False)
    report = ledger.verify()
    for note in report.notes:
        err_console.print(f"note: {note}", markup=False)
    console.print(f"ledger valid: {report.entries} entries, head {report.head_seq} {report.head_hash[:16]} "
                  f"({report.path})", markup=False)


@app.command("affected")
@with_connection
def affected(
    ctx: typer.Context,
    since: Since = None,
    samples: Annotated[list[Path], typer.Option("--samples", "-s", help="Sample files: also find samples whose items "
                                                "a changed mapping maps.", show_default=False)] = None,
    output: Annotated[str, typer.Option("--format", help="ids (one sample id per line, for --only-samples), "
                                        "table or json.")] = "ids",
    out: Annotated[Path, typer.Option("--out", help="Write the sample ids to this file.", show_default=False)] = None,
    connection: Connection = None,
) -> None:
    """The cases built on edges changed since a point (all changes without --since), to regenerate them."""
    from graphkit.atomic import atomic_write_text
    from graphkit.curation.affected import affected_cases
    from graphkit.curation.ledger import Ledger

    output = _format(output, ("ids", "table", "json"))
    ws = workspace(ctx)
    store = None
    if connection.backend != "embedded" or (ws.root / "graph" / "falkordb").exists():
        store = connection.open(ctx)
    try:
        cases, entries = affected_cases(Ledger.of(ws), ws, store=store, since=since, samples=samples)
    finally:
        if store is not None:
            store.close()
    ids = "".join(f"{case.sample_id}\n" for case in cases)
    if out:
        atomic_write_text(out, ids)
    if output == "json":
        typer.echo(json.dumps([c.to_dict() for c in cases], ensure_ascii=False, indent=1))
    elif output == "table":
        _table([c.to_dict() for c in cases], ["sample_id", "task", "reasons", "entries", "edges"])
    else:
        typer.echo(ids, nl=False)
    err_console.print(f"{len(cases)} affected samples from {len(entries)} changes", markup=False)


@app.command("replay")
@with_connection
def replay_command(
    ctx: typer.Context,
    output: Format = "table",
    connection: Connection = None,
) -> None:
    """Apply the whole ledger to the graph now (graph build does it after every load); reports missing edges."""
    from graphkit.curation.replay import replay

    output = _format(output)
    with connection.open(ctx) as store, RichProgress(transient=True) as progress:
        report = replay(store, workspace(ctx), progress=progress).to_dict()
    if output == "json":
        typer.echo(json.dumps(report, indent=1))
        return
    console.print(f"{report['entries']} entries, {report['edges']} edges: {report['rejected']} rejected, "
                  f"{report['active']} active, {report['added']} added by curators, {report['missing']} not in the "
                  f"graph ({report['seconds']} s)", markup=False)
    if report["missing_edges"]:
        _table(report["missing_edges"], ["seq", "last_op", "edge", "edge_id"], title="not in the graph (kept in the ledger)")


@app.command("serve")
@with_connection
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free one).")] = 8765,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow an address other than loopback "
                                               "(anyone who can reach it and has the token can edit).")] = False,
    connection: Connection = None,
) -> None:
    """A local web page to search concepts, open edges with their evidence and users, and reject/restore/annotate."""
    from graphkit.curation.web.app import check_host, run_server

    check_host(host, allow_remote)
    with connection.open(ctx) as store:
        def announce(url: str) -> None:
            console.print(f"curation page: {url}", markup=False, soft_wrap=True)
            err_console.print("the token in the URL is required on every request; Ctrl-C stops the server",
                              markup=False)

        run_server(store, workspace(ctx), host=host, port=port, announce=announce,
                   curator=os.environ.get(CURATOR_ENV, ""))
