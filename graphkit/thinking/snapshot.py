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
_ARRAYS = (
    "cuis", "indptr", "nbr", "entry_edge", "forward", "edge_src", "edge_dst", "edge_type", "active",
    "edge_ids", "edge_sab", "edge_rela", "edge_source",
)
_RECORD_CACHE = 200_000  # model edges kept per adjacency (paths reuse a small part of the graph)
_CODED = ("type", "sab", "rela", "source")  # edge columns stored as codes into a sorted vocabulary


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
    edge_type: np.ndarray  # (m,) int32 codes into vocab["type"]
    active: np.ndarray  # (m,) bool: status != "rejected"
    edge_ids: np.ndarray  # (m,) bytes (UTF-8), ascending
    edge_sab: np.ndarray  # (m,) int32 codes into vocab["sab"]
    edge_rela: np.ndarray  # (m,) int32 codes into vocab["rela"]
    edge_source: np.ndarray  # (m,) int32 codes into vocab["source"]
    vocab: dict[str, list[str]]
    concepts: pl.DataFrame  # CONCEPT_COLUMNS, row i = node i
    meta: dict

    @property
    def types(self) -> list[str]:
        return self.vocab["type"]

    # ---- building
    @classmethod
    def from_frames(cls, concepts: pl.DataFrame, edges: pl.DataFrame, meta: dict | None = None) -> Snapshot:
        """``concepts``: cui [, name, semantic_type, semantic_group]; ``edges``: EDGE_COLUMNS (src/dst CUIs).

        Or, as the FalkorDB export gives them, concepts with the store's node ``id`` and edges with
        ``src_id``/``dst_id`` in place of src/dst. Edges whose ends are not concepts, self-loops and
        repeated edge ids are dropped (counted in meta).
        """
        started = time.perf_counter()
        by_id = "src_id" in edges.columns
        ends = ("src_id", "dst_id") if by_id else ("src", "dst")
        for name, frame, needed in (
            ("concepts", concepts, ("cui", "id") if by_id else ("cui",)),
            ("edges", edges, (*ends, "type", "edge_id")),
        ):
            missing = [c for c in needed if c not in frame.columns]
            if missing:
                raise InputError("missing columns", where=f"snapshot {name}", value=missing, fix=f"give {list(needed)}")
        concepts = (
            _empty(concepts, CONCEPT_COLUMNS)
            .with_columns([pl.col(c).cast(pl.String).fill_null("") for c in CONCEPT_COLUMNS])
            .unique("cui", keep="first")
            .sort("cui")
        )
        edges = _empty(edges, EDGE_COLUMNS[2:]).with_columns([pl.col(c).cast(pl.String) for c in EDGE_COLUMNS[2:]])
        n_given, n = edges.height, concepts.height
        if by_id:
            node_ids = concepts["id"].cast(pl.Int64).to_numpy()
            position = np.full(int(max(node_ids.max(initial=-1), edges["src_id"].max() or 0, edges["dst_id"].max() or 0)) + 1, -1)
            position[node_ids] = np.arange(n)
            src = position[edges["src_id"].fill_null(0).to_numpy()]
            dst = position[edges["dst_id"].fill_null(0).to_numpy()]
            keep = (src >= 0) & (dst >= 0) & edges["src_id"].is_not_null().to_numpy() & edges["dst_id"].is_not_null().to_numpy()
        else:
            # CUI -> node handle by an Enum over the sorted CUIs (its codes are the positions):
            # cheaper than joining millions of strings
            nodes = pl.Enum(concepts["cui"])
            src_codes = edges["src"].cast(nodes, strict=False).to_physical()
            dst_codes = edges["dst"].cast(nodes, strict=False).to_physical()
            keep = (src_codes.is_not_null() & dst_codes.is_not_null()).to_numpy()
            src = src_codes.fill_null(0).to_numpy()
            dst = dst_codes.fill_null(0).to_numpy()
        concepts = concepts.select(CONCEPT_COLUMNS)
        ids = _utf8_array(edges["edge_id"].fill_null(""))
        keep &= (src != dst) & (ids != b"")
        order = np.flatnonzero(keep)
        order = order[np.argsort(ids[order], kind="stable")]  # edge handles in edge_id order
        sorted_ids = ids[order]
        first = np.ones(order.size, dtype=bool)
        np.not_equal(sorted_ids[1:], sorted_ids[:-1], out=first[1:])  # a repeated edge_id keeps its first row
        order, sorted_ids = order[first], sorted_ids[first]
        m = order.size
        edge_src = src[order].astype(np.int32)
        edge_dst = dst[order].astype(np.int32)
        vocab, codes = {}, {}
        for column in _CODED:
            values = edges[column].fill_null("")
            vocab[column] = sorted(values.unique().to_list())
            codes[column] = values.cast(pl.Enum(vocab[column])).to_physical().to_numpy()[order].astype(np.int32)
        active = (edges["status"].fill_null("active") != "rejected").to_numpy()[order]
        snapshot = cls(
            cuis=concepts["cui"].to_numpy().astype(str),
            **_csr(n, edge_src, edge_dst),
            edge_src=edge_src,
            edge_dst=edge_dst,
            edge_type=codes["type"],
            active=active,
            edge_ids=sorted_ids,
            edge_sab=codes["sab"],
            edge_rela=codes["rela"],
            edge_source=codes["source"],
            vocab=vocab,
            concepts=concepts,
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
            atomic_write_text(tmp / "meta.json", json.dumps({**self.meta, "vocab": self.vocab}, indent=1))
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
        # plain ndarray views of the maps: numpy.memmap indexing goes through Python code
        arrays = {
            name: np.load(directory / f"{name}.npy", mmap_mode="r" if mmap else None).view(np.ndarray)
            for name in _ARRAYS
        }
        arrays["active"] = np.array(arrays["active"])  # writable: curation updates
        vocab = meta.pop("vocab")
        return cls(**arrays, vocab=vocab, concepts=pl.read_parquet(directory / "concepts.parquet"), meta=meta)

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
        wanted = np.array([e.encode() for e in edge_ids], dtype=bytes)
        if wanted.size == 0 or self.n_edges == 0:
            return np.full(wanted.size, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.edge_ids, wanted), self.n_edges - 1)
        return np.where(self.edge_ids[pos] == wanted, pos, -1).astype(np.int64)

    def set_active(self, edge_ids: Iterable[str], active: bool) -> int:
        """Apply curation (reject: active=False, restore: True) without a rebuild; returns edges changed."""
        handles = self.edge_handles(edge_ids)
        handles = handles[handles >= 0]
        changed = int((self.active[handles] != active).sum())
        self.active[handles] = active
        return changed

    def adjacency(self, options: SearchOptions | None = None) -> SnapshotAdjacency:
        return SnapshotAdjacency(self, options or SearchOptions())


