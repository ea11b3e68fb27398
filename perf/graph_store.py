"""The graph store: loading 1M edges three ways, and typed path queries on the 5M-edge graph.

    python -m perf.graph_store            # 1M-edge loads + 5M-edge path queries (~1.5 GB RRF, ~4 GB RAM)
    python -m perf.graph_store --quick    # 100k edges and a 500k-edge path graph: a smoke run
    python -m perf.graph_store --only bulk-load-1M unwind-load-1M

Input: the synthetic UMLS-shaped release of `graphkit.umls.synthetic` (seed 0; 1M edges = 200k
concepts, 5M = 1M concepts), read by `graphkit.umls.open_release(...).materialize` into
perf/_scratch/graph_store/ once; making it is a set-up, not measured. The 5M-edge graph is
bulk loaded once into perf/_scratch/graph_store/ws-5M (also a set-up). Targets (2 cores):

- bulk-load-1M: `EmbeddedStore.bulk_load` (vectorized GRAPH.BULK into a staging graph, renamed
  over the live one) of 1M edges + their concepts, `load_seconds <= 20` (edge ids hashed,
  endpoints resolved, tokens encoded and sent); `schema_seconds` (indexes, constraints) apart.
- unwind-load-1M (peer): the same rows through `merge_nodes` / `merge_relationships`, batched
  `UNWIND $rows ... MERGE` of 5,000 rows: what the neo4j backend and incremental builds use.
- falkordb-bulk-loader-1M (peer): the same graph through falkordb-bulk-loader's own CSV reader
  (CSV writing excluded), the path the vectorized encoder replaces.
- typed-paths-5M: `typed_paths` (allShortestPaths, 6 clinical relation types, stored direction,
  active edges only, <= 6 hops, limit 10) between pairs joined by such a path (forward random
  walks), through the store's Python API: `p50_ms <= 20`, `p95_ms <= 100`. Beside it, fewer
  `typed_paths_any_direction` queries (steps either way: far slower around hub concepts) and
  the server's start (loading the graph from disk).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import time
from pathlib import Path

from perf.harness import REPO, Case, main_for

SUITE = "graph_store"
SCRATCH = REPO / "perf" / "_scratch" / "graph_store"
PATH_TYPES = ["ISA", "MAY_TREAT", "HAS_FINDING_SITE", "HAS_MANIFESTATION", "CAUSE_OF", "HAS_CAUSATIVE_AGENT"]
SIZES = {100_000: 20_000, 500_000: 100_000, 1_000_000: 200_000, 5_000_000: 1_000_000}  # edges -> concepts


def _tag(edges: int) -> str:
    return f"{edges // 1_000_000}M" if edges >= 1_000_000 else f"{edges // 1000}k"


def release_dir(edges: int) -> Path:
    return SCRATCH / f"kg-{_tag(edges)}"


def _frames(edges: int):
    import polars as pl

    out = release_dir(edges)
    concepts = pl.read_parquet(out / "concepts.parquet").drop("semantic_type_names")
    relations = pl.read_parquet(out / "relations.parquet")
    return concepts, relations


@contextlib.contextmanager
def _fresh_workspace(name: str):
    """An empty workspace for one loading case, deleted afterwards (a loaded 1M graph is ~200 MB)."""
    ws = SCRATCH / "runs" / name
    shutil.rmtree(ws, ignore_errors=True)
    try:
        yield ws
    finally:
        shutil.rmtree(ws, ignore_errors=True)


# ---------------------------------------------------------------- set-ups (not measured)


def make_release(edges: int) -> dict:
    """Synthetic RRF -> materialized concepts/relations parquet (reused when present)."""
    from graphkit.umls import open_release
    from graphkit.umls.synthetic import generate_synthetic_rrf

    out = release_dir(edges)
    if (out / "stats.json").exists():
        return {"reused": True}
    rrf = SCRATCH / f"rrf-{_tag(edges)}"
    started = time.perf_counter()
    generate_synthetic_rrf(rrf, n_concepts=SIZES[edges], n_relations=edges, seed=0)
    open_release(rrf).materialize(out)
    shutil.rmtree(rrf)
    return {"reused": False, "seconds": time.perf_counter() - started}


def make_path_graph(edges: int) -> dict:
    """The release bulk loaded into a kept workspace; the server is stopped afterwards."""
    from graphkit.store import open_store

    make_release(edges)
    ws = SCRATCH / f"ws-{_tag(edges)}"
    marker = ws / "loaded.json"
    if marker.exists():
        return {"reused": True}
    shutil.rmtree(ws, ignore_errors=True)
    concepts, relations = _frames(edges)
    with open_store(ws, linger=0) as store:
        report = store.bulk_load({"Concept": concepts}, relations)
    marker.write_text(json.dumps(report))
    return {"reused": False, **{k: v for k, v in report.items() if k.endswith("seconds")}}


# ---------------------------------------------------------------- measured functions


def run_bulk_load(edges: int) -> dict:
    from graphkit.store import open_store

    concepts, relations = _frames(edges)
    with _fresh_workspace(f"bulk-{_tag(edges)}") as ws, open_store(ws, linger=0) as store:
        report = store.bulk_load({"Concept": concepts}, relations)
        stored = store.run("count_all_nodes")[0]["n"]
    return {
        "edges": len(relations),
        "nodes": stored,
        "load_seconds": report["load_seconds"],
        "schema_seconds": report["schema_seconds"],
        "edges_per_s": round(len(relations) / report["load_seconds"]),
    }


def run_unwind_load(edges: int, batch_size: int = 5000) -> dict:
    from graphkit.store import open_store

    concepts, relations = _frames(edges)
    with _fresh_workspace(f"unwind-{_tag(edges)}") as ws, open_store(ws, linger=0) as store:
        store.ensure_schema()  # MERGE needs the key index, as in any incremental build
        started = time.perf_counter()
        store.merge_nodes("Concept", concepts.iter_rows(named=True), batch_size=batch_size)
        types = relations["type"].unique().sort().to_list()
        store.register_relation_types(types)
        for (rel_type,), part in relations.partition_by("type", as_dict=True, maintain_order=True).items():
            rows = (
                {k: v for k, v in row.items() if v != ""} for row in part.drop("type").iter_rows(named=True)
            )
            store.merge_relationships(rel_type, rows, batch_size=batch_size)
        seconds = time.perf_counter() - started
    return {
        "edges": len(relations),
        "load_seconds": round(seconds, 3),
        "edges_per_s": round(len(relations) / seconds),
    }


def run_stock_bulk_loader(edges: int) -> dict:
    """falkordb-bulk-loader's CSV path, driven in-process (its click command would sys.exit)."""
    with _fresh_workspace(f"stock-{_tag(edges)}") as ws:
        return _stock_bulk_loader(edges, ws)


