"""``ehr-r1 bench build``: units of subjects -> sample parts -> the final dataset and its card.

Layout of an output folder::

    build.json                      the plan (config, source fingerprint, task versions, units)
    parts/unit-00000/<task>.parquet one unit's locally selected samples, serialized
    parts/unit-00000/done.json      the unit's completion marker and statistics (written last)
    data/<task>/{train,val,test}.parquet (or .jsonl)   the dataset, one config per task
    card.json, README.md            the dataset card (card.json is written last: the build is done)

Every file is written atomically. A unit with a done.json from the same plan is never redone, so a
killed job resumes where it stopped; ``--shard i/n`` jobs share the folder and the job that finds
every unit done writes the dataset (a second job doing the same writes the same bytes).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bench.builder import sampling
from bench.builder.dated_rows import link_whole_day_stays, unlinked_date_tables
from bench.builder.items import ITEM_SCHEMA, event_items
from bench.builder.plan import BuildConfig, BuildPlan, UnitSpec, plan_units, select_tasks, source_fingerprint
from bench.builder.samples import Unit, candidates, excluded_tables, window_query
from bench.splits import SPLITS, split_frame
from bench.taskdef import ANY_TABLE
from graphkit.atomic import atomic_path, atomic_write_text
from graphkit.errors import ConfigError
from graphkit.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

BUILD_JSON = "build.json"
CARD_JSON = "card.json"
DONE = "done.json"
KEYS = "keys.parquet"
OVER_BUDGET = "record header over the token budget"

ROW_SCHEMA = {  # the sample row (docs/interfaces.md §5); label: list[str] for set tasks, else str
    "id": pl.String,
    "task": pl.String,
    "family": pl.String,
    "split": pl.String,
    "subject_id": pl.Int64,
    "hadm_id": pl.Int64,
    "stay_id": pl.Int64,
    "anchor_time": pl.Datetime("us"),
    "context_start": pl.Datetime("us"),
    "context_end": pl.Datetime("us"),
    "input": pl.String,
    "instruction": pl.String,
    "output": pl.String,
    "label": pl.String,
    "output_type": pl.String,
    "task_version": pl.Int64,
    "context_items": pl.List(ITEM_SCHEMA),
    "target_items": pl.List(ITEM_SCHEMA),
    "n_context_events": pl.Int64,
    "n_events": pl.Int64,
    "n_tokens": pl.Int64,
    "truncated": pl.Boolean,
    "sample_key": pl.Float64,  # parts only: the merge of units uses it
}
ROW_COLUMNS = tuple(c for c in ROW_SCHEMA if c != "sample_key")
_RECORD_COLUMNS = ("input", "context_items", "n_events", "n_tokens", "truncated")
# a unit's samples.parquet: the row without the record columns the serializer adds, both label types
PART_META = {
    **{c: t for c, t in ROW_SCHEMA.items() if c not in (*_RECORD_COLUMNS, "label")},
    "label_list": pl.List(pl.String),
    "label_text": pl.String,
}
SAMPLES = "samples.parquet"
ROW_GROUP = 4096  # small row groups: finalize reads one task at a time through the `task` statistics


@dataclass
class BuildResult:
    out: Path
    finalized: bool
    units_done: int
    units_total: int
    units_run: int
    card: dict | None


def build(
    mimic: str | Path,
    out: str | Path,
    config: BuildConfig,
    *,
    shard: tuple[int, int] = (0, 1),
    force: bool = False,
    progress: Progress | None = None,
) -> BuildResult:
    """Build (this job's share of) the samples of ``config`` from the MIMIC-IV source at ``mimic``."""
    from graphkit.ehr.source import open_source

    progress = progress or NULL_PROGRESS
    source = open_source(mimic)
    selection = select_tasks(source, config)
    plan = BuildPlan(
        config=config,
        source_path=str(Path(mimic).resolve()),
        source_kind=source.kind,
        fingerprint=source_fingerprint(source),
        modules=sorted(source.modules),
        tasks=selection.runnable,
        skipped_tasks=selection.skipped,
        units=plan_units(source, config.subjects_per_unit),
    )
    from bench.taskdef import load_tasks

    plan.all_tasks = load_tasks()
    out = Path(out)
    _claim(out, plan, force)
    from bench.builder.finalize import finalize

    total = len(plan.units)
    finished = _finished_card(out, plan)
    if finished is not None:
        return BuildResult(out, True, total, total, 0, finished)
    index, count = shard
    mine = [u for u in plan.units if u.index % count == index]
    lookups, atc = _lookups(source, config)
    if total == 1 and mine:
        # the whole build is one unit: its samples go straight to the dataset, no parts on disk
        marker, samples = _run_unit(source, lookups, atc, mine[0], plan, out, persist=False)
        card = finalize(out, plan, progress=progress, in_memory=(marker, samples))
        return BuildResult(out, True, 1, 1, 1, card)
    handle = progress.start(f"bench build: units of job {index}/{count}", total=len(mine))
    ran = 0
    try:
        for unit in mine:
            if not _unit_done(out, unit, plan):
                _run_unit(source, lookups, atc, unit, plan, out)
                ran += 1
            progress.advance(handle)
    finally:
        progress.finish(handle)
    done = sum(_unit_done(out, u, plan) for u in plan.units)
    card = finalize(out, plan, progress=progress) if done == total else None
    return BuildResult(out, card is not None, done, total, ran, card)


def _finished_card(out: Path, plan: BuildPlan) -> dict | None:
    """The card of a finished build of this plan in ``out`` (nothing is left to do), else None."""
    path = out / CARD_JSON
    if not path.exists():
        return None
    card = json.loads(path.read_text())
    return card if card.get("config_hash") == plan.config_hash else None


def _claim(out: Path, plan: BuildPlan, force: bool) -> None:
    """Make ``out`` this plan's folder, or refuse one that holds something else."""
    marker = out / BUILD_JSON
    if marker.exists():
        recorded = json.loads(marker.read_text())
        if recorded.get("config_hash") == plan.config_hash:
            return
        if not force:
            raise ConfigError(
                "holds a build with another configuration or source (config hash "
                f"{recorded.get('config_hash')} vs {plan.config_hash})",
                where=str(out),
                fix="use a new --out folder, the same options as before, or --force to replace that build",
            )
        for name in ("parts", "data", CARD_JSON, "README.md", BUILD_JSON):
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    elif out.exists() and any(out.iterdir()):
        raise ConfigError(
            "exists, is not empty and holds no bench build",
            where=str(out),
            fix="choose a new or empty folder",
        )
    atomic_write_text(marker, plan.to_json() + "\n")


def _unit_done(out: Path, unit: UnitSpec, plan: BuildPlan) -> bool:
    path = out / "parts" / unit.name / DONE
    if not path.exists():
        return False
    try:
        return json.loads(path.read_text()).get("config_hash") == plan.config_hash
    except ValueError:
        return False


def _lookups(source, config: BuildConfig):
    """Dictionary lookups with the CCS groupings (and ATC when given) the records print."""
    from bench.mappings import load_atc, load_ccs
    from graphkit.ehr.timeline import CodeMappings, load_lookups

    def ccs(kind: str) -> pl.DataFrame:
        frame = load_ccs(kind).frame()
        return frame.select(
            pl.col("icd_version").cast(pl.Int64), "icd_code", pl.col("ccs_label").alias("ccs_name")
        )

    atc = None
    if config.atc is not None:
        table = load_atc(config.atc)
        atc = pl.DataFrame(
            [(ndc, name) for ndc, classes in table.classes.items() for _, name in classes],
            schema={"ndc": pl.String, "atc_name": pl.String},
            orient="row",
        )
    printed_atc = None if atc is None else atc.unique(subset=["ndc"], keep="first", maintain_order=True)
    mappings = CodeMappings(atc=printed_atc, ccs_diagnoses=ccs("dx"), ccs_procedures=ccs("px"))
    return load_lookups(source, mappings=mappings), atc


class _Phases:
    """Wall and CPU seconds per phase of a unit (recorded in its done.json: where the time goes)."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = {}
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def lap(self, name: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        spent = self.seconds.setdefault(name, {"wall": 0.0, "cpu": 0.0})
        spent["wall"] = round(spent["wall"] + wall - self._wall, 3)
        spent["cpu"] = round(spent["cpu"] + cpu - self._cpu, 3)
        self._wall, self._cpu = wall, cpu


def _run_unit(
    source, lookups, atc, unit: UnitSpec, plan: BuildPlan, out: Path, persist: bool = True
) -> tuple[dict, pl.DataFrame]:
    """One unit's samples; with ``persist``, written to parts/ with its done.json marker last."""
    from graphkit.ehr.serialize import Serializer
    from graphkit.ehr.timeline import build_timeline

    started = time.perf_counter()
    phases = _Phases()
    config = plan.config
    subjects = list(unit.subjects) if unit.subjects is not None else None
    timeline = build_timeline(
        source, shard=unit.shard, subjects=subjects, definition=config.style, lookups=lookups
    )
    # windows, anchors and the serializer must agree on which admission an OMR row belongs to
    timeline = link_whole_day_stays(timeline, unlinked_date_tables(source))
    work = Unit(source, timeline, unit.shard, subjects, atc=atc)
    splits = split_frame(timeline.subjects.to_list(), config.split_ratios)
    phases.lap("timeline")
    known = _known_keys(out, plan, unit)
    stats: dict[str, dict] = {}
    chosen: list[pl.DataFrame] = []
    for key, task in plan.tasks.items():
        found = candidates(task, work, plan.all_tasks)
        frame = found.frame.join(splits, on="subject_id", how="left").with_columns(
            pl.col("split").cast(pl.String)
        )
        frame = frame.with_columns(sampling.sample_ids(frame))
        balanced = sampling.balanced(task, config.balance)
        weight = (
            sampling.weights(task, frame)
            if not balanced
            else pl.Series("weight", [1.0] * frame.height, dtype=pl.Float64)
        )
        frame = frame.with_columns(sampling.keys(frame["id"], weight, config.seed))
        kept = [
            sampling.select(
                frame.filter(pl.col("split") == split),
                config.cap(task, split),
                balanced,
                final=False,
                known=known.filter((pl.col("task") == key) & (pl.col("split") == split)),
            )
            for split in SPLITS
        ]
        stats[key] = {
            "anchors": found.anchors,
            "skipped": dict(found.skipped),
            "eligible": _per_split(frame),
            "eligible_labels": _labels_per_split(task, frame),
        }
        # split then id order: each (task, split) is one contiguous slice of the unit's records
        selected = pl.concat(kept).sort(pl.col("split").cast(pl.Enum(list(SPLITS))), "id")
        if task.anchor.table == ANY_TABLE and selected.height:
            own = event_items(timeline, selected["anchor_event"]).rename({"event_id": "anchor_event"})
            selected = (
                selected.drop("target_items")
                .join(own, on="anchor_event", how="left", maintain_order="left")
                .with_columns(
                    pl.col("items").fill_null(pl.lit([], dtype=pl.List(ITEM_SCHEMA))).alias("target_items")
                )
                .drop("items")
            )
        chosen.append(selected.with_columns(pl.lit(_excluded_key(task, work)).alias("_excluded")))
    phases.lap("candidates")
    window_columns = [
        "id",
        "subject_id",
        "hadm_id",
        "context_start",
        "context_end",
        "same_admission",
        "_excluded",
    ]
    windows = _context_windows(work, pl.concat([c.select(window_columns) for c in chosen], how="vertical"))
    phases.lap("context_windows")
    serializer = Serializer(timeline, style=config.style)
    items = _ItemIndex(work, windows["event_ids"].explode().drop_nulls())
    phases.lap("context_items")
    folder = out / "parts" / unit.name
    # one serialize_many call for the unit: each event is rendered once, whatever its windows; the
    # records stay in one frame and one file (slicing them per task would keep the unit's whole text
    # buffers in every slice, which the parquet writer then walks again for every part)
    records = _records(serializer, items, plan, windows, phases)
    meta = pl.concat(
        [_part_meta(task, selected) for task, selected in zip(plan.tasks.values(), chosen, strict=True)]
    )
    samples = pl.concat([meta, records], how="horizontal")
    del records
    over = samples.filter(pl.col("over_budget")).group_by("task").len()
    for key, n in over.iter_rows():
        stats[key]["skipped"][OVER_BUDGET] = n
    if over.height:
        samples = samples.filter(~pl.col("over_budget"))
    for entry in stats.values():
        entry.update(kept={}, truncated=0)
    for (key, split), part in samples.group_by("task", "split"):
        stats[key]["kept"][split] = part.height
        stats[key]["truncated"] += int(part["truncated"].sum())
    samples = samples.drop("over_budget")
    if persist:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / SAMPLES) as tmp:
            _write_in_blocks(samples, tmp)
        if config.per_task is not None:
            with atomic_path(folder / KEYS) as tmp:
                keys = samples.select("task", "split", pl.col("label_text").alias("label"), "sample_key")
                keys.write_parquet(tmp)
    phases.lap("write")
    marker = {
        "config_hash": plan.config_hash,
        "unit": unit.describe(),
        "subjects": timeline.subjects.len(),
        "events": timeline.events.height,
        "undated": timeline.undated,
        "tables": sorted(timeline.events["table"].cast(pl.String).unique().to_list()),
        "tasks": stats,
        "seconds": round(time.perf_counter() - started, 3),
        "phases": phases.seconds,
    }
    if persist:
        atomic_write_text(folder / DONE, json.dumps(marker, indent=1, sort_keys=True) + "\n")
    log.info("bench build: %s done (%d events, %.1f s)", unit.name, timeline.events.height, marker["seconds"])
    return marker, samples


