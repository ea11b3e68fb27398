"""An in-memory adjacency snapshot of the concept graph (CSR numpy arrays) for batch path search.

    snap = Snapshot.from_store(store)            # or Snapshot.from_frames(concepts, edges)
    snap.save(workspace.graph / "snapshot")      # .npy arrays + parquet attributes + meta.json
    snap = Snapshot.load(path)                   # arrays memory-mapped: cheap in forked workers
    finder = PathFinder(snap.adjacency(SearchOptions()))

Layout: concepts sorted by CUI (the node handle is the position); every concept-to-concept
relationship is one edge (src, dst, type, edge_id, status, sab, rela, source), numbered in
edge_id order (so handle order is the search's tie-break order); the CSR lists each
edge under both ends with a ``forward`` flag, so one structure serves "forward" and "both"
searches. Rejected edges stay in the snapshot with ``active`` False (never traversed); a curation
change can be applied without a rebuild (``set_active``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from graphkit.atomic import atomic_dir, atomic_write_text
from graphkit.errors import InputError
from graphkit.thinking.model import Edge
from graphkit.thinking.options import ASSOCIATION_TYPE, SearchOptions
from graphkit.thinking.search import BOTH, IN, OUT

log = logging.getLogger(__name__)

FORMAT = "ehr-r1-thinking-snapshot"
VERSION = 1
CONCEPT_COLUMNS = ("cui", "name", "semantic_type", "semantic_group")
EDGE_COLUMNS = ("src", "dst", "type", "edge_id", "status", "sab", "rela", "source")
_ARRAYS = ("cuis", "indptr", "nbr", "entry_edge", "forward", "edge_src", "edge_dst", "edge_type", "active")


def edge_origin(rel_type: str, source: str | None) -> str:
    if rel_type == ASSOCIATION_TYPE:
        return "association"
    if source == "curator":
        return "curator"
    return "umls"


def _empty(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    return frame.with_columns([pl.lit("").alias(c) for c in columns if c not in frame.columns])


@dataclass
class Snapshot:
    cuis: np.ndarray  # (n,) str, sorted
    indptr: np.ndarray  # (n + 1,) int64
    nbr: np.ndarray  # (2m,) int32: the other end of each CSR entry
    entry_edge: np.ndarray  # (2m,) int32: edge handle of each CSR entry
    forward: np.ndarray  # (2m,) bool: the entry's node is the edge's source
    edge_src: np.ndarray  # (m,) int32
    edge_dst: np.ndarray  # (m,) int32
    edge_type: np.ndarray  # (m,) int16 into ``types``
    active: np.ndarray  # (m,) bool: status != "rejected"
    types: list[str]
    concepts: pl.DataFrame  # CONCEPT_COLUMNS, row i = node i
    edge_info: pl.DataFrame  # edge_id, sab, rela, source; row j = edge j
    meta: dict

    # ---- building
    @classmethod
    def from_frames(cls, concepts: pl.DataFrame, edges: pl.DataFrame, meta: dict | None = None) -> Snapshot:
        """``concepts``: cui [, name, semantic_type, semantic_group]; ``edges``: EDGE_COLUMNS (src/dst CUIs).

        Edges whose ends are not concepts, self-loops and duplicate edge ids are dropped (counted in meta).
        """
        started = time.perf_counter()
        for name, frame, needed in (("concepts", concepts, ("cui",)), ("edges", edges, ("src", "dst", "type", "edge_id"))):
            missing = [c for c in needed if c not in frame.columns]
            if missing:
                raise InputError("missing columns", where=f"snapshot {name}", value=missing, fix=f"give {list(needed)}")
        concepts = (
            _empty(concepts, CONCEPT_COLUMNS)
            .select([pl.col(c).cast(pl.String).fill_null("") for c in CONCEPT_COLUMNS])
            .unique("cui", keep="first")
            .sort("cui")
        )
        edges = _empty(edges, EDGE_COLUMNS).select([pl.col(c).cast(pl.String) for c in EDGE_COLUMNS])
        n_given = edges.height
        index = concepts.select("cui").with_row_index("i")
        edges = (
            edges.filter(pl.col("src") != pl.col("dst"))
            .unique("edge_id", keep="first")
            .join(index.rename({"cui": "src", "i": "s"}), on="src", how="inner")
            .join(index.rename({"cui": "dst", "i": "d"}), on="dst", how="inner")
            .sort("edge_id")
        )
        types = sorted(edges["type"].unique().to_list())
        n, m = concepts.height, edges.height
        edge_src = edges["s"].to_numpy().astype(np.int32)
        edge_dst = edges["d"].to_numpy().astype(np.int32)
        edge_type = edges["type"].cast(pl.Enum(types)).to_physical().to_numpy().astype(np.int16)
        active = (edges["status"].fill_null("active") != "rejected").to_numpy()
        snapshot = cls(
            cuis=concepts["cui"].to_numpy().astype(str),
            **_csr(n, edge_src, edge_dst),
            edge_src=edge_src,
            edge_dst=edge_dst,
            edge_type=edge_type,
            active=active,
            types=types,
            concepts=concepts,
            edge_info=edges.select(
                "edge_id", *[pl.col(c).fill_null("") for c in ("sab", "rela", "source")]
            ),
            meta={
                **(meta or {}),
                "format": FORMAT,
                "version": VERSION,
                "concepts": n,
                "edges": m,
                "edges_dropped": n_given - m,
                "rejected": int(m - active.sum()),
                "build_seconds": round(time.perf_counter() - started, 3),
            },
        )
        log.info("snapshot: %d concepts, %d edges (%d dropped) in %.1f s", n, m, n_given - m, snapshot.meta["build_seconds"])
        return snapshot

    @classmethod
    def from_store(cls, store, *, page_size: int = 200_000, progress=None) -> Snapshot:
        """Export every concept and concept-to-concept relationship of the store (rejected ones flagged)."""
        from graphkit.thinking.store_io import export_concept_graph

        started = time.perf_counter()
        concepts, edges, meta = export_concept_graph(store, page_size=page_size, progress=progress)
        exported = time.perf_counter() - started
        snapshot = cls.from_frames(concepts, edges, meta)
        snapshot.meta["export_seconds"] = round(exported, 3)
        return snapshot

    # ---- persistence
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        with atomic_dir(directory) as tmp:
            for name in _ARRAYS:
                np.save(tmp / f"{name}.npy", getattr(self, name))
            self.concepts.write_parquet(tmp / "concepts.parquet")
            self.edge_info.write_parquet(tmp / "edge_info.parquet")
            atomic_write_text(tmp / "meta.json", json.dumps({**self.meta, "types": self.types}, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> Snapshot:
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.is_file():
            raise InputError("not a snapshot folder", where=str(directory), fix="build one with Snapshot.save")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise InputError(
                "snapshot format not understood", where=str(meta_path),
                value=(meta.get("format"), meta.get("version")), fix="rebuild the snapshot",
            )
        arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r" if mmap else None) for name in _ARRAYS}
        arrays["cuis"] = np.asarray(arrays["cuis"])
        arrays["active"] = np.array(arrays["active"])  # writable: curation updates
        types = meta.pop("types")
        return cls(
            **arrays,
            types=types,
            concepts=pl.read_parquet(directory / "concepts.parquet"),
            edge_info=pl.read_parquet(directory / "edge_info.parquet"),
            meta=meta,
        )

    # ---- access
    @property
    def n_nodes(self) -> int:
        return int(self.cuis.size)

    @property
    def n_edges(self) -> int:
        return int(self.edge_src.size)

    def lookup(self, cuis: Sequence[str]) -> np.ndarray:
        wanted = np.asarray(list(cuis), dtype=str)
        if wanted.size == 0 or self.cuis.size == 0:
            return np.full(wanted.size, -1, dtype=np.int64)
        pos = np.searchsorted(self.cuis, wanted)
        pos_clipped = np.minimum(pos, self.cuis.size - 1)
        return np.where(self.cuis[pos_clipped] == wanted, pos_clipped, -1).astype(np.int64)

    def edge_handles(self, edge_ids: Iterable[str]) -> np.ndarray:
        ids = self.edge_info["edge_id"]
        wanted = pl.Series(list(edge_ids), dtype=pl.String)
        pos = ids.search_sorted(wanted, side="left").to_numpy()
        pos = np.minimum(pos, max(self.n_edges - 1, 0))
        found = ids.gather(pos).to_numpy() == wanted.to_numpy() if self.n_edges else np.zeros(len(wanted), bool)
        return np.where(found, pos, -1).astype(np.int64)

    def set_active(self, edge_ids: Iterable[str], active: bool) -> int:
        """Apply curation (reject: active=False, restore: True) without a rebuild; returns edges changed."""
        handles = self.edge_handles(edge_ids)
        handles = handles[handles >= 0]
        changed = int((self.active[handles] != active).sum())
        self.active[handles] = active
        return changed

    def adjacency(self, options: SearchOptions | None = None) -> SnapshotAdjacency:
        return SnapshotAdjacency(self, options or SearchOptions())


def _csr(n: int, src: np.ndarray, dst: np.ndarray) -> dict[str, np.ndarray]:
    m = src.size
    owner = np.concatenate([src, dst]).astype(np.int64)
    order = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=n) if m else np.zeros(n, dtype=np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    edges = np.concatenate([np.arange(m, dtype=np.int32), np.arange(m, dtype=np.int32)])
    return {
        "indptr": indptr,
        "nbr": np.concatenate([dst, src]).astype(np.int32)[order],
        "entry_edge": edges[order],
        "forward": np.concatenate([np.ones(m, bool), np.zeros(m, bool)])[order],
    }


class SnapshotAdjacency:
    """The search's view of a snapshot under one set of options (allowed types, active edges)."""

    def __init__(self, snapshot: Snapshot, options: SearchOptions):
        self.snapshot = snapshot
        self.options = options
        type_allowed = np.array([t not in options.excluded_types for t in snapshot.types] or [False], dtype=bool)
        self.allowed = snapshot.active & type_allowed[snapshot.edge_type] if snapshot.n_edges else snapshot.active

    @property
    def n_nodes(self) -> int:
        return self.snapshot.n_nodes

    def lookup(self, cuis: Sequence[str]) -> np.ndarray:
        return self.snapshot.lookup(cuis)

    def expand(self, nodes: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        snap = self.snapshot
        starts = snap.indptr[nodes]
        counts = snap.indptr[nodes + 1] - starts
        total = int(counts.sum())
        if total == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        entries = np.arange(total, dtype=np.int64) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
        edges = snap.entry_edge[entries]
        keep = self.allowed[edges]
        if mode == OUT:
            keep &= snap.forward[entries]
        elif mode == IN:
            keep &= ~snap.forward[entries]
        elif mode != BOTH:
            raise ValueError(mode)
        origin = np.repeat(nodes, counts)[keep]
        return origin.astype(np.int64), snap.nbr[entries][keep].astype(np.int64), edges[keep].astype(np.int64)

    def edge_keys(self, edges: np.ndarray) -> np.ndarray:
        return edges  # edge handles are assigned in edge_id order

    def edge_records(self, edges: Iterable[int]) -> dict[int, Edge]:
        snap = self.snapshot
        handles = sorted(set(edges))
        if not handles:
            return {}
        info = snap.edge_info[handles]
        records = {}
        for j, row in zip(handles, info.iter_rows(named=True), strict=True):
            rel_type = snap.types[int(snap.edge_type[j])]
            records[j] = Edge(
                edge_id=row["edge_id"],
                source=str(snap.cuis[snap.edge_src[j]]),
                target=str(snap.cuis[snap.edge_dst[j]]),
                relation=rel_type,
                rela=row["rela"],
                sab=row["sab"],
                origin=edge_origin(rel_type, row["source"]),
            )
        return records

    def cuis(self, nodes: Iterable[int]) -> list[str]:
        return [str(c) for c in self.snapshot.cuis[np.asarray(list(nodes), dtype=np.int64)]]

    def concepts(self, cuis: Sequence[str]) -> dict[str, dict]:
        handles = self.lookup(cuis)
        rows = self.snapshot.concepts[[int(h) for h in handles if h >= 0]]
        return {row["cui"]: row for row in rows.iter_rows(named=True)}
