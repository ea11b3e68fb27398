"""Sample ids, weights and the seeded selection of ``--per-task N`` samples per task and split.

Selection is weighted sampling without replacement by keys (Efraimidis and Spirakis): each sample
draws ``u`` uniform in (0, 1) from a hash of (seed, sample id) and gets the key ``ln(u) / w``; the
N largest keys are the sample. Because a key depends only on the sample, its seed and its weight,
each unit of work can keep its own N largest and the merge of all units keeps the global N largest:
the result does not depend on how the work was split into jobs.

Weights (``sampling.weighting: inverse_target_frequency``, the reference's ``target_weight``):
``w = 1 / mean(relative frequency of the sample's target items)``, the frequencies counted over the
task's eligible samples in the same unit (a fixed set of subjects) as shares, so units of
different sizes weigh alike. Risk tasks count their label, next_event the event table.
``--balance`` (risk tasks whose YAML has ``balance_labels``): N // k samples per label (k labels
present), drawn uniformly; without N, every label is cut to the rarest label's count.
"""

from __future__ import annotations

import hashlib
import math

import polars as pl

from bench.taskdef import TaskDef


def sample_ids(frame: pl.DataFrame) -> pl.Series:
    """task/subject/admission/stay/anchor table/anchor time: unique per sample, readable, stable."""
    return frame.select(
        pl.concat_str(
            [
                pl.col("task"),
                pl.col("subject_id").cast(pl.String),
                pl.col("hadm_id").cast(pl.String).fill_null("-"),
                pl.col("stay_id").cast(pl.String).fill_null("-"),
                pl.col("anchor_table"),
                pl.col("anchor_time").dt.strftime("%Y-%m-%dT%H:%M:%S"),
            ],
            separator="/",
        ).alias("id")
    ).to_series()


def uniform(ids: pl.Series, seed: int) -> list[float]:
    """A uniform number in (0, 1) per id, from BLAKE2b(seed, id): stable across machines and versions."""
    prefix = f"{seed}\x1f".encode()
    scale = 1.0 / 2**64
    return [
        (int.from_bytes(hashlib.blake2b(prefix + text.encode(), digest_size=8).digest(), "big") + 0.5) * scale
        for text in ids.to_list()
    ]


def weights(task: TaskDef, frame: pl.DataFrame) -> pl.Series:
    """Inverse mean relative frequency of each sample's ``weight_items`` (1.0 when unweighted)."""
    if task.sampling.weighting == "none" or frame.is_empty():
        return pl.Series("weight", [1.0] * frame.height, dtype=pl.Float64)
    exploded = frame.select(pl.int_range(pl.len()).alias("_row"), "weight_items").explode("weight_items")
    shares = exploded.group_by("weight_items").agg((pl.len() / frame.height).alias("_share"))
    mean_share = (
        exploded.join(shares, on="weight_items", how="left")
        .group_by("_row")
        .agg(pl.col("_share").mean())
        .sort("_row")
    )
    by_row = pl.DataFrame({"_row": range(frame.height)}, schema={"_row": pl.Int64}).join(
        mean_share.with_columns(pl.col("_row").cast(pl.Int64)), on="_row", how="left", maintain_order="left"
    )
    return (1.0 / by_row["_share"]).fill_null(1.0).alias("weight")


def keys(ids: pl.Series, weight: pl.Series, seed: int) -> pl.Series:
    """Efraimidis-Spirakis keys ln(u) / w: larger keys are drawn first."""
    draws = uniform(ids, seed)
    return pl.Series("sample_key", [math.log(u) / w for u, w in zip(draws, weight.to_list(), strict=True)])


def balanced(task: TaskDef, balance: bool) -> bool:
    return balance and task.family == "risk" and task.sampling.balance_labels


def select(
    frame: pl.DataFrame,
    cap: int | None,
    balance: bool,
    *,
    final: bool,
    known: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Rows to keep from ``frame`` (one task and split; columns label, sample_key, id).

    ``final=False`` is a unit's local pre-selection: it keeps a superset of what the merge of all
    units will keep (per label, N largest keys; or N largest overall), leaving out what ``known``
    (label, sample_key of samples other units kept) already proves cannot make the final cut.
    """
    if frame.is_empty():
        return frame
    if balance:
        if cap is None and not final:
            return frame
        if final:
            per_label = frame.group_by("label").len()
            k = per_label.height
            quota = cap // k if cap is not None else int(per_label["len"].min())
        else:
            quota = cap
            frame = _above_known(frame, known, cap, by_label=True)
        return frame.sort("sample_key", "id", descending=[True, False]).filter(
            pl.int_range(pl.len()).over("label") < quota
        )
    if cap is None:
        return frame
    if not final:
        frame = _above_known(frame, known, cap, by_label=False)
    return frame.sort("sample_key", "id", descending=[True, False]).head(cap)


def _above_known(frame: pl.DataFrame, known: pl.DataFrame | None, cap: int, by_label: bool) -> pl.DataFrame:
    """Drops the rows whose key is below the cap-th largest known key (of their label)."""
    if known is None or known.height < cap:
        return frame
    group = ["label"] if by_label else []
    ranked = known.sort("sample_key", descending=True)
    if by_label:
        floor = ranked.filter(pl.int_range(pl.len()).over("label") == cap - 1).select("label", "sample_key")
        if floor.is_empty():
            return frame
        joined = frame.join(
            floor.rename({"sample_key": "_floor"}), on=group, how="left", maintain_order="left"
        )
        return joined.filter(pl.col("_floor").is_null() | (pl.col("sample_key") >= pl.col("_floor"))).drop(
            "_floor"
        )
    floor = ranked["sample_key"][cap - 1]
    return frame.filter(pl.col("sample_key") >= floor)
