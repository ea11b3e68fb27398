"""Association mining on hand-made cohorts, numbers worked out by hand; train split only."""

from __future__ import annotations

import polars as pl
import pytest

from graphkit.errors import ConfigError, InputError
from graphkit.store.vocab import edge_id
from graphkit.thinking.mining import cohort_hash, mine_associations, sample_concepts
from graphkit.thinking.options import MiningOptions


def cohort(rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["sample_id", "task", "split", "role", "cui"], orient="row")


def default_cohort(split: str = "train", prefix: str = "s") -> list[tuple]:
    """30 samples of task dx. X: context of s0-s4; Y: context of s0-s5; Z: context of s10-s14.
    T: target of s0-s4; U: target of s10-s13. Every sample has context W (common)."""
    rows = []
    for i in range(30):
        sid = f"{prefix}{i}"
        rows.append((sid, "dx", split, "context", "W"))
        if i < 5:
            rows += [(sid, "dx", split, "context", "X"), (sid, "dx", split, "target", "T")]
        if i < 6:
            rows.append((sid, "dx", split, "context", "Y"))
        if 10 <= i < 15:
            rows.append((sid, "dx", split, "context", "Z"))
        if 10 <= i < 14:
            rows.append((sid, "dx", split, "target", "U"))
    return rows


def test_default_thresholds_support_5_and_lift_strictly_above_5():
    result = mine_associations(cohort(default_cohort()))
    table = result.associations
    # X -> T: support 5, n_X 5, n_T 5, N 30: confidence 1, lift 5*30/(5*5) = 6 > 5: kept
    # Y -> T: support 5, n_Y 6: lift 5*30/(6*5) = 5.0, not > 5: dropped
    # Z -> U: support 4 < 5: dropped;  W -> T: lift 5*30/(30*5) = 1: dropped
    assert table.select("task", "source", "target", "support", "source_count", "target_count", "n_samples", "rank").rows() == [
        ("dx", "X", "T", 5, 5, 5, 30, 1)
    ]
    assert table["confidence"][0] == pytest.approx(1.0)
    assert table["lift"][0] == pytest.approx(6.0)
    assert table["edge_id"][0] == edge_id("X", "ASSOCIATED_WITH", "T", "EHRR1_ASSOC:dx")


def test_numbers_on_a_small_cohort_and_configurable_thresholds():
    rows = []
    # N = 10; A in context of s0-s5, B in all, T target of s0-s4, U target of s5-s9
    for i in range(10):
        sid = f"s{i}"
        rows.append((sid, "dx", "train", "context", "B"))
        if i < 6:
            rows.append((sid, "dx", "train", "context", "A"))
        rows.append((sid, "dx", "train", "target", "T" if i < 5 else "U"))
    frame = cohort(rows)
    loose = mine_associations(frame, MiningOptions(min_support=1, min_lift=0.0))
    got = {(r["source"], r["target"]): (r["support"], r["confidence"], r["lift"]) for r in loose.associations.to_dicts()}
    assert got[("A", "T")] == (5, pytest.approx(5 / 6), pytest.approx(5 * 10 / (6 * 5)))
    assert got[("A", "U")] == (1, pytest.approx(1 / 6), pytest.approx(1 * 10 / (6 * 5)))
    assert got[("B", "T")] == (5, pytest.approx(0.5), pytest.approx(1.0))
    assert got[("B", "U")] == (5, pytest.approx(0.5), pytest.approx(1.0))
    assert len(got) == 4
    # lift is strict: B's lift of exactly 1.0 is not above 1.0
    strict = mine_associations(frame, MiningOptions(min_support=1, min_lift=1.0))
    assert sorted(strict.associations.select("source", "target").rows()) == [("A", "T")]
    # minimum support and confidence
    assert mine_associations(frame, MiningOptions(min_support=6, min_lift=0.0)).associations.height == 0
    confident = mine_associations(frame, MiningOptions(min_support=1, min_lift=0.0, min_confidence=0.8))
    assert confident.associations.select("source", "target").rows() == [("A", "T")]


def test_top_k_per_target_orders_by_lift_then_support_then_cui():
    rows = []
    # N = 20, target T in s0-s9. P and Q: context of s0-s4 (support 5, lift 2); R: context of
    # s0-s7 plus s10-s11 (support 8, lift 8*20/(10*10) = 1.6); S: s0-s5 (support 6, lift 2)
    members = {"P": range(5), "Q": range(5), "S": range(6), "R": [*range(8), 10, 11]}
    for i in range(20):
        sid = f"s{i}"
        rows.append((sid, "dx", "train", "context", "W"))  # every sample exists: N = 20
        if i < 10:
            rows.append((sid, "dx", "train", "target", "T"))
        for cui, where in members.items():
            if i in where:
                rows.append((sid, "dx", "train", "context", cui))
    frame = cohort(rows)
    ranked = mine_associations(frame, MiningOptions(min_support=5, min_lift=1.0, top_k=10)).associations
    # S and P, Q tie on lift 2.0; S has more support; P before Q by CUI; R has the lowest lift
    assert ranked.select("source", "rank").rows() == [("S", 1), ("P", 2), ("Q", 3), ("R", 4)]
    top2 = mine_associations(frame, MiningOptions(min_support=5, min_lift=1.0, top_k=2)).associations
    assert top2["source"].to_list() == ["S", "P"]


