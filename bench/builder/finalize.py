"""The last step of a build: merge the units' parts into the dataset, add candidate lists, write the card.

Per task, the labels and sampling keys of every unit are read first (a few columns): they decide
which samples the caps keep and give the candidate lists. Then each split's parts are read once,
cut to the kept samples, given their candidates and written once.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import polars as pl

from bench.builder import sampling
from bench.builder.candidate_lists import candidate_lists
from bench.builder.plan import BuildPlan
from bench.builder.run import DONE, ROW_COLUMNS, part_name
from bench.card import card_dict, task_summary, write_card
from bench.splits import SPLITS
from graphkit.atomic import atomic_path
from graphkit.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)


def data_file(key: str, split: str, fmt: str) -> str:
    return f"data/{key}/{split}.{fmt}"


def finalize(out: Path, plan: BuildPlan, progress: Progress | None = None) -> dict:
    progress = progress or NULL_PROGRESS
    config = plan.config
    markers = [json.loads((out / "parts" / u.name / DONE).read_text()) for u in plan.units]
    tables = sorted({t for m in markers for t in m["tables"]})
    summaries: dict[str, dict] = {}
    handle = progress.start("bench build: writing the dataset", total=len(plan.tasks))
    try:
        for key, task in plan.tasks.items():
            paths = {
                split: [out / "parts" / u.name / part_name(key, split) for u in plan.units]
                for split in SPLITS
            }
            balanced = sampling.balanced(task, config.balance)
            kept = []
            for split in SPLITS:
                light = pl.concat(
                    [pl.read_parquet(p, columns=["id", "split", "label", "sample_key"]) for p in paths[split]]
                )
                kept.append(sampling.select(light, config.cap(task, split), balanced, final=True).sort("id"))
            chosen = pl.concat(kept)
            chosen = chosen.with_columns(candidate_lists(task, chosen, tables))
            files = {}
            frames = []
            for split in SPLITS:
                ids = chosen.filter(pl.col("split") == split)
                rows = pl.concat([pl.read_parquet(p) for p in paths[split]], how="vertical")
                if rows.height != ids.height:
                    rows = rows.join(ids.select("id"), on="id", how="semi", maintain_order="left")
                if len(plan.units) > 1:
                    rows = rows.sort("id")
                rows = pl.concat([rows.select(ROW_COLUMNS), ids.select("candidates")], how="horizontal")
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