_KEYS_SCHEMA = pl.DataFrame(
    schema={"task": pl.String, "split": pl.String, "label": pl.String, "sample_key": pl.Float64}
)


def _known_keys(out: Path, plan: BuildPlan, current: UnitSpec) -> pl.DataFrame:
    """Sampling keys the finished units kept: a lower bound on what the final cut keeps.

    The N-th largest key among some units' samples is at most the N-th largest among all of them,
    so a unit may leave out every sample below it and the merge still finds the global N largest.
    Units done earlier (by any job) thus make later units serialize fewer samples.
    """
    if plan.config.per_task is None:
        return _KEYS_SCHEMA.clear()
    frames = [
        pl.read_parquet(out / "parts" / u.name / KEYS)
        for u in plan.units
        if u.index != current.index and _unit_done(out, u, plan) and (out / "parts" / u.name / KEYS).exists()
    ]
    return pl.concat([_KEYS_SCHEMA.clear(), *frames], how="vertical")


def _write_in_blocks(frame: pl.DataFrame, path: Path) -> None:
    """Parquet with row groups of ROW_GROUP rows, each gathered into buffers of its own.

    The serializer's texts share large buffers; written as slices of them, every row group would
    make the writer walk those whole buffers again (measured: 4x slower on the demo).
    """
    blocks = [
        frame.gather(pl.int_range(start, min(start + ROW_GROUP, frame.height), eager=True))
        for start in range(0, frame.height, ROW_GROUP)
    ]
    whole = pl.concat(blocks, rechunk=False) if blocks else frame
    whole.write_parquet(path, compression_level=1, row_group_size=ROW_GROUP)


