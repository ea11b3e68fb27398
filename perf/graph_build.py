"""`ehr-r1 graph build` end to end on the synthetic UMLS-shaped release, beside the store's load cases.

    python -m perf.graph_build            # 1M concepts, 5M relations (the issue's scale)
    python -m perf.graph_build --quick    # 50k concepts, 250k relations: a smoke run

Set-up (own process, not measured, perf/_scratch/graph_build/<scale>/rrf): the synthetic RRF of
graphkit.umls.synthetic. The build case is the whole library call behind the CLI
(``graphkit.kg.build_graph``): read and materialize the release, collect and link the items of
the bundled MIMIC-IV demo (codes, names; text linking off), bulk-load concepts, codes, items,
CODE_OF / MAPS_TO and the 5M concept relations into a fresh embedded store, create the schema.
The FalkorDB server is its own process: its peak RSS is reported beside the build process's.

Targets (issue 4, 2 cores): the full build <= 5 min within 8 GiB. The 1M-edge load comparison
(GRAPH.BULK vs batched UNWIND, <= 20 s) and the typed-path latencies are perf/graph_store.py's
cases; this suite runs its load pair in the same run so the numbers sit side by side.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from perf.harness import REPO, Case, main_for

SUITE = "graph_build"
SCRATCH = REPO / "perf" / "_scratch" / "graph_build"
SCALES = {"full": (1_000_000, 5_000_000), "quick": (50_000, 250_000)}


def _rrf(scale: str) -> Path:
    return SCRATCH / scale / "rrf"


def prepare(scale: str, seed: int = 0) -> dict:
    from graphkit.umls.synthetic import generate_synthetic_rrf

    rrf = _rrf(scale)
    if (rrf / "MRREL.RRF").exists():
        return {"reused": True}
    concepts, relations = SCALES[scale]
    return generate_synthetic_rrf(rrf, n_concepts=concepts, n_relations=relations, seed=seed)


def _server_peak_mb(pid: int | None) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def _cpu_seconds(pid: int | None) -> float | None:
    """user + system CPU seconds of a process (the graph server is not a child of the case)."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_build(scale: str) -> dict:
    from graphkit.kg import BuildConfig, build_graph
    from graphkit.store import open_store
    from graphkit.workspace import Workspace

    root = SCRATCH / scale / "ws"
    shutil.rmtree(root, ignore_errors=True)
    workspace = Workspace(root)
    # held open across the build, so the server's peak memory can be read before it stops
    keeper = open_store(workspace, "embedded", linger=0)
    try:
        started = time.perf_counter()
        result = build_graph(
            BuildConfig(umls=_rrf(scale), text="off"),
            workspace,
            store_factory=lambda: open_store(workspace, "embedded", linger=0),
        )
        seconds = time.perf_counter() - started
        info = keeper.server.client(30.0).info()
        server_peak = _server_peak_mb(info.get("process_id"))
        server_cpu = _cpu_seconds(info.get("process_id"))
    finally:
        keeper.close()
    counts = result.counts
    metrics = {
        "build_s": round(seconds, 1),
        **{f"{step}_s": value for step, value in result.seconds.items()},
        "bulk_load_s": counts["load_seconds"],
        "schema_s": counts["schema_seconds"],
        "nodes": counts["total_nodes"],
        "relationships": counts["total_relationships"],
        "concept_relations": counts["total_relationships"]
        - counts["relationships"].get("CODE_OF", 0)
        - counts["relationships"].get("MAPS_TO", 0),
        "items_linked": result.links["items_linked"],
        "server_peak_rss_mb": round(server_peak) if server_peak else None,
        "server_used_memory_peak": info.get("used_memory_peak_human"),
        "server_cpu_s": round(server_cpu, 1) if server_cpu is not None else None,
    }
    shutil.rmtree(root, ignore_errors=True)
    return metrics


def cases(quick: bool = False) -> list[Case]:
    scale = "quick" if quick else "full"
    load_edges = 100_000 if quick else 1_000_000
    load = f"{load_edges // 1000}k" if load_edges < 1_000_000 else f"{load_edges // 1_000_000}m"
    store_setup = {"setup": "perf.graph_store:make_release", "setup_params": {"edges": load_edges}}
    return [
        Case(
            f"graph-build-{scale}",
            "perf.graph_build:run_build",
            {"scale": scale},
            setup="perf.graph_build:prepare",
            setup_params={"scale": scale},
            targets={}
            if quick
            else {"wall_s": "<= 300", "peak_rss_mb": "<= 8192", "server_peak_rss_mb": "<= 8192"},
            note="release read + materialize, MIMIC demo items linked, GRAPH.BULK of everything, schema",
        ),
        Case(
            f"bulk-load-{load}",
            "perf.graph_store:run_bulk_load",
            {"edges": load_edges},
            **store_setup,
            targets={} if quick else {"load_seconds": "<= 20"},
            note="perf/graph_store.py's case, run here beside the build",
        ),
        Case(
            f"unwind-load-{load}",
            "perf.graph_store:run_unwind_load",
            {"edges": load_edges},
            peer_of=f"bulk-load-{load}",
            **store_setup,
            note="perf/graph_store.py's case: batched UNWIND through the same store",
        ),
    ]


if __name__ == "__main__":
    main_for(__name__)
