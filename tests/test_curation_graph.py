"""Curation on a live graph (the tiny release built by `graph build`): changes applied at once,
refusals, optimistic concurrency, replay after rebuilds, and the thinking layer never using a
rejected edge, mapping or association."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graphkit.curation import Curation, Ledger, StaleEditError, replay
from graphkit.curation.affected import affected_cases
from graphkit.curation.graph import snapshot_dir
from graphkit.curation.ledger import EdgeKey
from graphkit.errors import ConfigError, InputError
from graphkit.thinking.store_io import load_associations, load_item_links
from tests.curation_data import (
    DM,
    EXTRA_MRREL,
    HEARING_LOSS,
    HEPARIN,
    HEPARIN_MAPPING,
    HEPARIN_TREATS,
    ISA,
    METFORMIN,
    METFORMIN_TREATS,
    METOPROLOL_TREATS,
    T2DM,
    TASK,
    cohort,
    mine,
    reset,
    think,
    tiny_fixture,
    used_edges,
)
from tests.kg_data import TINY_MRREL


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    yield from tiny_fixture(tmp_path_factory)


@pytest.fixture()
def graph(tiny):
    reset(tiny)
    yield tiny
    reset(tiny)


def relationship_count(store) -> int:
    return store.query("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]


def test_changes_apply_at_once_and_nothing_is_deleted(graph):
    store, curation = graph.store, Curation(graph.store, graph.workspace)
    before = relationship_count(store)
    entry = curation.reject(HEPARIN_TREATS, curator="alice", reason="heparin does not treat diabetes",
                            evidence=["https://example.org/label"])
    assert curation.live(HEPARIN_TREATS)["status"] == "rejected" and relationship_count(store) == before
    assert (entry.seq, entry.op, entry.edge, entry.curator) == (1, "reject", HEPARIN_TREATS, "alice")
    curation.restore(HEPARIN_TREATS.edge_id, curator="bob", reason="checked again")  # by id
    assert curation.live(HEPARIN_TREATS)["status"] == "active"
    note = curation.annotate(f"{ISA.source}|ISA|{ISA.target}", curator="carol", reason="fine")  # key without SAB
    assert note.edge == ISA and curation.live(ISA)["status"] == "active"
    added = curation.add(HEPARIN, "CAUSE_OF", HEARING_LOSS, curator="dave", reason="case report", evidence=["PMID:1"])
    live = curation.live(added.edge)
    assert (live["source"], live["sab"], live["status"], live["rela"]) == ("curator", "CURATOR", "active", "cause_of")
    assert relationship_count(store) == before + 1
    assert [e.op for e in Ledger.of(graph.workspace).entries()] == ["reject", "restore", "annotate", "add"]


def test_add_of_a_mapping_with_curator_provenance(graph):
    curation = Curation(graph.store, graph.workspace)
    entry = curation.add("prescriptions:Heparin Sodium", "MAPS_TO", DM, curator="dave", reason="test mapping")
    live = curation.live(entry.edge)
    assert (live["method"], live["score"], live["source"]) == ("curator", 1.0, "curator")
    assert ("prescriptions:Heparin Sodium", DM) in set(load_item_links(graph.store).rows())


@pytest.mark.parametrize(
    "action, error, message",
    [
        (lambda c: c.reject(HEPARIN_TREATS, curator="b", reason="again"), ConfigError,
         r"already rejected \(entry 1, reject by alice\)"),
        (lambda c: c.restore(METFORMIN_TREATS, curator="b", reason="r"), ConfigError, "already active"),
        (lambda c: c.add(METFORMIN, "MAY_TREAT", T2DM, sab="RXNORM", curator="b", reason="r"), ConfigError,
         "already has this edge"),
        (lambda c: c.add(METFORMIN, "MAY_TREAT", "C9999999", curator="b", reason="r"), InputError, "ends are not"),
        (lambda c: c.add(METFORMIN, "ASSOCIATED_WITH", T2DM, curator="b", reason="r"), ConfigError, "mined"),
        (lambda c: c.reject(EdgeKey("ICD10CM:E11.9", "CODE_OF", T2DM), curator="b", reason="r"), ConfigError,
         "bookkeeping"),
        (lambda c: c.reject(EdgeKey(METFORMIN, "ISA", T2DM, "MSH"), curator="b", reason="r"), InputError,
         "no such edge"),
        (lambda c: c.reject("0123456789abcdef0123", curator="b", reason="r"), InputError, "no edge with this id"),
        (lambda c: c.annotate(EdgeKey(METFORMIN, "ISA", T2DM), curator="b", reason="r"), InputError, "no such edge"),
    ],
    ids=["reject-twice", "restore-active", "add-existing", "add-missing-end", "add-association", "code-of",
         "unknown-edge", "unknown-id", "annotate-unknown"],
)
def test_refused_changes_write_nothing(graph, action, error, message):
    curation = Curation(graph.store, graph.workspace)
    curation.reject(HEPARIN_TREATS, curator="alice", reason="wrong")
    with pytest.raises(error, match=message):
        action(curation)
    assert len(curation.ledger.entries()) == 1


def test_a_stale_decision_is_refused_and_overwrites_nothing(graph):
    alice, bob = (Curation(graph.store, graph.workspace) for _ in range(2))  # two curators, two ledger readers
    seen = bob.ledger.version(HEPARIN_TREATS)  # both look at the never-curated edge: version 0
    alice.reject(HEPARIN_TREATS, curator="alice", reason="wrong fact", expected_version=seen)
    with pytest.raises(StaleEditError, match="changed after you looked at it: entry 1, reject by alice") as caught:
        bob.reject(HEPARIN_TREATS, curator="bob", reason="also wrong", expected_version=seen)
    assert "look at the edge again" in caught.value.fix
    bob.annotate(HEPARIN_TREATS, curator="bob", reason="agree")  # a note never conflicts
    assert [(e.curator, e.op) for e in Ledger.of(graph.workspace).entries()] == [("alice", "reject"), ("bob", "annotate")]
    bob.restore(HEPARIN_TREATS, curator="bob", reason="on reflection", expected_version=2)
    assert alice.live(HEPARIN_TREATS)["status"] == "active"


def test_a_rebuild_keeps_every_rejection_and_reports_vanished_edges(graph):
    curation = Curation(graph.store, graph.workspace)
    curation.reject(HEPARIN_TREATS, curator="alice", reason="wrong fact")
    curation.reject(METOPROLOL_TREATS, curator="alice", reason="wrong fact")
    curation.reject(HEPARIN_MAPPING, curator="alice", reason="wrong item")
    curation.reject(ISA, curator="alice", reason="test")
    curation.restore(ISA, curator="alice", reason="test over")
    added = curation.add(HEPARIN, "CAUSE_OF", HEARING_LOSS, curator="bob", reason="case report")
    ledger_bytes = curation.ledger.path.read_bytes()
    try:
        # a new release: the metoprolol fact is gone, a new one appears; everything is loaded anew
        without_metoprolol = TINY_MRREL + EXTRA_MRREL.split("C0494562||")[0]
        result = graph.rebuild(without_metoprolol + "C0042313||CUI|RO|C0014834||CUI|may_treat|R9||RXNORM|RXNORM|||N||\n")
        assert "load" in result.ran and "post_build" in result.ran
        assert curation.live(HEPARIN_TREATS)["status"] == "rejected"
        assert curation.live(HEPARIN_MAPPING)["status"] == "rejected"
        assert curation.live(ISA)["status"] == "active" and curation.live(added.edge)["source"] == "curator"
        assert curation.live(METOPROLOL_TREATS) is None
        state = json.loads((graph.workspace.root / "graph" / "build" / "kg" / "state.json").read_text())
        hook = state["steps"]["post_build"]["hooks"]["graphkit.curation.replay.replay_after_build"]
        assert (hook["entries"], hook["rejected"], hook["missing"]) == (6, 2, 1)
        assert hook["missing_edges"][0]["edge"] == METOPROLOL_TREATS.text
        report = json.loads((graph.workspace.curation / "replay.json").read_text())
        assert report["missing_edges"][0]["last_op"] == "reject"
        assert curation.ledger.path.read_bytes() == ledger_bytes  # reported, never dropped
        # the fact comes back in a later release: the curator's rejection applies again
        result = graph.rebuild(TINY_MRREL + EXTRA_MRREL)
        assert curation.live(METOPROLOL_TREATS)["status"] == "rejected"
        again = replay(graph.store, graph.workspace)  # idempotent
        assert (again.rejected, again.active, again.added, again.n_missing) == (3, 2, 1, 0)
    finally:
        graph.rebuild(TINY_MRREL + EXTRA_MRREL)


def test_path_search_and_mining_never_use_rejected_edges(graph, tmp_path):
    store, curation = graph.store, Curation(graph.store, graph.workspace)
    samples = tmp_path / "samples.parquet"
    cohort().write_parquet(samples)
    mine(store, cohort())
    out = tmp_path / "thinking.jsonl"
    report, graphs = think(store, graph.workspace, samples, out, live=False)
    assert HEPARIN_TREATS.edge_id in used_edges(graphs) and report["adjacency"].endswith("snapshot/kg")
    users = {g.sample_id for g in graphs.values() if HEPARIN_TREATS.edge_id in g.used_edge_ids()}
    assert users == {f"cur-{i:02d}" for i in range(6)}
    active_before = np.load(snapshot_dir(graph.workspace, "kg") / "active.npy").sum()

    curation.reject(HEPARIN_TREATS, curator="alice", reason="heparin does not treat diabetes")
    # the saved snapshot (same graph hash, so it is reused) got the rejection at once
    assert np.load(snapshot_dir(graph.workspace, "kg") / "active.npy").sum() == active_before - 1
    for live in (False, True):
        _, graphs = think(store, graph.workspace, samples, out, live=live)
        assert HEPARIN_TREATS.edge_id not in used_edges(graphs)
        assert METFORMIN_TREATS.edge_id in used_edges(graphs)  # the other explanation remains
    # the cases built on the rejected edge are still known after their thinking graphs were rebuilt
    affected, entries = affected_cases(curation.ledger, graph.workspace, store=store)
    assert {c.sample_id for c in affected} == users and [e.seq for e in entries] == [1]

    # a rejected association is no longer evidence
    association = EdgeKey(HEPARIN, "ASSOCIATED_WITH", T2DM, f"EHRR1_ASSOC:{TASK}")
    curation.reject(association, curator="alice", reason="spurious")
    assert association.edge_id not in set(load_associations(store, [TASK])["edge_id"])
    _, graphs = think(store, graph.workspace, samples, out, live=True)
    assert all(HEPARIN not in g.evidence.get(T2DM, []) for g in graphs.values())
    assert all(g.evidence.get(T2DM) == [METFORMIN] for g in graphs.values() if T2DM in g.targets)
    # re-mining keeps it rejected; a rejected mapping keeps heparin out of mining altogether
    mine(store, cohort())
    assert curation.live(association)["status"] == "rejected"
    curation.reject(HEPARIN_MAPPING, curator="alice", reason="wrong item")
    assert HEPARIN not in set(mine(store, cohort()).associations["source"])

    # an added edge changes the adjacency: the snapshot is dropped and exported anew
    curation.add(METFORMIN, "CAUSE_OF", DM, curator="bob", reason="test")
    assert not snapshot_dir(graph.workspace, "kg").exists()
