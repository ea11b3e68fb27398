"""A small graph for the curation tests: the kg tests' tiny release (+ two facts) built by
`graph build` into its own workspace, so curation can reject, add and rebuild freely."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from graphkit.curation.ledger import EdgeKey
from graphkit.kg import BuildConfig, BuildResult, build_graph
from graphkit.store import open_store
from graphkit.workspace import Workspace
from tests.kg_data import TINY_MRREL, write_tiny_release

T2DM, DM, METFORMIN, HEPARIN, METOPROLOL, HEARING_LOSS = (
    "C0011860", "C0011849", "C0025598", "C0019134", "C0025859", "C0494562",
)
# "CUI2 RELA CUI1" per MRREL row: heparin may_treat T2DM (a wrong fact to reject),
# metoprolol may_treat unilateral hearing loss
EXTRA_MRREL = """\
C0011860||CUI|RO|C0019134||CUI|may_treat|R5||RXNORM|RXNORM|||N||
C0019134||CUI|RO|C0011860||CUI|may_be_treated_by|R6||RXNORM|RXNORM|||N||
C0494562||CUI|RO|C0025859||CUI|may_treat|R7||RXNORM|RXNORM|||N||
C0025859||CUI|RO|C0494562||CUI|may_be_treated_by|R8||RXNORM|RXNORM|||N||
"""
ISA = EdgeKey(T2DM, "ISA", DM, "MSH")
METFORMIN_TREATS = EdgeKey(METFORMIN, "MAY_TREAT", T2DM, "RXNORM")
HEPARIN_TREATS = EdgeKey(HEPARIN, "MAY_TREAT", T2DM, "RXNORM")
METOPROLOL_TREATS = EdgeKey(METOPROLOL, "MAY_TREAT", HEARING_LOSS, "RXNORM")
T2DM_ITEM = "diagnoses_icd:10:E119"


@dataclass
class TinyGraph:
    release: Path
    workspace: Workspace
    store: object
    result: BuildResult

    def rebuild(self, mrrel: str | None = None) -> BuildResult:
        """`graph build` again; with ``mrrel`` a new release (a changed MRREL) is built and loaded."""
        if mrrel is not None:
            (self.release / "MRREL.RRF").write_text(mrrel, encoding="utf-8")
        self.result = build(self.release, self.workspace)
        return self.result


def build(release: Path, workspace: Workspace) -> BuildResult:
    return build_graph(
        BuildConfig(umls=release, text="off"),
        workspace,
        store_factory=lambda: open_store(workspace, "embedded", linger=0),
    )


def tiny_fixture(tmp_path_factory) -> Iterator[TinyGraph]:
    """The body of each test module's ``tiny`` fixture: one tiny graph per module."""
    with tiny_graph(tmp_path_factory.mktemp("curation")) as graph:
        yield graph


@contextlib.contextmanager
def tiny_graph(root: Path) -> Iterator[TinyGraph]:
    release = write_tiny_release(root / "META", MRREL=TINY_MRREL + EXTRA_MRREL)
    workspace = Workspace(root / "ws")
    store = open_store(workspace, "embedded", linger=0)  # keeps the server up between builds
    try:
        graph = TinyGraph(release, workspace, store, build(release, workspace))
        store.register_relation_types(["ISA", "MAY_TREAT"])
        yield graph
    finally:
        store.close()


METFORMIN_ITEM, HEPARIN_ITEM = "prescriptions:MetFORMIN (Glucophage)", "prescriptions:Heparin"
HEPARIN_MAPPING = EdgeKey(HEPARIN_ITEM, "MAPS_TO", HEPARIN)
TASK = "diagnoses_icd"


def item(key: str) -> dict:
    return {"table": key.split(":")[0], "key": key, "name": key}


def cohort(context: tuple[str, ...] = (METFORMIN_ITEM, HEPARIN_ITEM), target: str = T2DM_ITEM,
           positives: int = 6, total: int = 40, prefix: str = "cur"):
    """Train samples: ``positives`` with ``context`` and the gold ``target``, the rest with neither
    (so the context concepts are associated with the target: support 6, lift 40/6 > 5)."""
    import polars as pl

    rows = [
        {"id": f"{prefix}-{i:02d}", "task": TASK, "split": "train",
         "context_items": [item(k) for k in context] if i < positives else [],
         "target_items": [item(target)] if i < positives else [item("diagnoses_icd:10:NONE")]}
        for i in range(total)
    ]
    return pl.DataFrame(rows)


def mine(store, samples) -> object:
    """Associations of the cohort mined on the live item links and written to the graph."""
    from graphkit.thinking import MiningOptions, mine_associations, sample_concepts
    from graphkit.thinking.store_io import load_item_links, write_associations

    result = mine_associations(sample_concepts(samples, load_item_links(store)), MiningOptions(), samples=samples)
    write_associations(store, result)
    return result


def think(store, workspace: Workspace, samples_file: Path, out: Path, *, live: bool):
    """`generate thinking` on the cohort (usage records written); the graphs by sample id."""
    from graphkit.thinking import ThinkingGraph, ThinkingOptions
    from graphkit.thinking.run import run_thinking
    from graphkit.thinking.store_io import load_item_links

    report = run_thinking(store, workspace, [samples_file], out, ThinkingOptions(), links=load_item_links(store),
                          live=live, workers=1, record=True)
    graphs = {g.sample_id: g for g in map(ThinkingGraph.from_json, out.read_text().splitlines())}
    return report, graphs


def used_edges(graphs) -> set[str]:
    return {edge for graph in graphs.values() for edge in graph.used_edge_ids()}


def reset(graph: TinyGraph) -> None:
    """The graph as built: statuses active, no curator edges, associations or usage records; no ledger."""
    import shutil

    store = graph.store
    store.query("MATCH ()-[r]->() WHERE r.status = 'rejected' SET r.status = 'active'")
    store.query("MATCH ()-[r]->() WHERE r.source = 'curator' OR r.source = 'association' DELETE r")
    store.query("MATCH (n) WHERE n:Case OR n:EdgeRef OR n:AssociationRun DETACH DELETE n")
    for folder in ("curation", "graph/snapshot", "thinking"):
        shutil.rmtree(graph.workspace.root / folder, ignore_errors=True)
