"""What graphkit.thinking reads from and writes to the graph store (all Cypher in cypher/thinking_*).

Written:
- ``(:Concept)-[:ASSOCIATED_WITH {task, support, confidence, lift, source_count, target_count,
  n_samples, rank, sab, cohort, config, source: "association", status, edge_id}]->(:Concept)``
  and one ``(:AssociationRun {id, task, cohort, cohort_label, n_samples, config, options,
  associations, version})`` per mined task (``write_associations``);
- ``(:Case {id, task, sample_id, graph_hash, config_hash, targets, unexplained_targets, n_paths,
  thinking_graph})-[:USES_EDGE {target_cui, role, path, position, edge_id}]->(:EdgeRef {edge_id,
  src, dst, relation, origin})`` per thinking graph (``write_thinking_graphs``). Case id = the
  sample id (one thinking graph per sample).

Read: the concept graph for the CSR snapshot, item -> concept links, associations, and the
three usage questions (``case_paths``, ``cases_using_edge``, ``top_edges``).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from graphkit.progress import NULL_PROGRESS, Progress
from graphkit.store.vocab import ENGINE_TYPES
from graphkit.thinking.mining import ASSOCIATION_SCHEMA, MiningResult
from graphkit.thinking.model import ThinkingGraph
from graphkit.thinking.options import ASSOCIATION_TYPE
from graphkit.thinking.store_search import concept_row

log = logging.getLogger(__name__)

_HIGHEST = "\U0010ffff"


def ensure_thinking_schema(store) -> None:
    """The indexes of cypher/thinking_schema.cypher, through the store's schema translation."""
    from graphkit.store.schema import apply_schema_file

    apply_schema_file(store, "thinking_schema")


# ---- concept graph export (CSR snapshot)
CONCEPT_SCHEMA = {c: pl.String for c in ("cui", "name", "semantic_type", "semantic_group")}
_ID_CONCEPT_SCHEMA = {"id": pl.Int64, **CONCEPT_SCHEMA}
_ID_EDGE_SCHEMA = {"src_id": pl.Int64, "dst_id": pl.Int64, "edge_id": pl.String}
EDGE_SCHEMA = {c: pl.String for c in ("src", "dst", "type", "edge_id", "status", "sab", "rela", "source")}
_FS, _RS = "\x1f", "\x1e"  # field and row separators of the FalkorDB pages


def export_concept_graph(store, *, page_size: int = 200_000, threads: int = 2, progress: Progress | None = None):
    """(concepts, edges, meta) frames of every concept and concept-to-concept relationship.

    FalkorDB: pages of node ids, each returned as one joined string and parsed by polars, fetched
    by ``threads`` connections at once; the frames carry node ids (concepts ``id``, edges
    ``src_id``/``dst_id``). Other backends: keyset pages of plain rows with CUIs.
    """
    progress = progress or NULL_PROGRESS
    if getattr(store, "dialect", "") == "falkordb":
        concepts, edges = _export_falkordb(store, page_size, threads, progress)
    else:
        concepts, edges = _export_rows(store, page_size, progress)
    meta = {"source": f"store:{getattr(store, 'backend', '?')}", "graph_hash": graph_hash(store)}
    return concepts, edges, meta


def _parse_page(page: str, schema: dict) -> pl.DataFrame:
    if not page:
        return pl.DataFrame(schema=schema)
    return pl.read_csv(
        io.BytesIO(page.encode("utf-8")), separator=_FS, eol_char=_RS, has_header=False, quote_char=None,
        schema=schema,
    )


