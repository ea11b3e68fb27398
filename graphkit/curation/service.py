"""Curation changes: checked, written to the ledger, applied at once to the live graph.

    from graphkit.curation import Curation, EdgeKey
    with open_store(workspace) as store:
        curation = Curation(store, workspace)
        entry = curation.reject("C0025598|MAY_TREAT|C0011860|RXNORM", curator="alice",
                                reason="wrong direction", evidence=["PMID:123"])

Every change runs under the ledger's writers' lock, in this order: re-read the ledger, check
the change against the ledger and the live graph (an ``expected_version`` that is no longer
the edge's version refuses the change with ``StaleEditError``), append the entry durably,
apply it to the graph, record the cases that used the edge, update the thinking snapshot.
Two writers (CLI and web page, any processes) therefore never interleave, and the graph sees
their changes in ledger order. If the graph cannot be reached after the entry was written, the
entry stays (the ledger is the record) and ``ehr-r1 curate replay`` applies it later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from graphkit.curation import affected as affected_records
from graphkit.curation.graph import (
    CURATOR_SAB,
    MAPS_TO,
    add_edges,
    check_addable,
    check_curatable,
    fetch_edge,
    missing_endpoints,
    resolve_edge,
    set_status,
    sync_snapshot,
)
from graphkit.curation.ledger import Change, EdgeKey, Entry, Ledger
from graphkit.errors import ConfigError, EhrR1Error, InputError, LedgerError

log = logging.getLogger(__name__)


class StaleEditError(EhrR1Error):
    """A change decided on an edge that someone else changed in the meantime."""


@dataclass(frozen=True)
class Applied:
    """What applying one entry to the graph did."""

    found: bool
    snapshot: str
    users: int


class Curation:
    """Curation of one graph (an open store) with the workspace's ledger."""

    def __init__(self, store, workspace, *, ledger: Ledger | None = None, graph: str | None = None):
        self.store = store
        self.workspace = workspace
        self.ledger = ledger or Ledger.of(workspace)
        self.graph = graph or getattr(store, "graph_name", "kg")

    # ---- addressing edges
    def resolve(self, edge: str | EdgeKey) -> EdgeKey:
        if isinstance(edge, EdgeKey):
            return edge
        self.ledger.refresh()
        return resolve_edge(self.store, edge, self.ledger.key_of)

    def live(self, key: EdgeKey) -> dict | None:
        return fetch_edge(self.store, key)

    # ---- changes
    def reject(self, edge, *, curator: str, reason: str, evidence: Iterable[str] = (),
               expected_version: int | None = None) -> Entry:
        return self.change("reject", edge, curator=curator, reason=reason, evidence=evidence,
                           expected_version=expected_version)

    def restore(self, edge, *, curator: str, reason: str, evidence: Iterable[str] = (),
                expected_version: int | None = None) -> Entry:
        return self.change("restore", edge, curator=curator, reason=reason, evidence=evidence,
                           expected_version=expected_version)

    def annotate(self, edge, *, curator: str, reason: str, evidence: Iterable[str] = ()) -> Entry:
        """A note on an edge; changes no status, so it never conflicts with another change."""
        return self.change("annotate", edge, curator=curator, reason=reason, evidence=evidence)

    def add(self, source: str, relation: str, target: str, *, curator: str, reason: str,
            evidence: Iterable[str] = (), sab: str | None = None, rela: str | None = None,
            rel: str | None = None) -> Entry:
        """A new edge with curator provenance (SAB "CURATOR" unless given; MAPS_TO has none)."""
        sab = "" if relation == MAPS_TO else (sab or CURATOR_SAB)
        key = EdgeKey(source, relation, target, sab)
        properties = {} if relation == MAPS_TO else {"rela": rela or relation.lower(), "rel": rel or ""}
        return self.change("add", key, curator=curator, reason=reason, evidence=evidence, properties=properties)

    def change(self, op: str, edge, *, curator: str, reason: str, evidence: Iterable[str] = (),
               properties: Mapping[str, str] | None = None, expected_version: int | None = None) -> Entry:
        key = self.resolve(edge)
        (check_addable if op == "add" else check_curatable)(key)
        change = Change(op, key, curator, reason, tuple(evidence), dict(properties or {}))

        def check(ledger: Ledger) -> None:
            current = ledger.version(key)
            if expected_version is not None and op != "annotate" and current != expected_version:
                last = ledger.history(key)[-1] if current else None
                raise StaleEditError(
                    "this edge was changed after you looked at it"
                    + (f": entry {last.seq}, {last.op} by {last.curator} at {last.time} ({last.reason})" if last else ""),
                    where=f"edge {key.text}",
                    value=f"version {expected_version}, now {current}",
                    fix="look at the edge again and decide on its current state",
                )
            self._check_against_graph(op, key, ledger)

        return self.ledger.append(change, check=check, then=self._apply)

    def _check_against_graph(self, op: str, key: EdgeKey, ledger: Ledger) -> None:
        live = fetch_edge(self.store, key)
        if op == "add":
            if live is not None:
                raise ConfigError(
                    f"the graph already has this edge (source {live.get('source')}, status {live['status']})",
                    where=f"edge {key.text}",
                    fix="restore it if it is rejected; annotate it to add a note",
                )
            missing = missing_endpoints(self.store, key)
            if missing:
                raise InputError("the edge's ends are not in the graph", where=f"edge {key.text}", value=missing,
                                 fix="use CUIs (and item ids for MAPS_TO) that the graph has")
            return
        if live is None:
            if op == "annotate" and ledger.history(key):
                return  # a note on an edge the graph has lost (e.g. gone from a new release)
            raise InputError("no such edge in the graph", where=f"edge {key.text}",
                             fix="check the key with `ehr-r1 curate show` (SAB included)")
        wanted = {"reject": "active", "restore": "rejected"}.get(op)
        if wanted and live["status"] != wanted:
            last = ledger.history(key)[-1] if ledger.history(key) else None
            raise ConfigError(
                f"the edge is already {live['status']}"
                + (f" (entry {last.seq}, {last.op} by {last.curator})" if last else ""),
                where=f"edge {key.text}",
                fix="nothing to do" if op == "reject" else "only a rejected edge can be restored",
            )

    def _apply(self, entry: Entry) -> Applied:
        """Apply one entry that is already in the ledger; failures name the replay command."""
        try:
            if entry.op == "add":
                add_edges(self.store, {entry.edge: entry.properties})
            found = True
            if entry.status is not None:
                found = entry.edge_id in set_status(self.store, {entry.edge: entry.status})
            users = []
            if entry.op != "annotate":
                users = self.store.run("thinking_cases_using_edge", edge_id=entry.edge_id)
                affected_records.record_users(self.workspace, entry, users)
            snapshot = "unchanged"
            if entry.status is not None and entry.edge.relation != MAPS_TO:
                snapshot = sync_snapshot(self.workspace, self.graph, {entry.edge_id: entry.status},
                                         added=entry.op == "add")
        except EhrR1Error as exc:
            raise LedgerError(
                f"entry {entry.seq} is in the ledger but could not be applied to the graph ({exc.one_line()})",
                where=str(self.ledger.path),
                fix="run `ehr-r1 curate replay` once the graph is reachable",
            ) from exc
        log.info("entry %d (%s %s) applied; %d cases used the edge", entry.seq, entry.op, entry.edge.text, len(users))
        return Applied(found, snapshot, len(users))