def _stock_bulk_loader(edges: int, ws: Path) -> dict:
    import polars as pl
    from falkordb import FalkorDB
    from falkordb_bulk_loader.bulk_insert import process_entities
    from falkordb_bulk_loader.config import Config
    from falkordb_bulk_loader.label import Label
    from falkordb_bulk_loader.query_buffer import QueryBuffer
    from falkordb_bulk_loader.relation_type import RelationType

    from graphkit.store.server import FalkorServer

    concepts, relations = _frames(edges)
    csv_dir = ws / "csv"
    csv_dir.mkdir(parents=True)
    # its array syntax is a Python literal: ["T047"]
    concept_csv = concepts.with_columns(
        pl.col("semantic_types").list.eval(pl.lit('"') + pl.element() + pl.lit('"')).list.join(",")
    ).with_columns((pl.lit("[") + pl.col("semantic_types") + pl.lit("]")).alias("semantic_types"))
    with open(csv_dir / "Concept.csv", "w") as handle:
        handle.write("cui:ID(Concept),name:STRING,semantic_types:ARRAY,semantic_group:STRING\n")
        concept_csv.select("cui", "name", "semantic_types", "semantic_group").write_csv(
            handle, include_header=False
        )
    properties = ["rel", "rela", "inverse_rel", "inverse_rela", "sab"]
    files = []
    for (rel_type,), part in relations.partition_by("type", as_dict=True).items():
        path = csv_dir / f"{rel_type}.csv"
        with open(path, "w") as handle:
            handle.write(
                ":START_ID(Concept),:END_ID(Concept)," + ",".join(f"{p}:STRING" for p in properties) + "\n"
            )
            part.select("src", "dst", *properties).write_csv(handle, include_header=False)
        files.append((rel_type, path))
    server = FalkorServer(ws / "graph", linger=0)
    lease = server.acquire()
    try:
        client = FalkorDB(unix_socket_path=str(server.socket))
        config = Config(1024, 64, 64, True, "STRING", False, False, ",", 0, True, "none")
        buffer = QueryBuffer("kg", client, config)
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            labels = [Label(buffer, str(csv_dir / "Concept.csv"), "Concept", config)]
            types = [RelationType(buffer, str(path), rel_type, config) for rel_type, path in files]
            process_entities(labels)
            process_entities(types)
            buffer.send_buffer()
            buffer.wait_pool()
        seconds = time.perf_counter() - started
    finally:
        server.release(lease)
    return {
        "edges": buffer.relations_created,
        "load_seconds": round(seconds, 3),
        "edges_per_s": round(buffer.relations_created / seconds),
    }


