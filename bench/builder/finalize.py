"""The last step of a build: merge the units' parts into the dataset, add candidate lists, write the card.

Per task, the labels and sampling keys of every unit are read first (a few columns): they decide
which samples the caps keep and give the candidate lists. Then each split's rows are read once
(through the `task` and `split` statistics of the units' row groups), given their candidates and
written once.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import polars as pl

from bench.builder import sampling
from bench.builder.candidate_lists import candidate_lists
from bench.builder.plan import BuildPlan
from bench.builder.run import DONE, ROW_COLUMNS, SAMPLES
from bench.card import card_dict, task_summary, write_card
from bench.splits import SPLITS
from graphkit.atomic import atomic_path
from graphkit.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)


def data_file(key: str, split: str, fmt: str) -> str:
    return f"data/{key}/{split}.{fmt}"


def finalize(
    out: Path,
    plan: BuildPlan,
    progress: Progress | None = None,
    in_memory: tuple[dict, pl.DataFrame] | None = None,
) -> dict:
    """Writes data/ and the card from the units' parts (or from the one unit's ``(marker, samples)``)."""
    progress = progress or NULL_PROGRESS
    config = plan.config
    if in_memory is not None:
        markers, parts = [in_memory[0]], in_memory[1].lazy()
    else:
        markers = [json.loads((out / "parts" / u.name / DONE).read_text()) for u in plan.units]
        parts = pl.scan_parquet([out / "parts" / u.name / SAMPLES for u in plan.units])
    tables = sorted({t for m in markers for t in m["tables"]})
    summaries: dict[str, dict] = {}
    handle = progress.start("bench build: writing the dataset", total=len(plan.tasks))
    try:
        for key, task in plan.tasks.items():
            label = "label_list" if task.output_type == "set" else "label_text"
            of_task = parts.filter(pl.col("task") == key)
            light = of_task.select("id", "split", pl.col(label).alias("label"), "sample_key").collect()
            balanced = sampling.balanced(task, config.balance)
            chosen = pl.concat(
                [
                    sampling.select(
                        light.filter(pl.col("split") == split), config.cap(task, split), balanced, final=True
                    ).sort("id")
                    for split in SPLITS
                ]
            )
            chosen = chosen.with_columns(candidate_lists(task, chosen, tables))
            files = {}
            frames = []
            rows_of_task = (
                of_task.join(chosen.lazy().select("id"), on="id", how="semi", maintain_order="left")
                .rename({label: "label"})
                .select(ROW_COLUMNS)
                .collect()
            )
            if len(plan.units) > 1:  # each unit's rows are in (split, id) order already
                rows_of_task = rows_of_task.sort(pl.col("split").cast(pl.Enum(list(SPLITS))), "id")
            start = 0
            for split in SPLITS:
                ids = chosen.filter(pl.col("split") == split)
                # the split's rows are one range: gathered into buffers of their own (see run._write_in_blocks)
                rows = rows_of_task.gather(pl.int_range(start, start + ids.height, eager=True))
                start += ids.height
                rows = pl.concat([rows, ids.select("candidates")], how="horizontal")
                name = data_file(key, split, config.format)
                with atomic_path(out / name) as tmp:
                    if config.format == "parquet":
                        rows.write_parquet(tmp)
                    else:
                        rows.write_ndjson(tmp)
                files[split] = {"path": name, "rows": rows.height}
                frames.append(rows.drop("input", "context_items", "target_items", "candidates"))
            summaries[key] = {"files": files, **task_summary(task, pl.concat(frames))}
            progress.advance(handle)
    finally:
        progress.finish(handle)
    card = card_dict(plan, markers, summaries)
    write_card(out, card)
    log.info("bench build: dataset written to %s (%d samples)", out, card["totals"]["samples"])
    return card