def _excluded_key(task, work: Unit) -> str:
    return ",".join(sorted(excluded_tables(task, work)))


def _per_split(frame: pl.DataFrame) -> dict[str, int]:
    if frame.is_empty():
        return {}
    return {s: int(n) for s, n in frame.group_by("split").len().sort("split").iter_rows()}


def _labels_per_split(task, frame: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Risk tasks: label counts per split among eligible samples (before any cap)."""
    if task.family != "risk" or frame.is_empty():
        return {}
    out: dict[str, dict[str, int]] = {}
    for split, label, n in frame.group_by("split", "label").len().sort("split", "label").iter_rows():
        out.setdefault(split, {})[label] = int(n)
    return out


_RECORD_SCHEMA = {
    "input": pl.String,
    "n_tokens": pl.Int64,
    "n_events": pl.Int64,
    "truncated": pl.Boolean,
    "over_budget": pl.Boolean,
    "context_items": pl.List(ITEM_SCHEMA),
}


def _context_windows(work: Unit, selected: pl.DataFrame) -> pl.DataFrame:
    """The selected windows (same order) with the event ids of their contexts."""
    selected = selected.with_row_index("_window").with_columns(pl.col("_window").cast(pl.Int64))
    lists = [pl.DataFrame(schema={"window": pl.Int64, "event_id": pl.Int64})]
    for excluded, group in selected.group_by("_excluded", maintain_order=True):
        tables = frozenset(t for t in str(excluded[0]).split(",") if t)
        pairs = work.windows.list(window_query(group), tables)
        index = group["_window"]
        lists.append(pairs.with_columns(index.gather(pairs["window"]).cast(pl.Int64).alias("window")))
    # the strict-before guarantee, checked on the listed events themselves (not only on their seconds)
    times = work.timeline.events.select("event_id", "time")
    pairs = (
        pl.concat(lists)
        .join(times, on="event_id", how="left")
        .join(
            selected.select(pl.col("_window").alias("window"), "context_start", "context_end"),
            on="window",
            how="left",
        )
        .filter((pl.col("time") >= pl.col("context_start")) & (pl.col("time") < pl.col("context_end")))
        .group_by("window", maintain_order=True)
        .agg(pl.col("event_id").sort().alias("event_ids"))
    )
    return (
        selected.join(pairs.rename({"window": "_window"}), on="_window", how="left", maintain_order="left")
        .with_columns(pl.col("event_ids").fill_null(pl.lit([], dtype=pl.List(pl.Int64))))
        .select(
            "subject_id",
            "hadm_id",
            pl.col("context_start").alias("start"),
            pl.col("context_end").alias("end"),
            "event_ids",
        )
    )


def _records(
    serializer, items: _ItemIndex, plan: BuildPlan, windows: pl.DataFrame, phases: _Phases
) -> pl.DataFrame:
    """The records of some windows (same order): text, sizes and the items of the printed events."""
    if windows.is_empty():
        return pl.DataFrame(schema=_RECORD_SCHEMA)
    printed = serializer.serialize_many(windows, max_tokens=plan.config.max_tokens)
    phases.lap("serialize")
    out = printed.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_window"),
        pl.col("text").alias("input"),
        "n_tokens",
        "n_events",
        "truncated",
        "over_budget",
        pl.col("event_ids").alias("printed_ids"),
    )
    out = out.with_columns(items.lists(out)).select(list(_RECORD_SCHEMA))
    phases.lap("context_items")
    return out


_ITEM_SPAN = 1 << 24  # item ids per unit stay below this (checked)


class _ItemIndex:
    """The items of a unit's context events, as integer ids: deduplicating ints beats structs."""

    def __init__(self, work: Unit, event_ids: pl.Series):
        per_event = event_items(work.timeline, event_ids.unique())
        flat = per_event.explode("items").drop_nulls("items")
        self.items = flat.select(pl.col("items").unique(maintain_order=True))["items"]
        if self.items.len() >= _ITEM_SPAN:
            raise ValueError(f"{self.items.len()} distinct items in one unit; lower --subjects-per-unit")
        codes = pl.DataFrame(
            {"items": self.items, "item_id": pl.int_range(self.items.len(), dtype=pl.Int64, eager=True)}
        )
        self.by_event = flat.join(codes, on="items", how="left", maintain_order="left").select(
            "event_id", "item_id"
        )

    def lists(self, rows: pl.DataFrame) -> pl.Series:
        """The distinct items of the events each record prints (``printed_ids``), in timeline order."""
        pairs = (
            rows.select(
                pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"), pl.col("printed_ids").alias("event_id")
            )
            .explode("event_id")
            .drop_nulls()
        )
        ids = pairs.join(self.by_event, on="event_id", how="inner", maintain_order="left")
        # one integer per (record, item): its first occurrence is the item's place in the record
        ids = ids.filter((pl.col("_row") * _ITEM_SPAN + pl.col("item_id")).is_first_distinct())
        per_row = (
            ids.with_columns(self.items.gather(ids["item_id"]).alias("item"))
            .group_by("_row", maintain_order=True)
            .agg(pl.col("item").alias("context_items"))
        )
        joined = pl.DataFrame({"_row": pl.int_range(rows.height, dtype=pl.Int64, eager=True)}).join(
            per_row, on="_row", how="left", maintain_order="left"
        )
        return (
            joined["context_items"]
            .fill_null(pl.lit([], dtype=pl.List(ITEM_SCHEMA)))
            .cast(pl.List(ITEM_SCHEMA))
        )


def _part_meta(task, selected: pl.DataFrame) -> pl.DataFrame:
    """A task's selected samples in the parts' common schema (both label types, one of them null)."""
    if selected.is_empty():
        return pl.DataFrame(schema=PART_META)
    is_set = task.output_type == "set"
    return selected.with_columns(
        pl.lit(task.key).alias("task"),
        pl.lit(task.family).alias("family"),
        pl.lit(task.instruction).alias("instruction"),
        (pl.col("label").list.join("\n") if is_set else pl.col("label")).alias("output"),
        (pl.col("label") if is_set else pl.lit(None, pl.List(pl.String))).alias("label_list"),
        (pl.lit(None, pl.String) if is_set else pl.col("label")).alias("label_text"),
        pl.lit(task.output_type).alias("output_type"),
        pl.lit(task.version).alias("task_version"),
        pl.col("n_context").alias("n_context_events"),
    ).select([pl.col(c).cast(t) for c, t in PART_META.items()])