def _walk_pairs(store, n: int, forward: bool, seed: int = 0) -> list[tuple[str, str]]:
    """Pairs (a, b): b reached from a by a random walk of 2..6 typed steps (``forward``: each
    step along the stored direction, so a typed path a -> b of at most 6 hops exists)."""
    rng = random.Random(seed)
    types = "|".join(PATH_TYPES)
    arrow = "->" if forward else "-"
    starts = [
        row["cui"]
        for row in store.query(
            f"MATCH (c:Concept)-[:{types}]{arrow}() WITH DISTINCT c LIMIT 20000 RETURN c.cui AS cui"
        )
    ]
    pairs: list[tuple[str, str]] = []
    while len(pairs) < n:
        start = current = rng.choice(starts)
        visited = {start}
        for _ in range(rng.randint(2, 6)):
            step = store.query(
                f"MATCH (a:Concept {{cui: $cui}})-[:{types} {{status: 'active'}}]{arrow}(b:Concept) "
                "RETURN DISTINCT b.cui AS cui LIMIT 64",
                {"cui": current},
            )
            options = [row["cui"] for row in step if row["cui"] not in visited]
            if not options:
                break
            current = rng.choice(options)
            visited.add(current)
        if current != start:
            pairs.append((start, current))
    return pairs


def _timed(store, name: str, pairs: list[tuple[str, str]]) -> tuple[list[float], int]:
    times, found = [], 0
    for source, target in pairs:
        started = time.perf_counter()
        rows = store.run(
            name, slots={"rel_types": PATH_TYPES, "max_hops": 6}, source=source, target=target, limit=10
        )
        times.append((time.perf_counter() - started) * 1000)
        found += bool(rows)
    return times, found


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_typed_paths(edges: int, queries: int = 300, any_direction_queries: int = 30) -> dict:
    from graphkit.store import open_store

    ws = SCRATCH / f"ws-{_tag(edges)}"
    started = time.perf_counter()
    with open_store(ws, linger=0) as store:
        opened = time.perf_counter() - started
        pairs = _walk_pairs(store, queries, forward=True)
        _timed(store, "typed_paths", pairs[:20])  # warm the query cache
        forward, found = _timed(store, "typed_paths", pairs)
        either_pairs = _walk_pairs(store, any_direction_queries, forward=False, seed=1)
        either, either_found = _timed(store, "typed_paths_any_direction", either_pairs)
        stats = store.stats()
    return {
        "edges": stats["total_relationships"],
        "queries": len(pairs),
        "found": found,
        "p50_ms": round(_percentile(forward, 0.5), 2),
        "p95_ms": round(_percentile(forward, 0.95), 2),
        "max_ms": round(max(forward), 2),
        "any_direction_queries": len(either_pairs),
        "any_direction_found": either_found,
        "any_direction_p50_ms": round(_percentile(either, 0.5), 2),
        "any_direction_p95_ms": round(_percentile(either, 0.95), 2),
        "server_start_seconds": round(opened, 2),
        "server_memory": stats["memory_used"],
    }


def cases(quick: bool = False) -> list[Case]:
    load_edges, path_edges = (100_000, 500_000) if quick else (1_000_000, 5_000_000)
    load, path = _tag(load_edges), _tag(path_edges)
    release = {"setup": "perf.graph_store:make_release", "setup_params": {"edges": load_edges}}
    return [
        Case(
            f"bulk-load-{load}",
            "perf.graph_store:run_bulk_load",
            {"edges": load_edges},
            targets={"load_seconds": "<= 20"} if not quick else {},
            note="vectorized GRAPH.BULK: hashing, endpoints, encoding, sending; schema apart",
            **release,
        ),
        Case(
            f"unwind-load-{load}",
            "perf.graph_store:run_unwind_load",
            {"edges": load_edges},
            peer_of=f"bulk-load-{load}",
            **release,
        ),
        Case(
            f"falkordb-bulk-loader-{load}",
            "perf.graph_store:run_stock_bulk_loader",
            {"edges": load_edges},
            peer_of=f"bulk-load-{load}",
            note="its own CSV reader; writing the CSVs is not timed",
            **release,
        ),
        Case(
            f"typed-paths-{path}",
            "perf.graph_store:run_typed_paths",
            {"edges": path_edges},
            setup="perf.graph_store:make_path_graph",
            setup_params={"edges": path_edges},
            targets={"p50_ms": "<= 20", "p95_ms": "<= 100"} if not quick else {},
        ),
    ]


if __name__ == "__main__":
    main_for(__name__)
