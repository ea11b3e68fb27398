"""What curation reads from and writes to the graph (all Cypher in cypher/curation_*.cypher).

Curated edges are addressed by their stable key (``EdgeKey``): concept relations and mined
associations match on their endpoints' CUIs and ``edge_id``; item -> concept mappings
(``MAPS_TO``, one per item and concept) on their endpoints. A change sets ``status``
("active" | "rejected"); nothing is ever deleted. Added edges get ``source: "curator"``.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from graphkit.curation.ledger import EdgeKey
from graphkit.errors import ConfigError, InputError
from graphkit.store.vocab import ENGINE_TYPES, check_relation_type

log = logging.getLogger(__name__)

MAPS_TO = "MAPS_TO"
ASSOCIATED_WITH = "ASSOCIATED_WITH"
CURATOR_SAB = "CURATOR"
NOT_CURATED = frozenset(ENGINE_TYPES) - {MAPS_TO, ASSOCIATED_WITH}  # CODE_OF, USES_EDGE
EDGE_ID = re.compile(r"^[0-9a-f]{20}$")
BATCH = 5000


def check_curatable(key: EdgeKey) -> None:
    if key.relation in NOT_CURATED:
        raise ConfigError(
            f"{key.relation} relationships are bookkeeping, not knowledge, and are not curated",
            where="edge relation",
            value=key.relation,
            fix="curate concept relations, MAPS_TO mappings or ASSOCIATED_WITH associations",
        )


def check_addable(key: EdgeKey) -> None:
    check_curatable(key)
    if key.relation == ASSOCIATED_WITH:
        raise ConfigError(
            "associations are mined, not added by hand",
            where="edge relation",
            value=key.relation,
            fix="add a knowledge relation (e.g. MAY_TREAT) instead",
        )
    if key.relation != MAPS_TO:
        check_relation_type(key.relation)


def _row(key: EdgeKey, **extra) -> dict:
    return {"src": key.source, "dst": key.target, "edge_id": key.edge_id, **extra}


def _by_relation(keys: Iterable[EdgeKey]) -> dict[str, list[EdgeKey]]:
    groups: dict[str, list[EdgeKey]] = {}
    for key in keys:
        groups.setdefault(key.relation, []).append(key)
    return groups


def _known_type(store, relation: str) -> bool:
    return relation in store.vocab.types


def _chunks(rows: list, size: int = BATCH) -> Iterable[list]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def fetch_edges(store, keys: Iterable[EdgeKey]) -> dict[str, dict]:
    """edge_id -> the live edge (its properties, ``status`` filled, endpoint names) of each key found."""
    found: dict[str, dict] = {}
    for relation, group in _by_relation(keys).items():
        if relation in NOT_CURATED or not _known_type(store, relation):
            continue
        rows = [_row(key) for key in group]
        for chunk in _chunks(rows):
            if relation == MAPS_TO:
                result = store.run("curation_match_mappings", rows=chunk)
            else:
                result = store.run("curation_match_edges", slots={"rel_type": relation}, rows=chunk)
            for hit in result:
                properties = {k: v for k, v in hit["edge"].items() if not k.startswith("_")}
                properties.setdefault("status", "active")
                found[hit["key"]] = {
                    **properties,
                    "source_name": hit["source_name"],
                    "target_name": hit["target_name"],
                }
    return found


def fetch_edge(store, key: EdgeKey) -> dict | None:
    return fetch_edges(store, [key]).get(key.edge_id)


def set_status(store, statuses: Mapping[EdgeKey, str]) -> set[str]:
    """Set each edge's status; returns the edge ids found (the others are not in the graph)."""
    found: set[str] = set()
    for relation, group in _by_relation(statuses).items():
        if relation in NOT_CURATED or not _known_type(store, relation):
            continue
        rows = [_row(key, status=statuses[key]) for key in group]
        for chunk in _chunks(rows):
            if relation == MAPS_TO:
                result = store.run("curation_set_mapping_status", rows=chunk)
            else:
                result = store.run("curation_set_status", slots={"rel_type": relation}, rows=chunk)
            found.update(hit["key"] for hit in result)
    return found


def add_edges(store, additions: Mapping[EdgeKey, Mapping[str, str]]) -> dict[str, str]:
    """Merge curator-added edges; returns edge_id -> the edge's source ("curator", or the
    release's when it already had the edge). Keys whose endpoints are missing are left out."""
    created: dict[str, str] = {}
    for relation, group in _by_relation(additions).items():
        if relation == MAPS_TO:
            query, slots = "curation_add_mappings", None
        else:
            store.register_relation_types([relation])
            query, slots = "curation_add_edges", {"rel_type": relation}
        rows = [
            _row(key, sab=key.sab or None, rel=additions[key].get("rel"), rela=additions[key].get("rela"))
            for key in group
        ]
        for chunk in _chunks(rows):
            for hit in store.run(query, slots=slots, rows=chunk) if slots else store.run(query, rows=chunk):
                created[hit["key"]] = hit["source"]
    return created


