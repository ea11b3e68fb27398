"""Which cases were built on edges curators changed, so just those can be regenerated.

A case "uses" an edge when its thinking graph has the edge on a path or as the association
behind its evidence (the (:Case)-[:USES_EDGE]->(:EdgeRef) records of graphkit.thinking).
Those records are rewritten when thinking graphs are built again and vanish with a graph
rebuild, so each change also records, at the moment it is made, the cases that used the edge
(``<workspace>/curation/affected.jsonl``, one line per ledger entry). The affected cases of a
change are the recorded ones plus those the live graph names now; an added edge also affects
the cases it may explain (one of its ends is an unexplained target); a changed mapping affects
the samples whose items it maps (found in the sample files when they are given).

``generate cases --only-affected`` regenerates the affected samples of an output directory
since the last time it did so (``<workspace>/curation/marks.json`` keeps that point per output).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graphkit.atomic import atomic_write_text
from graphkit.curation.graph import MAPS_TO
from graphkit.curation.ledger import Entry, Ledger

log = logging.getLogger(__name__)

RECORDS = "affected.jsonl"
MARKS = "marks.json"


@dataclass
class AffectedCase:
    sample_id: str
    task: str
    edges: list[str] = field(default_factory=list)  # edge ids of the changes behind it
    entries: list[int] = field(default_factory=list)  # their ledger entry numbers
    reasons: list[str] = field(default_factory=list)  # "used", "may explain", "maps an item"

    def to_dict(self) -> dict:
        return {"sample_id": self.sample_id, "task": self.task, "edges": self.edges, "entries": self.entries,
                "reasons": self.reasons}


def record_users(workspace, entry: Entry, users: Sequence[dict]) -> None:
    """Remember the cases that used an edge when it changed (one line, appended and fsynced)."""
    if not users:
        return
    line = json.dumps({
        "seq": entry.seq, "hash": entry.hash, "edge_id": entry.edge_id,
        "cases": sorted({(u["sample_id"] or u["case_id"], u["task"] or "") for u in users}),
    }, separators=(",", ":")) + "\n"
    path = workspace.curation / RECORDS
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def recorded_users(workspace, ledger_entries: Sequence[Entry]) -> dict[int, list[tuple[str, str]]]:
    """Ledger seq -> (sample_id, task) recorded for it; lines of another ledger history are ignored."""
    path = workspace.curation / RECORDS
    if not path.is_file():
        return {}
    hashes = {entry.seq: entry.hash for entry in ledger_entries}
    found: dict[int, list[tuple[str, str]]] = {}
    with open(path, "rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break  # a torn last line: that record is lost, the live usage records still count
            try:
                record = json.loads(line)
            except ValueError:
                log.warning("skipping an unreadable line of %s", path)
                continue
            if hashes.get(record.get("seq")) == record.get("hash"):
                found.setdefault(record["seq"], []).extend(tuple(case) for case in record["cases"])
    return found


def affected_cases(
    ledger: Ledger,
    workspace,
    *,
    store=None,
    since: str | int | None = None,
    samples: Sequence[Path] | None = None,
) -> tuple[list[AffectedCase], list[Entry]]:
    """The cases affected by the status changes and additions after ``since`` (annotations change
    nothing), sorted by sample id, and those ledger entries."""
    entries = [e for e in ledger.since(since) if e.op != "annotate"]
    recorded = recorded_users(workspace, entries)
    found: dict[str, AffectedCase] = {}

    def note(sample_id: str, task: str, entry: Entry, reason: str) -> None:
        case = found.setdefault(sample_id, AffectedCase(sample_id, task))
        if entry.edge_id not in case.edges:
            case.edges.append(entry.edge_id)
        if entry.seq not in case.entries:
            case.entries.append(entry.seq)
        if reason not in case.reasons:
            case.reasons.append(reason)

    for entry in entries:
        for sample_id, task in recorded.get(entry.seq, []):
            note(sample_id, task, entry, "used")
        if store is not None:
            for row in store.run("thinking_cases_using_edge", edge_id=entry.edge_id):
                note(row["sample_id"] or row["case_id"], row["task"] or "", entry, "used")
            if entry.op == "add" and entry.edge.relation != MAPS_TO:
                for row in store.run("curation_cases_unexplained", cuis=[entry.edge.source, entry.edge.target]):
                    note(row["sample_id"] or row["case_id"], row["task"] or "", entry, "may explain")
    mappings = [e for e in entries if e.edge.relation == MAPS_TO]
    if samples and mappings:
        for sample_id, task, key in _samples_with_items(samples, {e.edge.source for e in mappings}):
            for entry in mappings:
                if entry.edge.source == key:
                    note(sample_id, task, entry, "maps an item")
    return sorted(found.values(), key=lambda case: case.sample_id), entries


def _samples_with_items(paths: Sequence[Path], keys: set[str]) -> Iterable[tuple[str, str, str]]:
    import polars as pl

    from graphkit.thinking.samples import scan_samples

    frame = scan_samples(list(paths))
    parts = [
        frame.select(pl.col("id").cast(pl.String), pl.col("task").cast(pl.String), pl.col(column).alias("item"))
        .explode("item")
        .filter(pl.col("item").is_not_null())
        .select("id", "task", pl.col("item").struct.field("key").cast(pl.String).alias("key"))
        for column in ("context_items", "target_items")
    ]
    hits = pl.concat(parts).filter(pl.col("key").is_in(list(keys))).unique().sort("id", "key").collect()
    return hits.iter_rows()


# ---- regenerating an output directory
def _marks_path(workspace) -> Path:
    return workspace.curation / MARKS


def last_mark(workspace, out: Path) -> dict | None:
    path = _marks_path(workspace)
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get(str(Path(out).resolve()))


def save_mark(workspace, out: Path, entry: Entry | None) -> None:
    path = _marks_path(workspace)
    marks = json.loads(path.read_text()) if path.is_file() else {}
    marks[str(Path(out).resolve())] = {"seq": entry.seq if entry else 0, "hash": entry.hash if entry else ""}
    atomic_write_text(path, json.dumps(marks, indent=1, sort_keys=True) + "\n")


def affected_for_generation(
    workspace, out: Path, samples: Sequence[Path], since: str | None = None
) -> tuple[set[str], Callable[[], None]]:
    """The sample ids of ``out`` to regenerate, and a function that records they were.

    Without ``since``: the changes after the last --only-affected run on ``out`` (all changes
    the first time). Reads the live usage records when the workspace has a graph server.
    """
    ledger = Ledger.of(workspace)
    if since is None:
        mark = last_mark(workspace, out)
        since = str(mark["seq"]) if mark else None
    store = _open_store_if_any(workspace)
    try:
        cases, entries = affected_cases(ledger, workspace, store=store, since=since, samples=samples)
    finally:
        if store is not None:
            store.close()
    head = ledger.head
    log.info("%d affected samples from %d ledger changes", len(cases), len(entries))
    return {case.sample_id for case in cases}, lambda: save_mark(workspace, out, head)


def _open_store_if_any(workspace):
    """The workspace's graph (the backend of EHR_R1_GRAPH_BACKEND), or None when none was built."""
    from graphkit.store import open_store

    backend = os.environ.get("EHR_R1_GRAPH_BACKEND", "embedded")
    if backend == "embedded" and not (workspace.root / "graph" / "falkordb").exists():
        log.warning("no graph in %s: only the cases recorded with each change are regenerated", workspace.root)
        return None
    return open_store(workspace, backend)
