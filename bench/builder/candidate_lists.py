"""Candidate lists for untrained models (the reference's ``make_candidates``), per sample.

- ``yes_no``: ["yes", "no"].
- ``tables``: the event tables with at least one event in the build (next_event).
- ``similar_items``: when the task's vocabulary (every gold item of the build) has at most
  ``all_if_vocabulary_at_most`` items, the whole vocabulary, sorted; otherwise the gold items plus
  ``max`` other items, preferring items similar to the gold ones. The reference read similar items
  from files it did not publish; here an item's similar items are the items that appear most often
  together with it in the gold sets of the train split (ties: overall frequency, then name), and
  each gold item brings its top ``max // len(gold) + 1`` of them. When that is fewer than ``max``
  items, the most frequent items fill the list, so every list has the same length as far as the
  vocabulary allows. Lists are sorted by name, so an item's place says nothing about the gold; the
  seed plays no part.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from bench.taskdef import TaskDef

SIMILAR_PER_ITEM = 100
COOCCURRENCE_SAMPLES = 20_000  # gold sets (by id) co-occurrence is counted on: enough to rank


def _same_list(values: list[str], n: int) -> pl.Series:
    one = pl.Series("candidates", [values], dtype=pl.List(pl.String))
    return one.gather(np.zeros(n, dtype=np.int64))


def candidate_lists(task: TaskDef, samples: pl.DataFrame, tables: list[str]) -> pl.Series:
    """One candidate list per row of ``samples`` (columns id, split, label)."""
    mode = task.candidates.mode
    if mode == "yes_no":
        return _same_list(["yes", "no"], samples.height)
    if mode == "tables":
        return _same_list(list(tables), samples.height)
    gold = samples.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), "id", "split", pl.col("label").alias("items")
    )
    if not isinstance(samples.schema["label"], pl.List):
        gold = gold.with_columns(pl.concat_list("items").alias("items"))
    pairs = (
        gold.select("row", "id", "split", "items")
        .explode("items")
        .drop_nulls("items")
        .rename({"items": "item"})
    )
    frequency = pairs.group_by("item").len().sort(["len", "item"], descending=[True, False])
    vocabulary = frequency["item"].to_list()
    limit = task.candidates.all_if_vocabulary_at_most
    if limit is not None and len(vocabulary) <= limit:
        return _same_list(sorted(vocabulary), samples.height)
    size = task.candidates.max or SIMILAR_PER_ITEM
    similar = _similar(pairs, frequency, size)
    gold_pairs = pairs.select("row", "item").unique()
    # each gold item brings its most similar items, an equal share of the list each
    share = gold_pairs.group_by("row").agg((size // pl.len() + 1).alias("share"))
    pool = (
        gold_pairs.join(share, on="row")
        .join(similar, on="item", how="inner")
        .filter(pl.col("rank") < pl.col("share"))
        .select("row", pl.col("similar").alias("item"), "rank")
        .join(gold_pairs, on=["row", "item"], how="anti")
        .group_by("row", "item")
        .agg(pl.col("rank").min())
        .sort("row", "rank", "item")
        .filter(pl.int_range(pl.len()).over("row") < size)
        .select("row", "item")
    )
    # the most frequent items fill what similarity leaves open
    need = (
        gold.select("row")
        .join(pool.group_by("row").len(), on="row", how="left")
        .select("row", (size - pl.col("len").fill_null(0)).alias("need"))
        .filter(pl.col("need") > 0)
    )
    top = frequency.head(size + int(gold["items"].list.len().max() or 0)).select(
        "item", pl.int_range(pl.len()).alias("by_frequency")
    )
    fill = (
        need.join(top, how="cross")
        .join(gold_pairs, on=["row", "item"], how="anti")
        .join(pool, on=["row", "item"], how="anti")
        .sort("row", "by_frequency")
        .filter(pl.int_range(pl.len()).over("row") < pl.col("need"))
        .select("row", "item")
    )
    lists = pl.concat([gold_pairs, pool, fill]).group_by("row").agg(pl.col("item").sort().alias("candidates"))
    return (
        gold.select("row")
        .join(lists, on="row", how="left", maintain_order="left")["candidates"]
        .fill_null(pl.lit([], dtype=pl.List(pl.String)))
    )


def _similar(pairs: pl.DataFrame, frequency: pl.DataFrame, size: int) -> pl.DataFrame:
    """item, similar: up to ``size`` items per item, by co-occurrence in train gold sets."""
    train = pairs.filter(pl.col("split") == "train")
    if train.is_empty():
        train = pairs
    ids = train.select("id").unique().sort("id").head(COOCCURRENCE_SAMPLES)
    sets = train.join(ids, on="id", how="semi").select("id", "item").unique()
    return (
        sets.join(sets, on="id", suffix="_other")
        .filter(pl.col("item") != pl.col("item_other"))
        .group_by("item", "item_other")
        .len("together")
        .join(frequency.rename({"item": "item_other", "len": "frequency"}), on="item_other", how="left")
        .sort(["item", "together", "frequency", "item_other"], descending=[False, True, True, False])
        .group_by("item", maintain_order=True)
        .agg(pl.col("item_other").head(size).alias("similar"))
        .with_columns(pl.int_ranges(pl.col("similar").list.len()).alias("rank"))
        .explode("similar", "rank")
    )
