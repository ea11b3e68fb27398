"""The builder's parts on hand-made data: splits, context windows, sampling keys, candidate lists, items, card."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl
import pytest
import yaml

from bench.builder import sampling
from bench.builder.candidate_lists import candidate_lists
from bench.builder.items import row_items
from bench.builder.plan import BuildConfig, parse_per_task, parse_shard
from bench.builder.windows import EventWindows
from bench.card import card_markdown
from bench.splits import parse_ratios, split_frame, split_of
from bench.taskdef import load_tasks
from graphkit.errors import ConfigError

T0 = dt.datetime(2150, 1, 1)


# ---------------------------------------------------------------------------- splits


def test_split_is_a_fixed_function_of_the_subject_and_follows_the_ratios():
    subjects = range(10_000_000, 10_004_000)
    splits = [split_of(s) for s in subjects]
    assert splits == [split_of(s) for s in subjects]
    shares = {name: splits.count(name) / len(splits) for name in ("train", "val", "test")}
    assert (
        abs(shares["train"] - 0.8) < 0.03
        and abs(shares["val"] - 0.1) < 0.02
        and abs(shares["test"] - 0.1) < 0.02
    )
    frame = split_frame(list(subjects)[:300], (0.5, 0.0, 0.5))
    assert set(frame["split"].cast(pl.String)) == {"train", "test"}
    assert frame["split"].cast(pl.String).to_list() == [
        split_of(s, (0.5, 0.0, 0.5)) for s in frame["subject_id"]
    ]
    assert {split_of(s, (0.0, 0.0, 1.0)) for s in subjects} == {"test"}


@pytest.mark.parametrize("bad", ["0.8,0.1", "a,b,c", "0.8,0.3,0.1", "-0.1,0.6,0.5"])
def test_bad_split_ratios_name_the_option(bad):
    with pytest.raises(ConfigError, match="--split-ratios"):
        parse_ratios(bad)


def test_options_are_parsed_or_refused():
    assert parse_shard("2/4") == (2, 4) and parse_shard(None) == (0, 1)
    for bad in ("4/4", "x", "1/0", "-1/3"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)
    assert (
        parse_per_task("12") == 12
        and parse_per_task("reference") == "reference"
        and parse_per_task(None) is None
    )
    with pytest.raises(ConfigError, match="--per-task"):
        parse_per_task("many")
    with pytest.raises(ConfigError, match="--style"):
        BuildConfig(style="fancy")
    task = load_tasks(keys=["labevents"])["labevents"]
    assert BuildConfig(per_task="reference").cap(task, "test") == task.reference.samples_ehr_bench
    assert BuildConfig(per_task=7).cap(task, "train") == 7 and BuildConfig().cap(task, "val") is None


# ---------------------------------------------------------------------------- windows


def _random_events(rng: random.Random) -> pl.DataFrame:
    rows = []
    tables = ["labevents", "poe", "discharge", "admissions", "transfers"]
    for subject in (11, 12, 13):
        admissions = [subject * 100 + k for k in range(2)]
        for _ in range(rng.randint(20, 60)):
            hadm = rng.choice(admissions + [None])
            rows.append((subject, hadm, T0 + dt.timedelta(hours=rng.randint(0, 200)), rng.choice(tables)))
    rows.sort(key=lambda r: (r[0], r[2]))
    return pl.DataFrame(
        [(i, *r) for i, r in enumerate(rows)],
        schema={
            "event_id": pl.Int64,
            "subject_id": pl.Int64,
            "hadm_id": pl.Int64,
            "time": pl.Datetime("us"),
            "table": pl.String,
        },
        orient="row",
    )


def _naive(events: pl.DataFrame, window: dict, excluded: set[str]) -> list[int]:
    """The window rule of docs/interfaces.md §2, one event at a time."""
    rows = [
        r
        for r in events.iter_rows(named=True)
        if r["table"] not in excluded and r["subject_id"] == window["subject_id"]
    ]
    inside = [r for r in rows if window["start"] <= r["time"] < window["end"]]
    if not window["same_admission"]:
        return [r["event_id"] for r in inside]
    own = [r for r in inside if r["hadm_id"] == window["hadm_id"]]
    if window["hadm_id"] is None or not own:
        return [r["event_id"] for r in own]
    first, last = own[0]["event_id"], own[-1]["event_id"]
    loose = [r for r in rows if r["hadm_id"] is None and first <= r["event_id"] <= last]
    return sorted({r["event_id"] for r in own + loose})


def test_window_counts_and_lists_match_the_rule_event_by_event():
    rng = random.Random(7)
    events = _random_events(rng)
    index = EventWindows(events)
    windows = []
    for _ in range(300):
        subject = rng.choice([11, 12, 13, 14])  # 14 has no events
        start = T0 + dt.timedelta(hours=rng.randint(-10, 200), seconds=rng.choice([0, 0, 30]))
        windows.append(
            {
                "subject_id": subject,
                "hadm_id": rng.choice([subject * 100, subject * 100 + 1, None, 999]),
                "start": start,
                "end": start + dt.timedelta(hours=rng.randint(0, 48)),
                "same_admission": rng.random() < 0.7,
            }
        )
    frame = pl.DataFrame(
        windows,
        schema={
            "subject_id": pl.Int64,
            "hadm_id": pl.Int64,
            "start": pl.Datetime("us"),
            "end": pl.Datetime("us"),
            "same_admission": pl.Boolean,
        },
    )
    for excluded in (set(), {"admissions", "discharge"}):
        counts = index.count(frame, frozenset(excluded))
        listed = index.list(frame, frozenset(excluded))
        by_window = {w: g["event_id"].to_list() for (w,), g in listed.group_by("window")}
        for i, window in enumerate(windows):
            expected = _naive(events, window, excluded)
            assert counts[i] == len(expected), (window, excluded)
            assert by_window.get(i, []) == expected, (window, excluded)


# ---------------------------------------------------------------------------- sampling


def _pool(n: int, rng: random.Random) -> pl.DataFrame:
    ids = [f"t/{i}" for i in range(n)]
    labels = [rng.choice(["yes", "no", "no", "no"]) for _ in ids]
    weight = pl.Series([rng.choice([1.0, 2.0, 5.0]) for _ in ids])
    keys = sampling.keys(pl.Series(ids), weight, seed=3)
    return pl.DataFrame({"id": ids, "label": labels, "sample_key": keys})


@pytest.mark.parametrize(("cap", "balance"), [(40, False), (40, True), (None, True), (500, False)])
def test_merging_the_units_local_selections_equals_one_global_selection(cap, balance):
    rng = random.Random(cap or 1)
    pool = _pool(400, rng)
    units = [pool.filter(pl.int_range(pl.len()) % 3 == k) for k in range(3)]
    local = pl.concat([sampling.select(u, cap, balance, final=False) for u in units])
    merged = sampling.select(local, cap, balance, final=True)["id"].sort().to_list()
    direct = sampling.select(pool, cap, balance, final=True)["id"].sort().to_list()
    assert merged == direct
    # units run one after another, each leaving out what the earlier ones' keys rule out
    kept = pool.clear()
    for unit in units:
        kept = pl.concat([kept, sampling.select(unit, cap, balance, final=False, known=kept)])
    assert sampling.select(kept, cap, balance, final=True)["id"].sort().to_list() == direct
    if cap and cap < 100:
        assert kept.height < local.height  # and they did serialize fewer samples
    chosen = pool.filter(pl.col("id").is_in(direct))
    if balance:
        counts = chosen.group_by("label").len()["len"].to_list()
        assert len(set(counts)) == 1  # equal per label (there are enough of both here)
    elif cap:
        assert chosen.height == min(cap, pool.height)


def test_sampling_keys_are_seeded_and_weighted():
    ids = pl.Series([f"s{i}" for i in range(2000)])
    heavy = pl.Series([4.0] * 1000 + [1.0] * 1000)
    keys = sampling.keys(ids, heavy, seed=0)
    assert keys.to_list() == sampling.keys(ids, heavy, seed=0).to_list()
    assert keys.to_list() != sampling.keys(ids, heavy, seed=1).to_list()
    top = pl.DataFrame({"id": ids, "k": keys}).sort("k", descending=True).head(200)
    heavy_share = top.filter(pl.col("id").str.slice(1).cast(pl.Int64) < 1000).height / 200
    assert heavy_share > 0.7  # weight 4 against 1: drawn far more often


def test_inverse_frequency_weights_favour_rare_items():
    task = load_tasks(keys=["emar"])["emar"]
    frame = pl.DataFrame({"weight_items": [["common"], ["common"], ["common"], ["rare"], ["common", "rare"]]})
    weights = sampling.weights(task, frame).to_list()
    assert weights[3] > weights[4] > weights[0] == weights[1]
    unweighted = load_tasks(keys=["labevents"])["labevents"]
    assert set(sampling.weights(unweighted, frame).to_list()) == {1.0}


# ---------------------------------------------------------------------------- candidate lists


def test_candidate_lists_hold_the_gold_items_and_similar_ones():
    task = load_tasks(keys=["labevents"])["labevents"]
    rng = random.Random(2)
    vocabulary = [f"item{i:03d}" for i in range(300)]
    labels = [rng.sample(vocabulary[: 40 + 5 * (i % 50)], rng.randint(1, 6)) for i in range(400)]
    samples = pl.DataFrame(
        {"id": [f"x/{i}" for i in range(400)], "split": ["train"] * 300 + ["test"] * 100, "label": labels}
    )
    lists = candidate_lists(task, samples, tables=[])
    again = candidate_lists(task, samples, tables=[])
    assert lists.to_list() == again.to_list()
    for gold, candidates in zip(labels, lists.to_list(), strict=True):
        assert set(gold) <= set(candidates)
        assert len(candidates) == len(set(candidates)) == len(set(gold)) + 100
        assert candidates == sorted(candidates)  # the place of an item says nothing about the gold
    # items seen with the gold ones come first: item000..item039 appear in every gold pool
    first = lists.to_list()[0]
    assert len(set(first) & set(vocabulary[:40])) >= 35
    small = samples.with_columns(
        pl.col("label").list.eval(pl.element().str.slice(0, 5))
    )  # item0, item1, item2
    assert candidate_lists(task, small, tables=[]).to_list()[0] == ["item0", "item1", "item2"]
    risk = load_tasks(keys=["Inpatient_Mortality"])["Inpatient_Mortality"]
    assert candidate_lists(risk, samples.head(2), []).to_list() == [["yes", "no"]] * 2
    nxt = load_tasks(keys=["next_event"])["next_event"]
    assert candidate_lists(nxt, samples.head(1), ["labevents", "poe"]).to_list() == [["labevents", "poe"]]


# ---------------------------------------------------------------------------- items and card


def test_item_keys_follow_the_contract():
    labs = pl.DataFrame(
        {
            "event_id": [1, 1, 2],
            "pos": [0, 1, 0],
            "itemid": [50912, None, 51221],
            "item_name": ["Creatinine", "x", None],
        }
    )
    items = row_items("labevents", labs)["item"].to_list()
    assert items == [
        {"table": "labevents", "key": "labevents:50912", "name": "Creatinine"},
        {"table": "labevents", "key": "labevents:51221", "name": "51221"},
    ]
    micro = pl.DataFrame(
        {
            "event_id": [3],
            "pos": [0],
            "test_itemid": [90201],
            "test_name": ["BLOOD CULTURE"],
            "ab_name": ["VANCOMYCIN"],
        }
    )
    keys = {i["key"] for i in row_items("microbiologyevents", micro)["item"]}
    assert keys == {"microbiologyevents:test:90201", "microbiologyevents:VANCOMYCIN"}
    dx = pl.DataFrame(
        {"event_id": [4], "pos": [0], "icd_version": [10], "icd_code": ["N179"], "icd_name": ["AKI"]}
    )
    assert row_items("diagnoses_icd", dx)["item"][0]["key"] == "diagnoses_icd:10:N179"
    assert row_items("vitalsign", dx).is_empty()


def test_card_readme_declares_one_datasets_config_per_task():
    card = {
        "name": "x",
        "package_version": "0",
        "config_hash": "h",
        "seed": 0,
        "config": {"style": "clean", "max_tokens": 10},
        "source": {"path": "/p", "kind": "raw", "modules": ["hosp"], "fingerprint": "f"},
        "subjects": 1,
        "events": 2,
        "units": 1,
        "splits": {"rule": "r", "ratios": {"train": 1.0}},
        "tasks": {
            "labevents": {
                "counts": {"train": 1},
                "version": 1,
                "family": "decision",
                "skipped": {},
                "files": {"train": "data/labevents/train.parquet", "test": "data/labevents/test.parquet"},
            }
        },
        "skipped_tasks": {"radiology": "the source has no note module"},
        "undated_rows": {},
    }
    text = card_markdown(card)
    header = yaml.safe_load(text.split("---")[1])
    assert header["configs"] == [
        {
            "config_name": "labevents",
            "data_files": [
                {"split": "train", "path": "data/labevents/train.parquet"},
                {"split": "test", "path": "data/labevents/test.parquet"},
            ],
        }
    ]
    assert "radiology" in text
