"""Replaying the ledger onto a graph: after every `ehr-r1 graph build` and on demand.

The ledger is folded into one final state per edge (its last status change; whether a curator
added it, with the first add's properties) and written in batches: added edges merged, then
every status set. An entry whose edge is not in the graph (gone from a new release, an
association not mined again yet, an added edge whose ends are missing) is reported, never
dropped: the ledger is not touched, so the next replay tries again. The report is returned
(the graph build records it in its state) and written to ``<workspace>/curation/replay.json``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from graphkit.atomic import atomic_write_text
from graphkit.curation.graph import (
    NOT_CURATED,
    add_edges,
    fetch_edges,
    set_status,
    sync_snapshot,
    wait_for_indexes,
)
from graphkit.curation.ledger import EdgeKey, Entry, Ledger
from graphkit.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

REPORT = "replay.json"
MISSING_SHOWN = 50


@dataclass
class EdgeState:
    key: EdgeKey
    status: str | None = None  # None: only annotated
    added: dict | None = None  # the properties of the first add
    last: Entry | None = None


@dataclass
class ReplayReport:
    entries: int = 0
    edges: int = 0
    rejected: int = 0
    active: int = 0
    added: int = 0
    missing: list[dict] = field(default_factory=list)
    n_missing: int = 0
    head: dict | None = None
    seconds: float = 0.0
    index_wait_seconds: float = 0.0
    snapshot: str = ""

    def to_dict(self) -> dict:
        return {
            "entries": self.entries,
            "edges": self.edges,
            "rejected": self.rejected,
            "active": self.active,
            "added": self.added,
            "missing": self.n_missing,
            "missing_edges": self.missing,
            "head": self.head,
            "seconds": self.seconds,
            "index_wait_seconds": self.index_wait_seconds,
            "snapshot": self.snapshot,
        }


def fold(entries: list[Entry]) -> dict[str, EdgeState]:
    """edge_id -> final state, in ledger order."""
    states: dict[str, EdgeState] = {}
    for entry in entries:
        state = states.setdefault(entry.edge_id, EdgeState(entry.edge))
        if entry.op == "add" and state.added is None:
            state.added = dict(entry.properties)
        if entry.status is not None:
            state.status = entry.status
        state.last = entry
    return states


def replay(store, workspace, *, ledger: Ledger | None = None, graph: str | None = None,
           progress: Progress | None = None) -> ReplayReport:
    """Apply the whole ledger to the graph (idempotent); LedgerError when the ledger is damaged.

    Runs under the ledger's writers' lock, so no change made meanwhile (CLI, web page) is lost
    between reading the ledger and writing the graph.
    """
    ledger = ledger or Ledger.of(workspace)
    with ledger.locked():
        return _replay(store, workspace, ledger, graph, progress or NULL_PROGRESS)


def _replay(store, workspace, ledger: Ledger, graph: str | None, progress: Progress) -> ReplayReport:
    started = time.perf_counter()
    index_wait = wait_for_indexes(store)
    entries = ledger.refresh()
    states = fold(entries)
    report = ReplayReport(entries=len(entries), edges=len(states), index_wait_seconds=index_wait)
    if entries:
        report.head = {"seq": entries[-1].seq, "hash": entries[-1].hash}
    handle = progress.start("replaying the curation ledger", total=len(states))
    curated = {k: s for k, s in states.items() if s.key.relation not in NOT_CURATED}
    additions = {s.key: s.added for s in curated.values() if s.added is not None}
    created = add_edges(store, additions) if additions else {}
    report.added = sum(1 for source in created.values() if source == "curator")
    statuses = {s.key: s.status for s in curated.values() if s.status is not None}
    found = set_status(store, statuses) if statuses else set()
    progress.advance(handle, len(statuses))
    annotated_only = [s.key for s in curated.values() if s.status is None]
    present = found | set(fetch_edges(store, annotated_only)) if annotated_only else found
    progress.advance(handle, len(annotated_only))
    progress.finish(handle)
    for key, status in statuses.items():
        if key.edge_id in found:
            if status == "rejected":
                report.rejected += 1
            else:
                report.active += 1
    missing = [s for k, s in states.items() if k not in present]
    report.n_missing = len(missing)
    report.missing = [
        {"edge": s.key.text, "edge_id": s.key.edge_id, "last_op": s.last.op, "seq": s.last.seq}
        for s in missing[:MISSING_SHOWN]
    ]
    if missing:
        log.warning("%d curated edges are not in the graph (kept in the ledger, replayed again next time)", len(missing))
    graph = graph or getattr(store, "graph_name", "kg")
    report.snapshot = sync_snapshot(
        workspace, graph, {k.edge_id: v for k, v in statuses.items()}, added=report.added > 0
    )
    report.seconds = round(time.perf_counter() - started, 3)
    atomic_write_text(workspace.curation / REPORT, json.dumps(report.to_dict(), indent=1) + "\n")
    return report


def replay_after_build(store, *, workspace, graph_hash: str) -> dict:
    """The post-build hook (graphkit.kg.hooks): a rebuilt graph gets every curation again."""
    ledger = Ledger.of(workspace)
    if not ledger.path.exists() and not ledger.head_path.exists():
        return {"entries": 0}
    report = replay(store, workspace, ledger=ledger)
    log.info("curation replayed after the build of %s: %d entries, %d edges, %d missing",
             graph_hash, report.entries, report.edges, report.n_missing)
    return {k: v for k, v in report.to_dict().items() if k != "missing_edges"} | {
        "missing_edges": report.missing[:10]
    }