def _utf8_array(values: pl.Series) -> np.ndarray:
    """A string column as fixed-width UTF-8 bytes (numpy ``S``), whose order is the strings' order.

    Ids of one width (hashes, as the store's) are viewed straight from the Arrow buffer.
    """
    arrow = values.rechunk().to_arrow()
    lengths = values.str.len_bytes()
    width = int(lengths.max() or 0) if values.len() else 0
    uniform = values.len() and width and int(lengths.min()) == width and values.null_count() == 0
    if uniform and str(arrow.type) == "large_string" and arrow.offset == 0:
        offsets = np.frombuffer(arrow.buffers()[1], dtype=np.int64, count=values.len() + 1)
        if offsets[0] == 0:
            return np.frombuffer(arrow.buffers()[2], dtype=f"S{width}", count=values.len()).copy()
    return np.array([v.encode() for v in values.to_list()], dtype=f"S{max(width, 1)}")


def _csr(n: int, src: np.ndarray, dst: np.ndarray) -> dict[str, np.ndarray]:
    """Each edge listed under both ends; a node's entries in edge-handle (= edge_id) order."""
    m = src.size
    owner = np.concatenate([src, dst]).astype(np.int64)
    edges = np.concatenate([np.arange(m, dtype=np.int64), np.arange(m, dtype=np.int64)])
    order = np.argsort(owner * max(m, 1) + edges)
    counts = np.bincount(owner, minlength=n) if m else np.zeros(n, dtype=np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return {
        "indptr": indptr,
        "nbr": np.concatenate([dst, src]).astype(np.int32)[order],
        "entry_edge": edges.astype(np.int32)[order],
        "forward": np.concatenate([np.ones(m, bool), np.zeros(m, bool)])[order],
    }


class SnapshotAdjacency:
    """The search's view of a snapshot under one set of options (allowed types, active edges)."""

    def __init__(self, snapshot: Snapshot, options: SearchOptions):
        self.snapshot = snapshot
        self.options = options
        type_allowed = np.array([t not in options.excluded_types for t in snapshot.types] or [False], dtype=bool)
        self.allowed = snapshot.active & type_allowed[snapshot.edge_type] if snapshot.n_edges else snapshot.active
        n = snapshot.n_nodes
        out_degree = np.bincount(snapshot.edge_src[self.allowed], minlength=n)
        in_degree = np.bincount(snapshot.edge_dst[self.allowed], minlength=n)
        self._degree = {OUT: out_degree, IN: in_degree, BOTH: out_degree + in_degree}
        self._records: dict[int, Edge] = {}

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

    def degrees(self, nodes: np.ndarray, mode: str) -> np.ndarray:
        return self._degree[mode][nodes]

    def edge_keys(self, edges: np.ndarray) -> np.ndarray:
        return edges  # edge handles are assigned in edge_id order

    def edge_records(self, edges: Iterable[int]) -> dict[int, Edge]:
        return {int(j): self._records.get(int(j)) or self._record(int(j)) for j in edges}

    def _record(self, j: int) -> Edge:
        if len(self._records) >= _RECORD_CACHE:
            self._records.clear()
        snap, vocab = self.snapshot, self.snapshot.vocab
        rel_type = vocab["type"][snap.edge_type[j]]
        record = self._records[j] = Edge(
            edge_id=snap.edge_ids[j].decode(),
            source=str(snap.cuis[snap.edge_src[j]]),
            target=str(snap.cuis[snap.edge_dst[j]]),
            relation=rel_type,
            rela=vocab["rela"][snap.edge_rela[j]],
            sab=vocab["sab"][snap.edge_sab[j]],
            origin=edge_origin(rel_type, vocab["source"][snap.edge_source[j]]),
        )
        return record

    def cuis(self, nodes: Iterable[int]) -> list[str]:
        return [str(c) for c in self.snapshot.cuis[np.asarray(list(nodes), dtype=np.int64)]]

    def concepts(self, cuis: Sequence[str]) -> dict[str, dict]:
        handles = self.lookup(cuis)
        rows = self.snapshot.concepts[[int(h) for h in handles if h >= 0]]
        return {row["cui"]: row for row in rows.iter_rows(named=True)}