def missing_endpoints(store, key: EdgeKey) -> list[str]:
    """The endpoints of an edge to add that the graph lacks."""
    items = [key.source] if key.relation == MAPS_TO else []
    cuis = [key.target] if items else [key.source, key.target]
    present = {row["key"] for row in store.run("curation_nodes_exist", cuis=cuis, items=items)}
    return [node for node in (*items, *cuis) if node not in present]


def resolve_edge(store, text: str, known: Callable[[str], EdgeKey | None] | None = None) -> EdgeKey:
    """An edge given as its id or as ``SOURCE|RELATION|TARGET[|SAB]`` -> its stable key.

    An id is looked up with ``known`` (the ledger's), then in the usage records, then type by
    type through the edge_id indexes. A key without SAB is completed from the graph when one
    edge fits.
    """
    text = text.strip()
    if EDGE_ID.match(text):
        if known is not None and (key := known(text)) is not None:
            return key
        ref = store.run("curation_edge_ref", edge_id=text)
        if ref:
            row = ref[0]
            return _complete(store, EdgeKey(row["source"], row["relation"], row["target"]), text)
        for relation in sorted(store.vocab.relation_types | {ASSOCIATED_WITH}):
            hit = store.run("curation_edge_by_id", slots={"rel_type": relation}, edge_id=text)
            if hit:
                return EdgeKey(hit[0]["source"], relation, hit[0]["target"], hit[0]["sab"] or "")
        raise InputError(
            "no edge with this id in the graph or the ledger",
            where="edge",
            value=text,
            fix="give the edge as SOURCE|RELATION|TARGET|SAB (see `ehr-r1 curate queue`)",
        )
    key = EdgeKey.parse(text)
    return key if len(text.split("|")) == 4 else _complete(store, key, None)


def _complete(store, key: EdgeKey, wanted_id: str | None) -> EdgeKey:
    """Fill in the SAB of a key from the graph (MAPS_TO has none)."""
    if key.relation == MAPS_TO or key.relation in NOT_CURATED or not _known_type(store, key.relation):
        return key
    rows = store.run(
        "curation_edges_between",
        slots={"src_label": "Concept", "src_key": "cui", "rel_type": key.relation},
        src=key.source,
        dst=key.target,
    )
    candidates = [EdgeKey(key.source, key.relation, key.target, row["sab"] or "") for row in rows]
    if wanted_id is not None:
        candidates = [c for c in candidates if c.edge_id == wanted_id]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        return key
    raise ConfigError(
        "several edges fit this key: add the SAB",
        where="edge",
        value=key.text,
        fix="one of " + ", ".join(c.text for c in candidates[:5]),
    )


def wait_for_indexes(store, timeout: float = 900.0) -> float:
    """Seconds spent waiting until the embedded server's indexes are filled (FalkorDB fills them
    in the background after a load or a restart; until then every keyed lookup scans)."""
    if getattr(store, "dialect", "") != "falkordb":
        return 0.0
    started = time.perf_counter()
    while True:
        pending = [row for row in store.run("curation_index_status") if row["status"] != "OPERATIONAL"]
        waited = time.perf_counter() - started
        if not pending or waited > timeout:
            if pending:
                log.warning("%d indexes still being filled after %.0f s: going on (lookups scan meanwhile)", len(pending), waited)
            return round(waited, 3)
        time.sleep(0.5)


# ---- the thinking snapshot
def snapshot_dir(workspace, graph: str) -> Path:
    """Where `ehr-r1 generate thinking` keeps the CSR snapshot of a graph (graphkit.thinking.run)."""
    return workspace.root / "graph" / "snapshot" / graph


def sync_snapshot(workspace, graph: str, statuses: Mapping[str, str], *, added: bool = False) -> str:
    """Bring a saved thinking snapshot in line with status changes (edge_id -> status).

    The snapshot is reused while the graph hash is unchanged, which a curation change does not
    alter: rejections and restorations are written into its ``active`` mask; an added edge
    changes the adjacency itself, so the snapshot is dropped and the next thinking run exports
    a fresh one. Returns what was done.
    """
    from graphkit.atomic import atomic_path
    from graphkit.thinking.snapshot import Snapshot

    directory = snapshot_dir(workspace, graph)
    if not (directory / "meta.json").is_file():
        return "no snapshot"
    if added:
        shutil.rmtree(directory, ignore_errors=True)
        log.info("dropped the thinking snapshot %s: an added edge needs a fresh export", directory)
        return "dropped"
    try:
        snapshot = Snapshot.load(directory)
    except (InputError, OSError, ValueError) as exc:
        log.warning("cannot update the thinking snapshot %s (%s): dropping it", directory, exc)
        shutil.rmtree(directory, ignore_errors=True)
        return "dropped"
    changed = 0
    for status in ("rejected", "active"):
        ids = [edge for edge, value in statuses.items() if value == status]
        if ids:
            changed += snapshot.set_active(ids, status == "active")
    if changed:
        import numpy as np

        with atomic_path(directory / "active.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, snapshot.active)
    return f"{changed} edges updated"

