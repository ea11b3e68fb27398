"""The link table on disk, and mapping a sample's items to concepts without the graph."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl

from graphkit.atomic import atomic_path, atomic_write_text
from graphkit.errors import InputError
from graphkit.link.items import ITEM_SCHEMA
from graphkit.link.linker import LINK_SCHEMA, LinkResult

LINKS_FILE = "links.parquet"
ITEMS_FILE = "items.parquet"
DROPPED_FILE = "dropped_links.parquet"
SUMMARY_FILE = "link_summary.json"


def write_links(result: LinkResult, folder: str | Path, *, extra: Mapping | None = None) -> dict:
    """links.parquet, items.parquet, dropped_links.parquet and link_summary.json (each atomic)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for frame, name in (
        (result.links, LINKS_FILE),
        (result.items, ITEMS_FILE),
        (result.dropped, DROPPED_FILE),
    ):
        with atomic_path(folder / name, suffix=".parquet") as tmp:
            frame.write_parquet(tmp)
    summary = {**result.summary(), **(extra or {})}
    atomic_write_text(folder / SUMMARY_FILE, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def read_links(path: str | Path) -> pl.DataFrame:
    """A link table (key, table, code, name, cui, method, score) from a folder or a parquet file."""
    path = Path(path)
    file = path / LINKS_FILE if path.is_dir() else path
    if not file.is_file():
        raise InputError(
            "no link table here",
            where=str(file),
            fix="build the graph first (ehr-r1 graph build), or pass the links.parquet it wrote",
        )
    frame = pl.read_parquet(file)
    missing = set(LINK_SCHEMA) - set(frame.columns)
    if missing:
        raise InputError("not a link table: columns missing", where=str(file), value=sorted(missing))
    return frame.select(pl.col(c).cast(t) for c, t in LINK_SCHEMA.items())


def read_items(folder: str | Path) -> pl.DataFrame:
    file = Path(folder) / ITEMS_FILE
    if not file.is_file():
        raise InputError(
            "no item table here", where=str(file), fix="build the graph first (ehr-r1 graph build)"
        )
    return pl.read_parquet(file).select(pl.col(c).cast(t) for c, t in ITEM_SCHEMA.items())


def map_items(items: Iterable | pl.DataFrame | pl.Series, links: pl.DataFrame) -> pl.DataFrame:
    """key -> concepts for a sample's items: key, cui, method, score (unlinked keys give no row).

    ``items``: keys (strings), item dicts/structs ``{table, key, name}`` as in a sample's
    ``context_items``/``target_items``, or a frame/series holding them (a ``key`` column).
    """
    if isinstance(items, pl.DataFrame):
        keys = items["key"]
    elif isinstance(items, pl.Series):
        keys = items.struct.field("key") if isinstance(items.dtype, pl.Struct) else items
    else:
        keys = pl.Series(
            [item["key"] if isinstance(item, Mapping) else item for item in items], dtype=pl.String
        )
    wanted = pl.DataFrame({"key": keys.cast(pl.String)}).unique(maintain_order=True)
    return wanted.join(
        links.select("key", "cui", "method", "score"), on="key", how="inner", maintain_order="left"
    )