def _export_falkordb(store, page_size: int, threads: int, progress: Progress) -> tuple[pl.DataFrame, pl.DataFrame]:
    span = store.run("thinking_snapshot_id_range")[0]
    if not span["concepts"]:
        return pl.DataFrame(schema=_ID_CONCEPT_SCHEMA), pl.DataFrame(schema=_ID_EDGE_COLUMNS)
    low, high = int(span["low"]), int(span["high"]) + 1
    present = {row["relationshipType"] for row in store.run("relationship_types")}
    types = sorted(present & (store.vocab.relation_types | {ASSOCIATION_TYPE}))
    left_out = sorted(present - set(types) - set(ENGINE_TYPES))
    if left_out:
        log.warning("relationship types outside the graph's vocabulary are not in the snapshot: %s", left_out)
    jobs: list[tuple[str, dict, int, int]] = []  # (query, slots, low, high)
    for start in range(low, high, page_size):
        jobs.append(("thinking_snapshot_concepts_falkordb", {}, start, min(start + page_size, high)))
    for rel_type in types:
        count = store.run("thinking_snapshot_type_count", slots={"rel_type": rel_type})[0]["n"]
        if not count:
            continue
        # node-id ranges sized so a page holds about page_size relationships (hubs make them uneven)
        nodes_per_page = max(1, (high - low) * page_size // count)
        for start in range(low, high, nodes_per_page):
            jobs.append(("thinking_snapshot_edges_falkordb", {"rel_type": rel_type}, start, min(start + nodes_per_page, high)))
    handle = progress.start("exporting the concept graph", total=len(jobs))

    def fetch(job: tuple[str, dict, int, int]) -> tuple[str, pl.DataFrame]:
        query, slots, start, stop = job
        rows = store.run(query, slots=slots or None, low=start, high=stop, fs=_FS, rs=_RS)
        if query == "thinking_snapshot_concepts_falkordb":
            return "concepts", _parse_page(rows[0]["page"] or "", _ID_CONCEPT_SCHEMA)
        return "edges", _parse_edge_groups(rows, slots["rel_type"])

    frames: dict[str, list[pl.DataFrame]] = {"concepts": [], "edges": []}
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for kind, frame in pool.map(fetch, jobs):
            frames[kind].append(frame)
            progress.advance(handle)
    progress.finish(handle)
    concepts = pl.concat(frames["concepts"])
    edges = pl.concat(frames["edges"]) if frames["edges"] else pl.DataFrame(schema=_ID_EDGE_COLUMNS)
    return concepts, edges


_GROUP_COLUMNS = ("status", "sab", "rela", "source")
_ID_EDGE_COLUMNS = {**_ID_EDGE_SCHEMA, "type": pl.String, **{c: pl.String for c in _GROUP_COLUMNS}}


def _parse_edge_groups(rows: list[dict], rel_type: str) -> pl.DataFrame:
    """One page of one type's relationships: the groups' joined rows parsed at once, attributes repeated."""
    rows = [row for row in rows if row["n"]]
    if not rows:
        return pl.DataFrame(schema=_ID_EDGE_COLUMNS)
    triples = _parse_page(_RS.join(row["page"] for row in rows), _ID_EDGE_SCHEMA)
    group = np.repeat(np.arange(len(rows)), [row["n"] for row in rows])
    attributes = pl.DataFrame({c: [row[c] for row in rows] for c in _GROUP_COLUMNS}, schema={c: pl.String for c in _GROUP_COLUMNS})
    return pl.concat([triples, attributes[group]], how="horizontal").select(
        *_ID_EDGE_SCHEMA, pl.lit(rel_type).alias("type"), *_GROUP_COLUMNS
    )


def _export_rows(store, page_size: int, progress: Progress) -> tuple[pl.DataFrame, pl.DataFrame]:
    handle = progress.start("exporting concepts")
    frames, after = [], ""
    while True:
        rows = store.run("thinking_snapshot_concepts", after=after, limit=page_size)
        if not rows:
            break
        frames.append(pl.DataFrame([concept_row(r) for r in rows], schema=CONCEPT_SCHEMA))
        after = rows[-1]["cui"]
        progress.advance(handle, len(rows))
        if len(rows) < page_size:
            break
    progress.finish(handle)
    concepts = pl.concat(frames) if frames else pl.DataFrame(schema=CONCEPT_SCHEMA)
    cuis = concepts["cui"].sort().to_list()
    per_page = max(1, page_size // 10)
    bounds = [cuis[i] for i in range(0, len(cuis), per_page)] + [_HIGHEST]
    handle = progress.start("exporting relationships", total=max(len(bounds) - 1, 0))
    edge_frames = []
    for low, high in zip(bounds, bounds[1:], strict=False):
        rows = store.run("thinking_snapshot_edges", low=low, high=high)
        if rows:
            edge_frames.append(pl.DataFrame(rows, schema=EDGE_SCHEMA))
        progress.advance(handle)
    progress.finish(handle)
    return concepts, pl.concat(edge_frames) if edge_frames else pl.DataFrame(schema=EDGE_SCHEMA)


def graph_hash(store) -> str:
    """The store's own graph hash when it keeps one, else "" (recorded in thinking graphs)."""
    getter = getattr(store, "graph_hash", None)
    if getter is None:
        return ""
    value = getter() if callable(getter) else getter
    return str(value or "")


# ---- links and associations
def load_item_links(store) -> pl.DataFrame:
    """Item key -> CUI of every non-rejected MAPS_TO edge."""
    rows = store.run("thinking_item_concepts")
    return pl.DataFrame(rows, schema={"key": pl.String, "cui": pl.String})


def write_associations(store, result: MiningResult, *, batch_size: int = 5000) -> dict[str, int]:
    """Merge each task's associations, drop that task's active edges of older runs, record the run."""
    written = {}
    for run in result.runs:
        task = run["task"]
        rows = result.for_task(task).to_dicts()
        written[task] = store.write("thinking_merge_associations", rows, batch_size=batch_size)
        deleted = store.run("thinking_prune_associations", task=task, cohort=run["cohort"], config=run["config"])
        log.info("task %s: %d associations written, %d stale ones deleted", task, written[task], deleted[0]["deleted"] if deleted else 0)
        store.run(
            "thinking_merge_association_run",
            id=run["id"],
            task=task,
            cohort=run["cohort"],
            cohort_label=run["cohort_label"],
            n_samples=run["n_samples"],
            config=run["config"],
            options=json.dumps(run["options"], sort_keys=True),
            associations=run["associations"],
            version=run["version"],
        )
    return written


def load_associations(store, tasks: Iterable[str]) -> pl.DataFrame:
    """The active associations of these tasks (rejected ones left out)."""
    schema = {c: ASSOCIATION_SCHEMA[c] for c in ("task", "source", "target", "support", "confidence", "lift", "edge_id", "sab", "cohort", "config")}
    frames = [pl.DataFrame(store.run("thinking_associations", task=task), schema=schema) for task in tasks]
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


# ---- thinking graphs as cases
def case_row(graph: ThinkingGraph, *, include_json: bool = False) -> dict:
    uses = []
    for target, assoc_sources in graph.evidence.items():
        for source in assoc_sources:
            for edge in graph.edges:
                if edge.origin == "association" and edge.source == source and edge.target == target:
                    uses.append(_use(edge, target, "evidence", -1, -1))
    for target, paths in graph.paths.items():
        for path_index, path in enumerate(paths):
            for position, edge_id in enumerate(path):
                uses.append(_use(graph.edge(edge_id), target, "path", path_index, position))
    return {
        "id": graph.sample_id,
        "task": graph.task,
        "sample_id": graph.sample_id,
        "graph_hash": graph.graph_hash,
        "config_hash": graph.config_hash,
        "targets": graph.targets,
        "unexplained": list(graph.unexplained_targets),
        "n_paths": sum(len(p) for p in graph.paths.values()),
        "thinking_graph": graph.to_json() if include_json else None,
        "uses": uses,
    }


def _use(edge, target: str, role: str, path: int, position: int) -> dict:
    return {
        "edge_id": edge.edge_id,
        "src": edge.source,
        "dst": edge.target,
        "relation": edge.relation,
        "origin": edge.origin,
        "target_cui": target,
        "role": role,
        "path": path,
        "position": position,
    }


def write_thinking_graphs(
    store, graphs: Iterable[ThinkingGraph], *, include_json: bool = False, batch_size: int = 200
) -> int:
    """Record each graph as a (:Case) with its edge uses, replacing an earlier record of the same case."""
    written = 0
    batch: list[dict] = []

    def flush() -> int:
        store.run("thinking_delete_case_uses", ids=[row["id"] for row in batch])
        return store.write("thinking_merge_cases", batch, batch_size=len(batch))

    for graph in graphs:
        batch.append(case_row(graph, include_json=include_json))
        if len(batch) >= batch_size:
            written += flush()
            batch = []
    if batch:
        written += flush()
    return written


def case_paths(store, case_id: str) -> list[dict]:
    """Which paths support case X: one row per edge use, path by path in walking order."""
    return store.run("thinking_case_paths", case_id=case_id)


def cases_using_edge(store, edge_id: str) -> list[dict]:
    return store.run("thinking_cases_using_edge", edge_id=edge_id)


def top_edges(store, task: str | None = None, limit: int = 20) -> list[dict]:
    return store.run("thinking_top_edges", task=task, limit=limit)

