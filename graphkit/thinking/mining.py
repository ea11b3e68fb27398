"""Association mining: which context concepts go with which gold target concepts, per task.

Input is one row per (sample, role, concept)::

    sample_id, task, split, role ("context" | "target"), cui

built from EHR-Bench sample rows and the item -> concept links by ``sample_concepts``. Only
rows of the train split are read (``mine_associations`` filters on it before anything else and
records the exact sample set it used as the cohort hash).

Per task, with N train samples, n_c samples whose context holds concept c, n_t samples whose
gold targets hold t, and n_ct samples with both (c != t):

    support = n_ct        confidence = n_ct / n_c        lift = n_ct * N / (n_c * n_t)

kept when support >= min_support, lift > min_lift, confidence >= min_confidence, best ``top_k``
per target by lift (then support, then CUI). The reference (coexist_metric_gen.py +
evidence_generation.py) counts a concept's samples over context and target together and applies
its minimum support to that count; here support is the pair's own count, the textbook
definition, so a rare pair is never kept because its context concept is common.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import polars as pl

from graphkit import __version__
from graphkit.errors import InputError
from graphkit.hashing import config_hash
from graphkit.store.vocab import edge_id as stable_edge_id
from graphkit.thinking.options import ASSOCIATION_TYPE, MiningOptions

log = logging.getLogger(__name__)

TRAIN = "train"
CONCEPT_SCHEMA = {"sample_id": pl.String, "task": pl.String, "split": pl.String, "role": pl.String, "cui": pl.String}
ASSOCIATION_SCHEMA = {
    "task": pl.String,
    "source": pl.String,
    "target": pl.String,
    "support": pl.Int64,
    "confidence": pl.Float64,
    "lift": pl.Float64,
    "source_count": pl.Int64,
    "target_count": pl.Int64,
    "n_samples": pl.Int64,
    "rank": pl.Int64,
    "sab": pl.String,
    "edge_id": pl.String,
    "cohort": pl.String,
    "config": pl.String,
}


def association_sab(task: str) -> str:
    """The source vocabulary of a mined edge: one per task, so each task's edge has its own stable id."""
    return f"EHRR1_ASSOC:{task}"


def association_edge_id(source: str, target: str, task: str) -> str:
    return stable_edge_id(source, ASSOCIATION_TYPE, target, association_sab(task))


