"""Reading EHR-Bench sample rows (docs/interfaces.md §5) and item links for mining and thinking graphs.

Only the columns the thinking layer needs are read (``id, task, split, context_items,
target_items``), lazily, from parquet or JSONL files or folders of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

from graphkit.errors import InputError

SAMPLE_COLUMNS = ("id", "task", "split", "context_items", "target_items")
_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz")


def _files(paths: Sequence[Path], what: str, option: str) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(_SUFFIXES))
        elif path.is_file() and path.name.endswith(_SUFFIXES):
            files.append(path)
        else:
            raise InputError(f"no {what} file or folder", where=option, value=str(path), fix="give parquet or JSONL files or folders")
    if not files:
        raise InputError(f"no {what} files found", where=option, value=[str(p) for p in paths], fix="build them first")
    return files


def _scan(file: Path) -> pl.LazyFrame:
    if file.name.endswith(".parquet"):
        return pl.scan_parquet(file)
    return pl.scan_ndjson(file, infer_schema_length=None)


def scan_samples(paths: Sequence[Path], *, tasks: Iterable[str] | None = None, splits: Iterable[str] | None = None) -> pl.LazyFrame:
    """The sample rows of these files, only the columns the thinking layer reads."""
    frames = []
    for file in _files(paths, "sample", "--samples"):
        frame = _scan(file)
        missing = [c for c in SAMPLE_COLUMNS if c not in frame.collect_schema().names()]
        if missing:
            raise InputError("sample rows lack columns", where=str(file), value=missing, fix="give EHR-Bench sample rows (docs/interfaces.md §5)")
        frames.append(frame.select(SAMPLE_COLUMNS))
    samples = pl.concat(frames, how="diagonal_relaxed")
    if tasks:
        samples = samples.filter(pl.col("task").is_in(list(tasks)))
    if splits:
        samples = samples.filter(pl.col("split").is_in(list(splits)))
    return samples


def read_links(path: Path) -> pl.DataFrame:
    """Item links (key, cui) from a parquet or JSONL file or folder."""
    frames = []
    for file in _files([path], "item-link", "--links"):
        frame = _scan(file).collect()
        if not {"key", "cui"} <= set(frame.columns):
            raise InputError("item links need the columns key and cui", where=str(file), value=frame.columns,
                             fix="export them with graphkit.thinking.store_io.load_item_links(store)")
        frames.append(frame.select(pl.col("key").cast(pl.String), pl.col("cui").cast(pl.String)))
    return pl.concat(frames).unique()
