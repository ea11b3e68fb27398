"""Pools of demo "event groups" and their vectorized resampling into synthetic contexts.

An event group is what one clinical act leaves in the tables: the rows of one lab specimen, one
medication order (its poe row, pharmacy row, prescriptions, eMAR administrations and their
details), one charting moment of an ICU stay... A pool keeps every group of the demo with its
rows' attributes, each time column as an offset from the group's first event, and each
identifier as a small index local to the group. Sampling draws groups (the demo's empirical
distribution, so item frequencies, co-occurrence and value distributions per item come along),
places each at a random time inside a context window (an admission, an ICU stay, a visit), and
gives the identifiers fresh values while keeping the links between the group's tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from graphkit.ehr.schema import TableSpec

GROUP = "_g"
EVENT = "_event"  # the row's placement time in a pool-building frame (Datetime; null: detail row)
DELTA = "__d"  # suffix: seconds from the group's anchor
LOCAL = "__l"  # suffix: identifier index within the group


@dataclass(frozen=True)
class IdSpace:
    """Identifiers that link the tables of a group.

    ``owner.key`` holds the identifiers that exist; ``refs`` must point at one of them (a dangling
    reference nulls a nullable column and drops the row otherwise); ``maps`` are links that may
    point outside the group (linkorderid): they get fresh ids of the same space, unchecked.
    ``fmt`` "int" numbers ids densely from a counter; "subject_seq" writes MIMIC's
    ``<subject_id>-<seq>`` with seq counted per subject, and fills ``seq_columns`` with seq.
    """

    name: str
    owner: str
    key: str
    refs: tuple[tuple[str, str], ...] = ()
    maps: tuple[tuple[str, str], ...] = ()
    fmt: str = "int"
    seq_columns: tuple[tuple[str, str], ...] = ()

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        return ((self.owner, self.key), *self.refs, *self.maps)


@dataclass
class TablePart:
    name: str
    spec: TableSpec
    frame: pl.DataFrame  # pool rows sorted by group: attributes, <time>__d, <id>__l
    starts: np.ndarray
    counts: np.ndarray
    time_columns: tuple[str, ...]
    has_event: bool


@dataclass
class Contexts:
    """Windows that receive groups, in subject order (ids: -1 stands for null)."""

    subject: np.ndarray
    hadm: np.ndarray
    stay: np.ndarray
    start: np.ndarray  # epoch seconds
    end: np.ndarray
    n: np.ndarray  # groups to place in each window

    def __post_init__(self) -> None:
        for name in ("subject", "hadm", "stay", "start", "end", "n"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.subject)


@dataclass
class GroupPool:
    family: str
    parts: dict[str, TablePart]
    spaces: tuple[IdSpace, ...]
    span: np.ndarray  # per group: seconds from the anchor to the last event
    strata: dict[str, np.ndarray]
    group_context: pl.DataFrame  # per group (_g): subject_id, hadm_id, stay_id of its first rows
    widths: dict[str, int] = field(default_factory=dict)  # per id space: max local index + 1

    @property
    def n_groups(self) -> int:
        return len(self.span)


def _seconds(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Datetime("us")).dt.epoch("s")


def build_pool(
    family: str,
    frames: dict[str, pl.DataFrame],
    specs: dict[str, TableSpec],
    spaces: tuple[IdSpace, ...] = (),
    regenerated: tuple[str, ...] = (),
    strata: dict[str, pl.Expr] | None = None,
) -> GroupPool:
    """Index demo rows by group.

    ``frames``: per table, the demo rows with their schema columns plus ``_key`` (the group key,
    a string) and ``_event`` (placement time; null for detail rows placed by their parent).
    ``regenerated``: columns the sampler writes itself (subject/hadm/stay ids, row counters).
    ``strata``: named filters over the per-group context (subject_id, hadm_id, stay_id).
    """
    keys = pl.concat([f.select("_key") for f in frames.values()]).unique().sort("_key")
    keys = keys.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(GROUP))
    events = pl.concat(
        [f.join(keys, on="_key").select(GROUP, _seconds(pl.col(EVENT)).alias("t")) for f in frames.values()]
    )
    anchor = events.group_by(GROUP).agg(pl.col("t").min().alias("_anchor"))
    anchor = keys.select(GROUP).join(anchor, on=GROUP, how="left").sort(GROUP)
    if anchor["_anchor"].null_count():
        raise ValueError(f"{family}: every group needs at least one timed row")

    keyed: dict[str, pl.DataFrame] = {}
    for name, frame in frames.items():
        keyed[name] = (
            frame.with_row_index("_row").join(keys, on="_key").join(anchor, on=GROUP).sort(GROUP, "_row")
        )

    widths: dict[str, int] = {}
    local_maps: dict[tuple[str, str], pl.DataFrame] = {}
    for space in spaces:
        values = (
            pl.concat(
                [
                    keyed[table].select(GROUP, pl.col(column).cast(pl.String).alias("_v"))
                    for table, column in space.columns
                    if table in keyed
                ]
            )
            .drop_nulls()
            .unique()
        )
        values = values.sort(GROUP, "_v").with_columns(
            (pl.int_range(pl.len()).over(GROUP)).cast(pl.Int64).alias("_l")
        )
        widths[space.name] = int(values["_l"].max() + 1) if values.height else 1
        for table, column in space.columns:
            local_maps[(table, column)] = values

    parts: dict[str, TablePart] = {}
    span = np.zeros(keys.height, dtype=np.int64)
    group_context = None
    for name, frame in keyed.items():
        spec = specs[name]
        time_columns = tuple(c for c, col in spec.columns.items() if col.dtype in ("datetime", "date"))
        exprs: list[pl.Expr] = [pl.col(GROUP)]
        id_columns = {column for (table, column) in local_maps if table == name}
        for column in spec.columns:
            if column in regenerated or column in time_columns:
                continue
            if column in id_columns:
                continue
            exprs.append(pl.col(column))
        for column in time_columns:
            exprs.append((_seconds(pl.col(column)) - pl.col("_anchor")).alias(column + DELTA))
        has_event = frame[EVENT].null_count() < frame.height
        exprs.append((_seconds(pl.col(EVENT)) - pl.col("_anchor")).alias(EVENT + DELTA))
        body = frame
        for column in sorted(id_columns):
            values = local_maps[(name, column)]
            body = (
                body.with_columns(pl.col(column).cast(pl.String).alias("_v"))
                .join(values, on=[GROUP, "_v"], how="left")
                .rename({"_l": column + LOCAL})
                .drop("_v")
            )
            exprs.append(pl.col(column + LOCAL))
        body = body.sort(GROUP, "_row").select(exprs)
        group_ids = body[GROUP].to_numpy()
        counts = np.bincount(group_ids, minlength=keys.height).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        event_delta = body[EVENT + DELTA].fill_null(0).to_numpy()
        np.maximum.at(span, group_ids, event_delta)
        parts[name] = TablePart(
            name=name,
            spec=spec,
            frame=body.drop(GROUP),
            starts=starts,
            counts=counts,
            time_columns=time_columns,
            has_event=has_event,
        )
        context_columns = [c for c in ("subject_id", "hadm_id", "stay_id") if c in frame.columns]
        first = frame.group_by(GROUP, maintain_order=True).agg(
            [pl.col(c).drop_nulls().first() for c in context_columns]
        )
        group_context = (
            first
            if group_context is None
            else group_context.join(first, on=GROUP, how="full", coalesce=True, suffix="_other").pipe(
                _coalesce_context
            )
        )
    group_context = keys.select(GROUP).join(group_context, on=GROUP, how="left").sort(GROUP)
    for column in ("subject_id", "hadm_id", "stay_id"):
        if column not in group_context.columns:
            group_context = group_context.with_columns(pl.lit(None, pl.Int64).alias(column))

    stratum_index: dict[str, np.ndarray] = {}
    for stratum, condition in (strata or {"all": pl.lit(True)}).items():
        stratum_index[stratum] = group_context.filter(condition)[GROUP].to_numpy().astype(np.int64)
    return GroupPool(
        family=family,
        parts=parts,
        spaces=spaces,
        span=span,
        strata=stratum_index,
        group_context=group_context,
        widths=widths,
    )


def _coalesce_context(frame: pl.DataFrame) -> pl.DataFrame:
    for column in ("subject_id", "hadm_id", "stay_id"):
        other = column + "_other"
        if other in frame.columns:
            frame = frame.with_columns(pl.coalesce(column, other).alias(column)).drop(other)
    return frame


class Counters:
    """Running id counters, carried from chunk to chunk so ids stay unique across the cohort."""

    def __init__(self, bases: dict[str, int]):
        self._next = dict(bases)

    def take(self, name: str, count: int) -> int:
        start = self._next[name]
        self._next[name] = start + int(count)
        return start


def sample(
    pool: GroupPool,
    rng: np.random.Generator,
    contexts: Contexts,
    counters: Counters,
    stratum: str = "all",
) -> dict[str, pl.DataFrame]:
    """Place ``contexts.n`` demo groups in each context; returns one frame per pool table.

    Frames hold the table's schema columns except row counters, plus ``_order`` (a stable row
    order: group instance, then the demo's row order) for deterministic sorting.
    """
    n_inst = int(contexts.n.sum())
    inst_ctx = np.repeat(np.arange(len(contexts), dtype=np.int64), contexts.n)
    choices = pool.strata[stratum]
    group = choices[rng.integers(0, len(choices), n_inst)] if n_inst else np.zeros(0, np.int64)
    room = np.maximum(contexts.end[inst_ctx] - contexts.start[inst_ctx] - pool.span[group], 0)
    anchor = contexts.start[inst_ctx] + (np.floor(rng.random(n_inst) * room / 60).astype(np.int64) * 60)
    # instances in time order within their context, so rows mostly come out sorted already
    chronological = np.lexsort((anchor, inst_ctx))
    group, anchor = group[chronological], anchor[chronological]
    end = contexts.end[inst_ctx]

    frames: dict[str, pl.DataFrame] = {}
    for name, part in pool.parts.items():
        counts = part.counts[group]
        total = int(counts.sum())
        inst = np.repeat(np.arange(n_inst, dtype=np.int64), counts)
        first = np.repeat(part.starts[group], counts)
        within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        rows = part.frame[first + within]
        ctx = inst_ctx[inst]
        columns: list[pl.Series] = [
            pl.Series("_inst", inst),
            pl.Series("_order", inst * (1 << 20) + within),
            pl.Series("subject_id", contexts.subject[ctx]),
            pl.Series("_anchor", anchor[inst]),
            pl.Series("_end", end[inst]),
        ]
        if "hadm_id" in part.spec.columns:
            columns.append(pl.Series("hadm_id", contexts.hadm[ctx]))
        if "stay_id" in part.spec.columns:
            columns.append(pl.Series("stay_id", contexts.stay[ctx]))
        frame = rows.with_columns(columns)
        for column in ("hadm_id", "stay_id"):
            if column in frame.columns:
                frame = frame.with_columns(
                    pl.when(pl.col(column) < 0).then(None).otherwise(pl.col(column)).alias(column)
                )
        if part.has_event:
            frame = frame.filter(
                pl.col(EVENT + DELTA).is_null()
                | (pl.col("_anchor") + pl.col(EVENT + DELTA) <= pl.col("_end"))
            )
        frame = frame.with_columns(
            [
                pl.from_epoch(pl.col("_anchor") + pl.col(column + DELTA), time_unit="s").alias(column)
                for column in part.time_columns
            ]
        ).drop([c + DELTA for c in part.time_columns] + [EVENT + DELTA, "_anchor", "_end"])
        frames[name] = frame

    for space in pool.spaces:
        frames = _assign_ids(
            space, pool.widths[space.name], frames, {n: p.spec for n, p in pool.parts.items()}, counters
        )
    return {name: frame.drop("_inst") for name, frame in frames.items()}


def _assign_ids(
    space: IdSpace,
    width: int,
    frames: dict[str, pl.DataFrame],
    specs: dict[str, TableSpec],
    counters: Counters,
) -> dict[str, pl.DataFrame]:
    def key(column: str) -> pl.Expr:
        return pl.col("_inst") * width + pl.col(column + LOCAL)

    present = [(t, c) for t, c in space.columns if t in frames]
    owner = frames[space.owner].select(key(space.key).alias("_k")).unique()
    every = (
        pl.concat([frames[t].select(key(c).alias("_k"), "subject_id") for t, c in present])
        .drop_nulls("_k")
        .unique("_k")
        .sort("_k")
    )
    start = counters.take(space.name, every.height)
    if space.fmt == "int":
        ids = every.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).add(start).alias("_id"))
    else:
        ids = every.with_columns(
            (pl.int_range(pl.len(), dtype=pl.Int64).over("subject_id") + 1).alias("_seq")
        ).with_columns(pl.format("{}-{}", "subject_id", "_seq").alias("_id"))
    ids = ids.with_columns(pl.col("_k").is_in(owner["_k"].implode()).alias("_owned")).drop("subject_id")
    seq_columns = dict(space.seq_columns)
    references = set(space.refs)
    for table, column in present:
        frame = (
            frames[table]
            .with_columns(key(column).alias("_k"))
            .join(ids, on="_k", how="left", maintain_order="left")
        )
        if (table, column) in references:
            dangling = pl.col("_k").is_not_null() & ~pl.col("_owned").fill_null(False)
            if specs[table].columns[column].nullable:
                frame = frame.with_columns(
                    [
                        pl.when(dangling).then(None).otherwise(pl.col(c)).alias(c)
                        for c in ("_id", "_seq")
                        if c in frame.columns
                    ]
                )
            else:
                frame = frame.filter(~dangling)
        frame = frame.with_columns(pl.col("_id").alias(column))
        if seq_columns.get(table) and column == _first_column_of(space, table):
            frame = frame.with_columns(pl.col("_seq").cast(pl.Int64).alias(seq_columns[table]))
        frames[table] = frame.drop(
            ["_k", "_id", "_owned", column + LOCAL] + (["_seq"] if "_seq" in frame.columns else [])
        )
    return frames


def _first_column_of(space: IdSpace, table: str) -> str:
    """The column of ``table`` whose id gives its seq column (poe_seq follows poe_id)."""
    return next(c for t, c in space.columns if t == table)
