"""The thinking-graph job behind `ehr-r1 generate thinking`: samples -> JSONL of thinking graphs.

Resumable: graphs are appended to ``<out>.partial`` a chunk at a time (a line is written only
whole; a torn last line is cut off on restart) and the samples already there are skipped; the
finished file replaces ``out`` atomically. Usage records go to the store before the chunk's lines
are written, so a kill between the two only makes the next run rewrite those records.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

from graphkit.errors import InputError
from graphkit.progress import NULL_PROGRESS, Progress
from graphkit.thinking.builder import (
    AssociationIndex,
    SnapshotBuilderFactory,
    ThinkingGraphBuilder,
    build_parallel,
    thinking_requests,
)
from graphkit.thinking.mining import sample_concepts
from graphkit.thinking.options import ThinkingOptions
from graphkit.thinking.samples import scan_samples
from graphkit.thinking.snapshot import Snapshot
from graphkit.thinking.store_io import ensure_thinking_schema, load_associations, write_thinking_graphs
from graphkit.thinking.store_search import StoreAdjacency
from graphkit.workspace import Workspace

log = logging.getLogger(__name__)

CHUNK = 64


def current_graph_hash(workspace: Workspace, graph: str) -> str:
    """The hash `ehr-r1 graph build` recorded, or "" for a graph built some other way."""
    from graphkit.kg.build import graph_info

    try:
        return str(graph_info(workspace, graph).get("graph_hash", ""))
    except InputError:
        return ""


def snapshot_for(store, workspace: Workspace, graph: str, graph_hash: str, *, refresh: bool = False,
                 progress: Progress | None = None) -> Path:
    """The saved CSR snapshot of this graph, exported again when asked or when the graph hash changed."""
    directory = workspace.graph / "snapshot" / graph
    if not refresh and (directory / "meta.json").is_file():
        meta = json.loads((directory / "meta.json").read_text())
        if graph_hash and meta.get("graph_hash") == graph_hash:
            return directory
        if not graph_hash:
            log.warning("the graph has no build hash: reusing the snapshot in %s (--refresh-snapshot to export anew)", directory)
            return directory
    snapshot = Snapshot.from_store(store, progress=progress)
    snapshot.meta["graph_hash"] = graph_hash
    return snapshot.save(directory)


def _resume(partial: Path) -> set[str]:
    """Sample ids already in the partial file; a torn last line is cut off."""
    if not partial.is_file():
        return set()
    data = partial.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    if len(whole) != len(data):
        with open(partial, "r+b") as handle:
            handle.truncate(len(whole))
    return {json.loads(line)["sample_id"] for line in whole.splitlines() if line.strip()}


def links_sidecar(thinking_file: Path) -> Path:
    """Where `generate thinking` keeps the item links its graphs were built with."""
    return thinking_file.with_name(thinking_file.name.removesuffix(".jsonl") + ".links.parquet")


def run_thinking(
    store,
    workspace: Workspace,
    samples: Sequence[Path],
    out: Path,
    options: ThinkingOptions,
    *,
    tasks: Iterable[str] | None = None,
    splits: Iterable[str] | None = None,
    links: pl.DataFrame,
    live: bool = False,
    refresh_snapshot: bool = False,
    workers: int = 2,
    record: bool = True,
    graph: str = "kg",
    progress: Progress | None = None,
) -> dict:
    progress = progress or NULL_PROGRESS
    started = time.perf_counter()
    concepts = sample_concepts(scan_samples(samples, tasks=tasks, splits=splits), links).collect()
    requests = list(thinking_requests(concepts))
    partial = out.with_name(out.name + ".partial")
    done = _resume(partial)
    todo = [r for r in requests if r[0] not in done]
    tasks_present = sorted({r[1] for r in requests})
    associations = load_associations(store, tasks_present)
    graph_hash = current_graph_hash(workspace, graph)
    if record:
        ensure_thinking_schema(store)
    stats: Counter = Counter()
    if live:
        builder = ThinkingGraphBuilder(StoreAdjacency(store, options.search), AssociationIndex(associations), options,
                                       graph_hash=graph_hash)
        graphs = (builder.build(*r) for r in todo)
        source = "live graph"
    else:
        directory = snapshot_for(store, workspace, graph, graph_hash, refresh=refresh_snapshot, progress=progress)
        factory = SnapshotBuilderFactory(directory, associations, options, graph_hash)
        graphs = build_parallel(factory, todo, workers=workers, stats=stats)
        source = str(directory)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle = progress.start("thinking graphs", total=len(todo))
    written = explained = targets = 0
    with open(partial, "a", encoding="utf-8") as sink:
        chunk = []
        for graph_obj in graphs:
            chunk.append(graph_obj)
            if len(chunk) >= CHUNK:
                _flush(store, sink, chunk, record)
                progress.advance(handle, len(chunk))
                chunk = []
            written += 1
            targets += len(graph_obj.targets)
            explained += len(graph_obj.targets) - len(graph_obj.unexplained_targets)
        if chunk:
            _flush(store, sink, chunk, record)
            progress.advance(handle, len(chunk))
        sink.flush()
        os.fsync(sink.fileno())
    progress.finish(handle)
    os.replace(partial, out)
    if live:
        stats.update(builder.stats)
    return {
        "out": str(out),
        "samples": len(requests),
        "written": written,
        "resumed": len(done),
        "targets": targets,
        "explained_targets": explained,
        "searches": {k: stats[k] for k in ("found", "no_path", "budget", "max_hops", "unknown") if stats[k]},
        "associations": associations.height,
        "adjacency": source,
        "graph_hash": graph_hash,
        "config_hash": options.hash(),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _flush(store, sink, chunk: list, record: bool) -> None:
    if record:
        write_thinking_graphs(store, chunk)
    sink.write("".join(g.to_json() + "\n" for g in chunk))
    sink.flush()
