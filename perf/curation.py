"""Curation at scale: the review queue and edge pages on the 5M-edge graph, replaying 100k entries.

    python -m perf.curation            # 5M edges (1M concepts), 50k cases, 100k-entry ledger
    python -m perf.curation --quick    # 500k edges, 5k cases, 10k entries: a smoke run

Set-up (own process, not measured): the synthetic UMLS-shaped release of perf.graph_store
(`make_release`, shared with that suite's scratch data) bulk loaded afresh into
perf/_scratch/curation/ws-<size> together with what curation reads beside the concept graph:
items with MAPS_TO links (a share of them text-matched, low scores), mined ASSOCIATED_WITH edges
(support 5..100) and thinking-graph usage records, (:Case)-[:USES_EDGE]->(:EdgeRef), for 50k cases
of 8 path edges each drawn from 100k edges with Zipf weights (hub edges used by thousands of
cases). Then a ledger of 100k entries on real edges: rejections, reject + restore pairs,
annotations, mappings rejected and edges added between existing concepts. Loading is the
rebuild; the ledger is written once per scale and reused. The graph server stays up between the
cases (the default linger): a restart reloads the whole graph from its append-only file.

Cases:
- replay-100k: the post-build hook (`replay_after_build`) on the freshly loaded graph: read and
  verify the ledger, fold it, write every status and addition (`replay_s`, target <= 60 s).
  Before that the hook waits until FalkorDB has filled its indexes, which it does in the
  background after a load (`index_wait_s`; lookups before that scan, which made a first, unwaited
  10k-entry replay take 144 s); `hook_s` is both.
- pages: the web page served by uvicorn in-process, requests over HTTP with the token cookie
  (the server re-reads nothing but the ledger's new bytes): the queue page (three queues, 15
  unreviewed edges each; the page keeps it until the ledger or the number of uses changes, so
  the queue computed afresh is timed too, `queue_uncached_*`) and edge pages of hub and random
  used edges (evidence, history, the first 50 cases, 3 example paths). Targets p95 <= 200 ms
  each; the first (cold) request, which also reads the whole ledger, apart.
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path

from perf.harness import REPO, Case, main_for

SUITE = "curation"
SCRATCH = REPO / "perf" / "_scratch" / "curation"
SCALES = {  # edges -> (cases, ledger entries, items, associations)
    5_000_000: (50_000, 100_000, 20_000, 20_000),
    500_000: (5_000, 10_000, 5_000, 5_000),
}
USED_POOL = 100_000
PATH_EDGES = 8
TASKS = ("diagnoses_icd", "labevents", "prescriptions", "procedures_icd", "LengthOfStay_3day")
METHODS = ("icd_code", "code_map", "name", "name_words", "quickumls")


def _tag(edges: int) -> str:
    return f"{edges // 1_000_000}M" if edges >= 1_000_000 else f"{edges // 1000}k"


def workspace_dir(edges: int) -> Path:
    return SCRATCH / f"ws-{_tag(edges)}"


def _frames(edges: int, seed: int = 0):
    """Concepts, concept relations and the curation-side records (items, links, associations, usage)."""
    import numpy as np
    import polars as pl

    from graphkit.store.vocab import edge_id
    from graphkit.thinking.mining import association_edge_id, association_sab
    from perf.graph_store import _frames as release_frames

    n_cases, _, n_items, n_assoc = SCALES[edges]
    rng = np.random.default_rng(seed)
    concepts, relations = release_frames(edges)
    cuis = concepts["cui"].to_numpy()
    items = pl.DataFrame({
        "id": [f"labevents:{900000 + i}" for i in range(n_items)],
        "table": "labevents",
        "code": [str(900000 + i) for i in range(n_items)],
        "name": [f"synthetic lab item {i}" for i in range(n_items)],
    })
    methods = rng.choice(len(METHODS), n_items, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    maps_to = pl.DataFrame({
        "src": items["id"],
        "dst": cuis[rng.integers(0, len(cuis), n_items)],
        "method": [METHODS[m] for m in methods],
        "score": np.where(methods >= 3, rng.uniform(0.5, 0.8, n_items), rng.uniform(0.8, 1.0, n_items)).round(3),
        "source": "link",
    })
    pairs = rng.integers(0, len(cuis), (n_assoc, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    tasks = [TASKS[t] for t in rng.integers(0, len(TASKS), len(pairs))]
    associations = pl.DataFrame({
        "src": cuis[pairs[:, 0]], "dst": cuis[pairs[:, 1]], "task": tasks,
        "support": rng.integers(5, 101, len(pairs)), "confidence": rng.uniform(0.05, 0.9, len(pairs)),
        "lift": rng.uniform(5.01, 60.0, len(pairs)), "sab": [association_sab(t) for t in tasks],
        "source": "association", "status": "active",
    })
    associations = associations.with_columns(pl.Series("edge_id", [
        association_edge_id(*row) for row in associations.select("src", "dst", "task").rows()])).unique("edge_id")
    pool = relations.sample(USED_POOL, seed=seed)
    pool = pool.with_columns(pl.Series("edge_id", [edge_id(*row) for row in pool.select(
        "src", "type", "dst", pl.col("sab").replace("", None)).rows()]))
    weights = 1.0 / np.arange(1, USED_POOL + 1) ** 1.1
    picks = rng.choice(USED_POOL, (n_cases, PATH_EDGES), p=weights / weights.sum())
    case_ids = [f"perf-{i:06d}" for i in range(n_cases)]
    cases = pl.DataFrame({
        "id": case_ids, "task": [TASKS[i % len(TASKS)] for i in range(n_cases)], "sample_id": case_ids,
        "graph_hash": "perf", "config_hash": "perf", "n_paths": 2,
    })
    used = pool[picks.reshape(-1).tolist()]
    uses = pl.DataFrame({
        "src": np.repeat(case_ids, PATH_EDGES), "dst": used["edge_id"], "edge_id": used["edge_id"],
        "target_cui": used["dst"], "role": "path",
        "path": np.tile(np.repeat([0, 1], PATH_EDGES // 2), n_cases),
        "position": np.tile(np.arange(PATH_EDGES) % (PATH_EDGES // 2), n_cases),
    }).unique(["src", "dst", "path", "position"])
    refs = used.unique("edge_id").select(
        "edge_id", pl.col("src"), pl.col("dst"), pl.col("type").alias("relation"), pl.lit("umls").alias("origin")
    )
    return concepts, relations, items, maps_to, associations, cases, refs, uses


def _ledger_changes(edges: int, relations, maps_to, seed: int = 1):
    """The ledger's changes: ~55% rejections, 10% reject+restore pairs, 15% notes, 10% mapping
    rejections, 10% additions (entries counted, not edges)."""
    import numpy as np

    from graphkit.curation.ledger import Change, EdgeKey

    _, n_entries, _, _ = SCALES[edges]
    rng = np.random.default_rng(seed)
    sample = relations.sample(n_entries, seed=seed).select("src", "type", "dst", "sab").rows()
    mappings = maps_to.select("src", "dst").rows()
    changes: list[Change] = []
    i = 0
    while len(changes) < n_entries:
        kind = rng.random()
        src, rel_type, dst, sab = sample[i % len(sample)]
        key = EdgeKey(src, rel_type, dst, sab or "")
        i += 1
        if kind < 0.55:
            changes.append(Change("reject", key, "perf", "wrong fact", ("synthetic",)))
        elif kind < 0.65:
            changes.append(Change("reject", key, "perf", "doubtful"))
            changes.append(Change("restore", key, "perf", "checked"))
        elif kind < 0.80:
            changes.append(Change("annotate", key, "perf", "a note"))
        elif kind < 0.90:
            item, cui = mappings[int(rng.integers(0, len(mappings)))]
            changes.append(Change("reject", EdgeKey(item, "MAPS_TO", cui), "perf", "wrong mapping"))
        else:
            changes.append(Change("add", EdgeKey(dst, "CAUSE_OF", src, "CURATOR"), "perf", "missing fact",
                                  properties={"rela": "cause_of"}))
    return changes[:n_entries]


# ---------------------------------------------------------------- set-up (not measured)


def prepare(edges: int) -> dict:
    """Load the graph afresh (the rebuild) and write the ledger once per scale."""
    from graphkit.curation.ledger import Ledger
    from graphkit.store import open_store
    from graphkit.workspace import Workspace
    from perf.graph_store import make_release

    make_release(edges)
    started = time.perf_counter()
    concepts, relations, items, maps_to, associations, cases, refs, uses = _frames(edges)
    frames_s = time.perf_counter() - started
    root = workspace_dir(edges)
    shutil.rmtree(root / "graph", ignore_errors=True)
    workspace = Workspace(root)
    relationships = {
        str(t): part.drop("type") for (t,), part in relations.partition_by("type", as_dict=True).items()
    }
    relationships |= {"MAPS_TO": maps_to, "ASSOCIATED_WITH": associations, "USES_EDGE": uses}
    with open_store(workspace) as store:
        report = store.bulk_load(
            nodes={"Concept": concepts, "Item": items, "Case": cases, "EdgeRef": refs},
            relationships=relationships,
            replace=True,
        )
    ledger = Ledger.of(workspace)
    if not ledger.path.exists():
        ledger.append_many(_ledger_changes(edges, relations, maps_to))
    for stale in ("affected.jsonl", "replay.json"):
        (workspace.curation / stale).unlink(missing_ok=True)
    return {
        "frames_s": round(frames_s, 1),
        "load_s": report.get("load_seconds"),
        "schema_s": report.get("schema_seconds"),
        "relationships": sum(report["relationships"].values()),
        "cases": cases.height,
        "uses": uses.height,
        "ledger_bytes": ledger.path.stat().st_size,
    }


# ---------------------------------------------------------------- measured


def run_replay(edges: int) -> dict:
    from graphkit.curation.replay import replay_after_build
    from graphkit.store import open_store
    from graphkit.workspace import Workspace

    workspace = Workspace(workspace_dir(edges))
    with open_store(workspace) as store:
        started = time.perf_counter()
        report = replay_after_build(store, workspace=workspace, graph_hash="perf")
        seconds = time.perf_counter() - started
    return {
        "hook_s": round(seconds, 2),
        "index_wait_s": report["index_wait_seconds"],
        "replay_s": round(seconds - report["index_wait_seconds"], 2),
        "entries": report["entries"],
        "edges": report["edges"],
        "rejected": report["rejected"],
        "active": report["active"],
        "added": report["added"],
        "missing": report["missing"],
        "entries_per_s": round(report["entries"] / seconds),
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_pages(edges: int, edge_pages: int = 60, queue_pages: int = 20) -> dict:
    import random

    import httpx

    from graphkit.curation.ledger import Ledger
    from graphkit.curation.views import queue
    from graphkit.curation.web.app import QUEUE_LIMIT, BackgroundServer, create_app
    from graphkit.store import open_store
    from graphkit.workspace import Workspace

    workspace = Workspace(workspace_dir(edges))
    ledger = Ledger.of(workspace)
    token = "perf"
    with open_store(workspace) as store:
        started = time.perf_counter()
        app = create_app(store, workspace, token=token)
        hubs = store.query(
            "MATCH (e:EdgeRef)<-[u:USES_EDGE]-(:Case) WITH e, count(u) AS n ORDER BY n DESC LIMIT 20 "
            "RETURN e.edge_id AS edge_id"
        )
        others = store.query("MATCH (e:EdgeRef) RETURN e.edge_id AS edge_id LIMIT 5000")
        random.Random(0).shuffle(others)
        chosen = [r["edge_id"] for r in hubs] + [r["edge_id"] for r in others[: edge_pages - len(hubs)]]
        with BackgroundServer(app, token=token) as url, httpx.Client(timeout=120) as client:
            base = url.split("/?")[0]
            cold_started = time.perf_counter()
            assert client.get(url).status_code == 200  # the first request also reads the 100k-entry ledger
            cold_ms = (time.perf_counter() - cold_started) * 1000
            startup_s = time.perf_counter() - started
            queue_ms, edge_ms, cases_seen = [], [], 0
            for _ in range(queue_pages):
                t = time.perf_counter()
                response = client.get(f"{base}/")
                queue_ms.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200 and "Most used by cases" in response.text
            compute_ms = []  # the queue computed afresh (the page caches it until the ledger or the uses change)
            for _ in range(queue_pages // 2):
                t = time.perf_counter()
                queue(store, ledger, limit=QUEUE_LIMIT)
                compute_ms.append((time.perf_counter() - t) * 1000)
            for edge in chosen:
                t = time.perf_counter()
                response = client.get(f"{base}/edge/{edge}")
                edge_ms.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200, response.text[:300]
                cases_seen += response.text.count("<tr><td>perf-")
    return {
        "cold_first_page_ms": round(cold_ms, 1),
        "startup_s": round(startup_s, 2),
        "queue_p50_ms": round(statistics.median(queue_ms), 1),
        "queue_p95_ms": round(_percentile(queue_ms, 0.95), 1),
        "queue_max_ms": round(max(queue_ms), 1),
        "queue_uncached_p50_ms": round(statistics.median(compute_ms), 1),
        "queue_uncached_max_ms": round(max(compute_ms), 1),
        "edge_p50_ms": round(statistics.median(edge_ms), 1),
        "edge_p95_ms": round(_percentile(edge_ms, 0.95), 1),
        "edge_max_ms": round(max(edge_ms), 1),
        "edge_pages": len(edge_ms),
        "case_rows_shown": cases_seen,
    }


def cases(quick: bool = False) -> list[Case]:
    edges = 500_000 if quick else 5_000_000
    tag = _tag(edges)
    entries = SCALES[edges][1]
    setup = {"setup": "perf.curation:prepare", "setup_params": {"edges": edges}}
    return [
        Case(f"replay-{entries // 1000}k", "perf.curation:run_replay", {"edges": edges}, **setup,
             targets={"replay_s": "<= 60"}, note=f"{tag} edges graph, loaded afresh by the set-up"),
        Case(f"pages-{tag}", "perf.curation:run_pages", {"edges": edges}, **setup,
             targets={"queue_p95_ms": "<= 200", "edge_p95_ms": "<= 200"},
             note="after the replay: rejected edges and the 100k-entry ledger in place"),
    ]


if __name__ == "__main__":
    main_for(__name__)