def test_a_concept_is_never_associated_with_itself_and_tasks_are_separate():
    rows = [(f"s{i}", "dx", "train", role, "T") for i in range(6) for role in ("context", "target")]
    rows += [(f"s{i}", "dx", "train", "context", "A") for i in range(6)]
    rows += [(f"p{i}", "px", "train", "context", "A") for i in range(40)]
    rows += [(f"p{i}", "px", "train", "target", "T") for i in range(40)]
    result = mine_associations(cohort(rows), MiningOptions(min_support=5, min_lift=0.5))
    assert sorted(result.associations.select("task", "source", "target").rows()) == [("dx", "A", "T"), ("px", "A", "T")]
    assert {r["task"]: r["n_samples"] for r in result.runs} == {"dx": 6, "px": 40}
    ids = result.associations["edge_id"].to_list()
    assert len(set(ids)) == 2  # one edge per task: the sab carries the task
    only_px = mine_associations(cohort(rows), MiningOptions(min_support=5, min_lift=0.5), tasks=["px"])
    assert only_px.associations["task"].to_list() == ["px"]


def test_validation_and_test_samples_are_never_seen():
    train = default_cohort("train")
    # held-out samples that, if counted, would make Y and Z strong associations and change n
    leak = []
    for split in ("val", "test"):
        for i in range(40):
            sid = f"{split}{i}"
            leak += [(sid, "dx", split, "context", "Y"), (sid, "dx", split, "target", "T")]
            leak += [(sid, "dx", split, "context", "Z"), (sid, "dx", split, "target", "U")]
    clean = mine_associations(cohort(train))
    mixed = mine_associations(cohort(leak + train))
    assert mixed.associations.equals(clean.associations)
    assert mixed.runs == clean.runs
    (run,) = mixed.runs
    assert run["n_samples"] == 30
    assert run["cohort"] == cohort_hash([f"s{i}" for i in range(30)])
    # with no train rows at all there is nothing to mine
    held_out_only = mine_associations(cohort(leak))
    assert held_out_only.associations.height == 0 and held_out_only.runs == []


def test_samples_without_concepts_still_count_in_n():
    rows = default_cohort()
    extra = pl.DataFrame(
        {"id": [f"s{i}" for i in range(30)] + [f"e{i}" for i in range(10)] + ["v0"],
         "task": ["dx"] * 41, "split": ["train"] * 40 + ["val"]}
    )
    # 10 more train samples with no mapped item: N = 40, Y -> T lift 5*40/(6*5) = 6.67 is kept now
    result = mine_associations(cohort(rows), samples=extra)
    assert result.runs[0]["n_samples"] == 40
    assert sorted(result.associations["source"]) == ["X", "Y"]
    assert result.runs[0]["cohort"] == cohort_hash([f"s{i}" for i in range(30)] + [f"e{i}" for i in range(10)])


def test_sample_concepts_maps_items_through_links():
    samples = pl.DataFrame(
        {
            "id": ["a", "b"],
            "task": ["dx", "dx"],
            "split": ["train", "test"],
            "context_items": [
                [{"table": "labevents", "key": "labevents:50912", "name": "Creatinine"},
                 {"table": "labevents", "key": "labevents:99999", "name": "unmapped"}],
                [],
            ],
            "target_items": [[{"table": "diagnoses_icd", "key": "diagnoses_icd:10:N179", "name": "AKI"}], []],
        }
    )
    links = pl.DataFrame({"key": ["labevents:50912", "labevents:50912", "diagnoses_icd:10:N179"], "cui": ["C1", "C2", "C3"]})
    got = sample_concepts(samples, links).collect().sort("role", "cui")
    assert got.rows() == [("a", "dx", "train", "context", "C1"), ("a", "dx", "train", "context", "C2"), ("a", "dx", "train", "target", "C3")]
    with pytest.raises(InputError, match="context_items"):
        sample_concepts(samples.drop("context_items"), links)


def test_options_are_validated():
    with pytest.raises(ConfigError, match="min-support"):
        MiningOptions(min_support=0)
    with pytest.raises(ConfigError, match="top-k"):
        MiningOptions(top_k=0)