def sample_concepts(samples: pl.DataFrame | pl.LazyFrame, links: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """EHR-Bench sample rows (id, task, split, context_items, target_items) to concept rows.

    ``links``: one row per (key, cui) — the item keys of docs/interfaces.md §4 and their
    concepts (``load_item_links`` reads them from the store, rejected mappings left out).
    Items without a concept are dropped.
    """
    samples = samples.lazy()
    names = samples.collect_schema().names()
    missing = [c for c in ("id", "task", "split", "context_items", "target_items") if c not in names]
    if missing:
        raise InputError(
            "sample rows lack columns", where="samples", value=missing,
            fix="give EHR-Bench sample rows (docs/interfaces.md §5)",
        )
    links = links.lazy().select(pl.col("key").cast(pl.String), pl.col("cui").cast(pl.String)).unique()
    parts = []
    for role, column in (("context", "context_items"), ("target", "target_items")):
        parts.append(
            samples.select(
                pl.col("id").cast(pl.String).alias("sample_id"),
                pl.col("task").cast(pl.String),
                pl.col("split").cast(pl.String),
                pl.col(column).alias("item"),
            )
            .explode("item")
            .filter(pl.col("item").is_not_null())
            .select("sample_id", "task", "split", pl.lit(role).alias("role"), pl.col("item").struct.field("key").cast(pl.String).alias("key"))
        )
    return (
        pl.concat(parts)
        .join(links, on="key", how="inner")
        .select(list(CONCEPT_SCHEMA))
        .unique()
    )


@dataclass
class MiningResult:
    associations: pl.DataFrame  # ASSOCIATION_SCHEMA, sorted by task, target, rank
    runs: list[dict] = field(default_factory=list)  # one provenance record per task

    def for_task(self, task: str) -> pl.DataFrame:
        return self.associations.filter(pl.col("task") == task)


def cohort_hash(sample_ids: list[str]) -> str:
    return config_hash(sorted(sample_ids))


def mine_associations(
    concepts: pl.DataFrame | pl.LazyFrame,
    options: MiningOptions | None = None,
    *,
    samples: pl.DataFrame | pl.LazyFrame | None = None,
    tasks: list[str] | None = None,
    cohort_label: str = "",
) -> MiningResult:
    """Mine per-task associations on the train split of ``concepts`` (sample_concepts' shape).

    ``samples`` (rows with ``id`` or ``sample_id``, ``task``, ``split``): the sample set, so that
    samples none of whose items map to a concept still count in N (as in the reference); without
    it N counts the samples that have concept rows.
    """
    options = options or MiningOptions()
    lf = concepts.lazy()
    names = lf.collect_schema().names()
    missing = [c for c in CONCEPT_SCHEMA if c not in names]
    if missing:
        raise InputError("concept rows lack columns", where="mining input", value=missing, fix=f"give {list(CONCEPT_SCHEMA)}")
    # The one place the split is read: nothing below sees a val or test row.
    train = lf.select([pl.col(c).cast(t) for c, t in CONCEPT_SCHEMA.items()]).filter(pl.col("split") == TRAIN)
    if tasks is not None:
        train = train.filter(pl.col("task").is_in(tasks))
    train = train.drop("split").unique().collect()

    if samples is None:
        cohort_rows = train.select("task", "sample_id")
    else:
        given = samples.lazy()
        id_column = "sample_id" if "sample_id" in given.collect_schema().names() else "id"
        cohort_rows = (
            given.filter(pl.col("split").cast(pl.String) == TRAIN)
            .select(pl.col("task").cast(pl.String), pl.col(id_column).cast(pl.String).alias("sample_id"))
            .filter(pl.col("task").is_in(tasks) if tasks is not None else pl.lit(True))
            .collect()
        )
    cohort = cohort_rows.unique()
    config = options.hash()
    runs = []
    for task, ids in cohort.group_by("task").agg(pl.col("sample_id")).sort("task").iter_rows():
        runs.append(
            {
                "task": task,
                "cohort": cohort_hash(ids),
                "cohort_label": cohort_label,
                "n_samples": len(ids),
                "config": config,
                "options": options.as_dict(),
                "version": __version__,
            }
        )
    cohorts = pl.DataFrame(
        [{"task": r["task"], "cohort": r["cohort"], "n_samples": r["n_samples"]} for r in runs],
        schema={"task": pl.String, "cohort": pl.String, "n_samples": pl.Int64},
    )

    context = train.filter(pl.col("role") == "context").select("task", "sample_id", "cui")
    target = train.filter(pl.col("role") == "target").select("task", "sample_id", "cui")
    source_count = context.group_by("task", "cui").len("source_count")
    target_count = target.group_by("task", "cui").len("target_count")
    # a concept in fewer samples than min_support cannot reach it in a pair: drop before the join
    frequent_context = context.join(
        source_count.filter(pl.col("source_count") >= options.min_support), on=["task", "cui"], how="semi"
    )
    frequent_target = target.join(
        target_count.filter(pl.col("target_count") >= options.min_support), on=["task", "cui"], how="semi"
    )
    pairs = (
        frequent_context.lazy()
        .join(frequent_target.lazy(), on=["task", "sample_id"], how="inner", suffix="_target")
        .filter(pl.col("cui") != pl.col("cui_target"))
        .group_by("task", pl.col("cui").alias("source"), pl.col("cui_target").alias("target"))
        .agg(pl.len().alias("support"))
        .filter(pl.col("support") >= options.min_support)
        .collect(engine="streaming")
    )
    scored = (
        pairs.join(source_count.rename({"cui": "source"}), on=["task", "source"])
        .join(target_count.rename({"cui": "target"}), on=["task", "target"])
        .join(cohorts, on="task")
        .with_columns(
            (pl.col("support") / pl.col("source_count")).alias("confidence"),
            (pl.col("support") * pl.col("n_samples") / (pl.col("source_count") * pl.col("target_count"))).alias("lift"),
        )
        .filter((pl.col("lift") > options.min_lift) & (pl.col("confidence") >= options.min_confidence))
        .sort(["task", "target", "lift", "support", "source"], descending=[False, False, True, True, False])
        .with_columns((pl.int_range(pl.len()).over("task", "target") + 1).alias("rank"))
        .filter(pl.col("rank") <= options.top_k)
    )
    sabs = [association_sab(t) for t in scored["task"].to_list()]
    ids = [
        stable_edge_id(s, ASSOCIATION_TYPE, t, sab)
        for s, t, sab in zip(scored["source"].to_list(), scored["target"].to_list(), sabs, strict=True)
    ]
    associations = scored.with_columns(
        pl.Series("sab", sabs, dtype=pl.String),
        pl.Series("edge_id", ids, dtype=pl.String),
        pl.lit(config).alias("config"),
    ).select([pl.col(c).cast(t) for c, t in ASSOCIATION_SCHEMA.items()])
    counts = associations.group_by("task").len()
    for run in runs:
        kept = counts.filter(pl.col("task") == run["task"])["len"]
        run["associations"] = int(kept[0]) if kept.len() else 0
        run["id"] = config_hash({"task": run["task"], "cohort": run["cohort"], "config": config})
    log.info("mined %d associations over %d tasks", associations.height, len(runs))
    return MiningResult(associations, runs)
