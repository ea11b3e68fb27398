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
