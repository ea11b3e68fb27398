"""From a sample's concepts to its thinking graph.

For each gold target concept: the evidence is the sample's context concepts that have an active
``ASSOCIATED_WITH`` edge of the task to it (best lift first, at most ``max_evidence``); a path
search runs from each evidence concept to the target; the shortest paths of each pair
(``paths_per_pair``) are kept, ordered by length, then evidence rank, then edge ids. A target
with no path is listed in ``unexplained_targets``. The association edges of the evidence are part
of the graph (origin "association", with support/confidence/lift) but never of a path.

    builder = ThinkingGraphBuilder(snapshot.adjacency(opts.search), AssociationIndex(frame), opts)
    graph = builder.build("sample-1", "diagnoses_icd", context_cuis, target_cuis)

``build_parallel`` runs builders in worker processes, each made by a picklable factory such as
``SnapshotBuilderFactory`` (the saved snapshot is memory-mapped, so workers share its pages).
Workers are spawned, not forked: polars' thread pool does not survive a fork.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from graphkit.errors import ConfigError, InputError
from graphkit.thinking.kernel import finder_for
from graphkit.thinking.model import Edge, Node, ThinkingGraph, merge_role
from graphkit.thinking.options import ThinkingOptions
from graphkit.thinking.search import FOUND, Adjacency, PairResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Association:
    source: str
    target: str
    support: int
    confidence: float
    lift: float
    edge_id: str
    sab: str = ""

    def edge(self) -> Edge:
        return Edge(
            edge_id=self.edge_id,
            source=self.source,
            target=self.target,
            relation="ASSOCIATED_WITH",
            sab=self.sab,
            origin="association",
            support=self.support,
            confidence=self.confidence,
            lift=self.lift,
        )


class AssociationIndex:
    """Active associations by (task, target), best first (lift, then support, then source CUI)."""

    COLUMNS = ("task", "source", "target", "support", "confidence", "lift", "edge_id")

    def __init__(self, frame: pl.DataFrame):
        missing = [c for c in self.COLUMNS if c not in frame.columns]
        if missing:
            raise InputError("association rows lack columns", where="associations", value=missing, fix=f"give {list(self.COLUMNS)}")
        if "sab" not in frame.columns:
            frame = frame.with_columns(pl.lit("").alias("sab"))
        ordered = frame.sort(["task", "target", "lift", "support", "source"], descending=[False, False, True, True, False])
        self._by_target: dict[tuple[str, str], list[Association]] = {}
        for row in ordered.select(*self.COLUMNS, "sab").iter_rows(named=True):
            task = row.pop("task")
            self._by_target.setdefault((task, row["target"]), []).append(Association(**row))

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_target.values())

    @property
    def tasks(self) -> set[str]:
        return {task for task, _ in self._by_target}

    def for_target(self, task: str, target: str) -> list[Association]:
        return self._by_target.get((task, target), [])


class ThinkingGraphBuilder:
    def __init__(
        self,
        adjacency: Adjacency,
        associations: AssociationIndex,
        options: ThinkingOptions | None = None,
        *,
        graph_hash: str = "",
        pair_cache: int = 100_000,
    ):
        self.options = options or ThinkingOptions(search=adjacency.options)
        if self.options.search != adjacency.options:
            raise ConfigError(
                "the adjacency was built for other search options", where="ThinkingGraphBuilder",
                value=adjacency.options.as_dict(), fix="build the adjacency with options.search",
            )
        self.adjacency = adjacency
        self.finder = finder_for(adjacency)
        self.associations = associations
        self.graph_hash = graph_hash
        self.config_hash = self.options.hash()
        self.stats: Counter[str] = Counter()
        # A pair's paths depend on the graph and the options only, and (evidence, target) pairs
        # recur across samples of a task; the builder sees the graph as it was when it was made.
        self._pairs: OrderedDict[tuple[str, str], PairResult] = OrderedDict()
        self._pair_cache = pair_cache

    def _search(self, evidence: list[str], target: str) -> list[PairResult]:
        limit = self.options.paths_per_pair
        missing = [e for e in evidence if (e, target) not in self._pairs]
        self.stats["pair_cache_hits"] += len(evidence) - len(missing)
        if missing:
            for result in self.finder.find(missing, target, limit):
                self._pairs[(result.evidence, target)] = result
        results = []
        for e in evidence:
            self._pairs.move_to_end((e, target))
            results.append(self._pairs[(e, target)])
        while len(self._pairs) > self._pair_cache:
            self._pairs.popitem(last=False)
        return results

    def build(self, sample_id: str, task: str, context: Iterable[str], targets: Iterable[str]) -> ThinkingGraph:
        opts = self.options
        context_set = set(context)
        target_list = sorted(set(targets))
        if opts.max_targets is not None:
            target_list = target_list[: opts.max_targets]
        roles: dict[str, str] = {}
        edges: dict[str, Edge] = {}
        evidence_of: dict[str, list[str]] = {}
        paths_of: dict[str, list[list[str]]] = {}
        unexplained: list[str] = []
        for target in target_list:
            roles[target] = merge_role(roles.get(target), "target")
            chosen = [a for a in self.associations.for_target(task, target) if a.source in context_set and a.source != target]
            chosen = chosen[: opts.max_evidence]
            evidence_of[target] = [a.source for a in chosen]
            for assoc in chosen:
                roles[assoc.source] = merge_role(roles.get(assoc.source), "evidence")
                edges.setdefault(assoc.edge_id, assoc.edge())
            ranked = []
            for rank, result in enumerate(self._search([a.source for a in chosen], target)):
                self.stats[result.status] += 1
                if result.status != FOUND:
                    continue
                for path in result.paths[: opts.paths_per_pair]:
                    ranked.append((len(path), rank, path.edge_ids, path))
            ranked.sort(key=lambda item: item[:3])
            if not ranked:
                unexplained.append(target)
                continue
            paths_of[target] = []
            for _, _, edge_ids, path in ranked:
                paths_of[target].append(list(edge_ids))
                for cui in path.nodes[1:-1]:
                    roles[cui] = merge_role(roles.get(cui), "intermediate")
                for edge in path.edges:
                    edges.setdefault(edge.edge_id, edge)
        self.stats["graphs"] += 1
        self.stats["targets"] += len(target_list)
        self.stats["unexplained_targets"] += len(unexplained)
        info = self.adjacency.concepts(list(roles)) if roles else {}
        nodes = []
        for cui in sorted(roles, key=lambda c: ({"target": 0, "evidence": 1, "intermediate": 2}[roles[c]], c)):
            row = info.get(cui, {})
            nodes.append(
                Node(
                    cui=cui,
                    name=row.get("name") or "",
                    semantic_type=row.get("semantic_type") or "",
                    semantic_group=row.get("semantic_group") or "",
                    role=roles[cui],
                )
            )
        return ThinkingGraph(
            sample_id=str(sample_id),
            task=task,
            graph_hash=self.graph_hash,
            config_hash=self.config_hash,
            nodes=nodes,
            edges=[edges[e] for e in sorted(edges)],
            evidence=evidence_of,
            paths=paths_of,
            unexplained_targets=unexplained,
        )


def thinking_requests(concepts: pl.DataFrame | pl.LazyFrame) -> Iterator[tuple[str, str, list[str], list[str]]]:
    """(sample_id, task, context cuis, target cuis) per sample of a ``sample_concepts`` frame, sorted."""
    grouped = (
        concepts.lazy()
        .group_by("sample_id", "task")
        .agg(
            pl.col("cui").filter(pl.col("role") == "context").unique().sort().alias("context"),
            pl.col("cui").filter(pl.col("role") == "target").unique().sort().alias("targets"),
        )
        .sort("task", "sample_id")
        .collect()
    )
    for row in grouped.iter_rows():
        yield row[0], row[1], list(row[2]), list(row[3])


_WORKER_BUILDER: ThinkingGraphBuilder | None = None


def _init_worker(make_builder: Callable[[], ThinkingGraphBuilder]) -> None:
    global _WORKER_BUILDER
    _WORKER_BUILDER = make_builder()


def _build_chunk(chunk: list[tuple[str, str, list[str], list[str]]]) -> tuple[list[ThinkingGraph], dict]:
    # the graphs travel pickled as they are: rebuilding them from dicts re-validated every path in
    # the parent, which then cost more CPU than the two workers' searches together
    builder = _WORKER_BUILDER
    before = Counter(builder.stats)
    graphs = [builder.build(*request) for request in chunk]
    return graphs, dict(builder.stats - before)


@dataclass(frozen=True)
class SnapshotBuilderFactory:
    """Makes a builder over a saved snapshot (memory-mapped); picklable, for ``build_parallel``."""

    snapshot_dir: Path
    associations: pl.DataFrame
    options: ThinkingOptions
    graph_hash: str = ""
    pair_cache: int = 100_000

    def __call__(self) -> ThinkingGraphBuilder:
        from graphkit.thinking.snapshot import Snapshot

        snapshot = Snapshot.load(self.snapshot_dir)
        return ThinkingGraphBuilder(
            snapshot.adjacency(self.options.search),
            AssociationIndex(self.associations),
            self.options,
            graph_hash=self.graph_hash or snapshot.meta.get("graph_hash", ""),
            pair_cache=self.pair_cache,
        )


def build_parallel(
    make_builder: Callable[[], ThinkingGraphBuilder],
    requests: Sequence[tuple[str, str, list[str], list[str]]],
    *,
    workers: int = 2,
    chunk_size: int = 16,
    stats: Counter | None = None,
) -> Iterator[ThinkingGraph]:
    """Thinking graphs of ``requests`` in order, built by ``workers`` spawned processes.

    ``make_builder`` (picklable) runs once in each worker. Requests sorted by task and target
    reuse each worker's level cache best.
    """
    if workers <= 1:
        builder = make_builder()
        for request in requests:
            yield builder.build(*request)
        if stats is not None:
            stats.update(builder.stats)
        return
    chunks = [list(requests[i : i + chunk_size]) for i in range(0, len(requests), chunk_size)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(make_builder,)) as pool:
        for graphs, counts in pool.imap(_build_chunk, chunks):
            if stats is not None:
                stats.update(counts)
            yield from graphs
