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

import json
import logging
from collections.abc import Iterable

import polars as pl

import cypher
from graphkit.progress import NULL_PROGRESS, Progress
from graphkit.thinking.mining import ASSOCIATION_SCHEMA, MiningResult
from graphkit.thinking.model import ThinkingGraph
from graphkit.thinking.store_search import concept_row

log = logging.getLogger(__name__)

_HIGHEST = "\U0010ffff"


def ensure_thinking_schema(store) -> None:
    """The indexes of cypher/thinking_schema.cypher, through the store's schema translation."""
    from graphkit.store.schema import apply_schema_file

    apply_schema_file(store, "thinking_schema")


# ---- concept graph export (CSR snapshot)
def export_concept_graph(store, *, page_size: int = 200_000, progress: Progress | None = None):
    """(concepts, edges, meta) frames of every concept and concept-to-concept relationship."""
    progress = progress or NULL_PROGRESS
    handle = progress.start("exporting concepts")
    pages, after = [], ""
    while True:
        rows = store.run("thinking_snapshot_concepts", after=after, limit=page_size)
        if not rows:
            break
        pages.append(pl.DataFrame([concept_row(r) for r in rows], schema={c: pl.String for c in ("cui", "name", "semantic_type", "semantic_group")}))
        after = rows[-1]["cui"]
        progress.advance(handle, len(rows))
        if len(rows) < page_size:
            break
    progress.finish(handle)
    concepts = pl.concat(pages) if pages else pl.DataFrame(schema={c: pl.String for c in ("cui", "name", "semantic_type", "semantic_group")})
    cuis = concepts["cui"].sort().to_list()
    # pages of source CUIs sized so each returns about page_size relationships (degree ~ 2x edges/nodes)
    per_page = max(1, page_size // 10)
    bounds = [cuis[i] for i in range(0, len(cuis), per_page)] + [_HIGHEST]
    handle = progress.start("exporting relationships", total=max(len(bounds) - 1, 0))
    edge_schema = {c: pl.String for c in ("src", "dst", "type", "edge_id", "status", "sab", "rela", "source")}
    edge_pages = []
    for low, high in zip(bounds, bounds[1:], strict=False):
        rows = store.run("thinking_snapshot_edges", low=low, high=high)
        if rows:
            edge_pages.append(pl.DataFrame(rows, schema=edge_schema, orient="row" if isinstance(rows[0], list) else None))
        progress.advance(handle)
    progress.finish(handle)
    edges = pl.concat(edge_pages) if edge_pages else pl.DataFrame(schema=edge_schema)
    meta = {"source": f"store:{getattr(store, 'backend', '?')}", "graph_hash": graph_hash(store)}
    return concepts, edges, meta


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


QUERIES = tuple(n for n in cypher.names() if n.startswith("thinking_"))
