"""`ehr convert`: a parquet copy of a MIMIC-IV dataset laid out for fast per-patient access.

Layout (see docs/interfaces.md §1)::

    OUT/manifest.json                  written last; its presence means the copy is complete
    OUT/<table>/shard-00000.parquet    rows of the subjects that shard_of() puts in shard 0,
    ...                                sorted by subject_id, then the table's time column
    OUT/<dictionary>/all.parquet       d_* tables, provider, caregiver: whole

Per table, streaming: batches are read (a .csv.gz is inflated in a thread while polars parses
the previous chunk) and split by shard at once. A table that fits in ``buffer_bytes`` is then
sorted shard by shard in memory and written; a bigger one is staged: whenever the buffer is full,
each shard's rows go to OUT/.staging/<table>/<shard>/<n>.parquet, and a second pass reads, sorts
and writes one shard at a time. Memory is bounded by the buffer plus one shard of one table.
Every final file is written under a temporary name and renamed, and the manifest comes last, so
a killed run leaves only whole files; the same command again skips finished tables and shards,
redoes the staging of the table it was in, and finishes.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path

import polars as pl

from graphkit import __version__
from graphkit.atomic import atomic_path, atomic_write_text
from graphkit.ehr.schema import TableSpec
from graphkit.ehr.source import (
    CONVERT_STATE,
    CONVERTED_FORMAT,
    MANIFEST,
    MimicSource,
    RawSource,
    open_source,
    read_error,
    shard_expr,
    shard_file_name,
)
from graphkit.errors import ConfigError
from graphkit.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

STAGING = ".staging"
SHARD_COLUMN = "__shard"
SORT_KEY = "__sort_key"
PATIENTS_PER_SHARD = 5000
SHARD_BYTES = 384 << 20
MAX_SHARDS = 1024
# rows of one table held before they are split to staging parts; a table smaller than this is
# sharded in memory in one pass. Peak memory is a few times this.
BUFFER_BYTES = 256 << 20


def default_shards(source: MimicSource) -> int:
    """Enough shards for about PATIENTS_PER_SHARD patients each and for one shard of the largest
    table to take about SHARD_BYTES in memory (the second pass sorts a whole shard): the demo gets
    1, a 10k-patient synthetic cohort (70 M chartevents rows) 16, full MIMIC-IV 3.1 about 75."""
    patients = source.scan("patients", columns=["subject_id"]).select(pl.len()).collect().item()
    largest = max(
        (_memory_estimate(source, t) for t in source.tables if not source.spec(t).is_dictionary), default=0
    )
    wanted = max(math.ceil(patients / PATIENTS_PER_SHARD), math.ceil(largest / SHARD_BYTES))
    return max(1, min(MAX_SHARDS, wanted))


# in-memory bytes per file byte, on the high side: MIMIC's chartevents.csv.gz inflates 13x and
# its polars frame is about as big as the text; parquet is typically 4-8x smaller than its frame
_MEMORY_PER_FILE_BYTE = {"csv.gz": 12.0, "csv": 1.0, "parquet": 6.0}


def _memory_estimate(source: MimicSource, table: str) -> float:
    if isinstance(source, RawSource):
        table_file = source.file(table)
        return table_file.path.stat().st_size * _MEMORY_PER_FILE_BYTE[table_file.format]
    return sum(p.stat().st_size for p in source.shard_files(table)) * _MEMORY_PER_FILE_BYTE["parquet"]


def convert(
    path: str | Path,
    out: str | Path,
    n_shards: int | None = None,
    progress: Progress | None = None,
    buffer_bytes: int = BUFFER_BYTES,
) -> dict:
    """Convert the dataset at ``path`` into ``out`` (resuming a killed run); return the manifest."""
    progress = progress or NULL_PROGRESS
    source = open_source(path)
    out = Path(out).expanduser().resolve()
    if out == source.path:
        raise ConfigError(
            "must not be the source folder", where="--out", value=str(out), fix="choose another folder"
        )
    if n_shards is None:
        n_shards = _previous_shards(out) or default_shards(source)
    if not 1 <= n_shards <= MAX_SHARDS:
        raise ConfigError("is out of range", where="--shards", value=n_shards, fix=f"pass 1..{MAX_SHARDS}")

    options = {"source": str(source.path), "n_shards": n_shards, "format": CONVERTED_FORMAT}
    if (out / MANIFEST).exists():
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        _same_options(out, manifest, options)
        log.info("%s is already a complete conversion", out)
        return manifest
    _prepare(out, options)

    started = time.perf_counter()
    overall = progress.start("converting tables", total=len(source.tables))
    tables = {}
    for name in source.tables:
        spec = source.spec(name)
        tables[name] = _convert_table(source, spec, out, n_shards, buffer_bytes, progress)
        progress.advance(overall)
    progress.finish(overall)

    manifest = {
        "format": CONVERTED_FORMAT,
        "version": 1,
        "ehr_r1_version": __version__,
        "source": str(source.path),
        "source_kind": source.kind,
        "n_shards": n_shards,
        "shard_function": "((subject_id * 2654435761) mod 2**32) * n_shards >> 32",
        "modules": sorted(source.modules),
        "tables": tables,
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    (out / CONVERT_STATE).unlink(missing_ok=True)
    shutil.rmtree(out / STAGING, ignore_errors=True)
    log.info(
        "converted %s rows in %.1f s", sum(t["rows"] for t in tables.values()), time.perf_counter() - started
    )
    return manifest


def _previous_shards(out: Path) -> int | None:
    for name in (MANIFEST, CONVERT_STATE):
        if (out / name).exists():
            try:
                return int(json.loads((out / name).read_text(encoding="utf-8"))["n_shards"])
            except (ValueError, KeyError, TypeError):
                return None
    return None


def _same_options(out: Path, recorded: dict, options: dict) -> None:
    for key in ("source", "n_shards"):
        if recorded.get(key) != options[key]:
            fix = (
                f"pass --shards {recorded.get(key)}"
                if key == "n_shards"
                else "convert into another --out folder"
            )
            raise ConfigError(
                f"already holds a conversion with a different {key} ({recorded.get(key)!r})",
                where=f"--out {out}",
                value=options[key],
                fix=f"{fix}, or delete {out}",
            )


def _prepare(out: Path, options: dict) -> None:
    state = out / CONVERT_STATE
    if state.exists():
        _same_options(out, json.loads(state.read_text(encoding="utf-8")), options)
        for stray in out.rglob(".*.tmp"):  # half-written files of the killed run
            if stray.is_dir():
                shutil.rmtree(stray, ignore_errors=True)
            else:
                stray.unlink(missing_ok=True)
        return
    if out.exists() and any(out.iterdir()):
        raise ConfigError(
            "is not empty and holds no conversion to resume",
            where=f"--out {out}",
            fix="choose an empty or new folder",
        )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(state, json.dumps(options, indent=2) + "\n")


def _convert_table(
    source: MimicSource, spec: TableSpec, out: Path, n_shards: int, buffer_bytes: int, progress: Progress
) -> dict:
    folder = out / spec.name
    entry = {"module": spec.module, "source_file": _source_file(source, spec.name), "complete": True}
    if spec.is_dictionary:
        target = folder / "all.parquet"
        if not target.exists():
            _write(_collect(source.scan(spec.name), source, spec), target)
        entry.update(layout="whole", rows=_rows([target]), sorted_by=[])
        return entry

    sort_keys = [spec.subject_column] + ([spec.time_column] if spec.time_column else [])
    targets = [folder / shard_file_name(i) for i in range(n_shards)]
    if not all(t.exists() for t in targets):
        staging = out / STAGING / spec.name
        if not (staging / "_DONE").exists():
            shutil.rmtree(staging, ignore_errors=True)
            in_memory = _partition(source, spec, staging, n_shards, buffer_bytes, progress)
            if in_memory is not None:  # the table fitted in the buffer: shards straight from memory
                for parts, target in zip(in_memory, targets, strict=True):
                    _write(sort_rows(_concat(parts, spec), *sort_keys), target)
        if (staging / "_DONE").exists():
            _sort_staged(spec, staging, targets, sort_keys, progress)
        shutil.rmtree(staging, ignore_errors=True)
    entry.update(layout="sharded", rows=_rows(targets), sorted_by=sort_keys)
    return entry


def _partition(
    source: MimicSource, spec: TableSpec, staging: Path, n_shards: int, buffer_bytes: int, progress: Progress
) -> list[list[pl.DataFrame]] | None:
    """Pass 1: each batch is split by shard at once and its pieces kept per shard, in source order.
    A table that fits in ``buffer_bytes`` is returned as those pieces. Otherwise, whenever the
    buffer is full, each shard's pieces become one file staging/<shard>/<flush>.parquet, and None
    is returned once staging/_DONE marks the staging complete."""
    handle = progress.start(f"{spec.name}: reading")
    pieces: list[list[pl.DataFrame]] = [[] for _ in range(n_shards)]
    buffered = 0
    flushes = 0
    for batch in source.batches(spec.name):
        keyed = batch.with_columns(shard_expr(n_shards, spec.subject_column).alias(SHARD_COLUMN))
        for (shard,), piece in keyed.partition_by(SHARD_COLUMN, as_dict=True, include_key=False).items():
            pieces[shard].append(piece)
        buffered += batch.estimated_size()
        del batch, keyed
        if buffered >= buffer_bytes:
            _flush(pieces, spec, staging, flushes)
            pieces, buffered, flushes = [[] for _ in range(n_shards)], 0, flushes + 1
        progress.advance(handle)
    progress.finish(handle)
    if flushes == 0:
        return pieces
    if buffered:
        _flush(pieces, spec, staging, flushes)
    (staging / "_DONE").write_text("")
    return None


def _flush(pieces: list[list[pl.DataFrame]], spec: TableSpec, staging: Path, number: int) -> None:
    for shard, parts in enumerate(pieces):
        if parts:
            folder = staging / f"{shard:05d}"
            folder.mkdir(parents=True, exist_ok=True)
            # staging parts are read once, soon: speed over size
            _concat(parts, spec).write_parquet(folder / f"{number:06d}.parquet", compression="lz4")
            parts.clear()


def _concat(parts: list[pl.DataFrame], spec: TableSpec) -> pl.DataFrame:
    return pl.concat(parts) if parts else pl.DataFrame(schema=spec.polars_schema())


_SECONDS_BITS = 33  # epoch seconds up to year 2242 (MIMIC's shifted dates run to about 2214)
_NULL_TIME = (1 << _SECONDS_BITS) - 1  # sorts after every real time: nulls last


def sort_rows(frame: pl.DataFrame, subject: str, time: str | None = None) -> pl.DataFrame:
    """``frame`` stably sorted by subject, then time (nulls last).

    polars' stable sort on two columns is about 20x slower than on one Int64, so when the values
    allow (subject < 2**30, whole seconds from 1970 to 2242) both are packed into one key; already
    sorted input (e.g. a synthetic cohort) is returned as it is.
    """
    if frame.height < 2:
        return frame
    packed = _packed_key(frame, subject, time)
    if packed is None:
        keys = [subject] + ([time] if time else [])
        return frame.sort(keys, nulls_last=True, maintain_order=True)
    if packed.is_sorted():
        return frame
    return frame.with_columns(packed.alias(SORT_KEY)).sort(SORT_KEY, maintain_order=True).drop(SORT_KEY)


def _packed_key(frame: pl.DataFrame, subject: str, time: str | None) -> pl.Series | None:
    subjects = frame[subject]
    if subjects.null_count() or subjects.min() < 0 or subjects.max() >= 1 << 30:
        return None
    key = subjects.cast(pl.Int64) * (1 << _SECONDS_BITS)
    if time is None:
        return key
    times = frame[time]
    if times.dtype == pl.Date:
        seconds = times.dt.epoch("d").cast(pl.Int64) * 86400
    else:
        if (times.dt.microsecond() != 0).any():
            return None
        seconds = times.dt.epoch("s")
    if seconds.null_count() < len(seconds) and (seconds.min() < 0 or seconds.max() >= _NULL_TIME):
        return None
    return key + seconds.fill_null(_NULL_TIME)


def _sort_staged(
    spec: TableSpec, staging: Path, targets: list[Path], sort_keys: list[str], progress: Progress
) -> None:
    """Pass 2: each shard's parts, concatenated in flush order, stably sorted, written whole."""
    handle = progress.start(f"{spec.name}: sorting shards", total=len(targets))
    for shard, target in enumerate(targets):
        if not target.exists():
            parts = sorted((staging / f"{shard:05d}").glob("*.parquet"))
            frame = (
                sort_rows(pl.read_parquet(parts), *sort_keys)
                if parts
                else pl.DataFrame(schema=spec.polars_schema())
            )
            _write(frame, target)
        progress.advance(handle)
    progress.finish(handle)


def _collect(frame: pl.LazyFrame, source: MimicSource, spec: TableSpec) -> pl.DataFrame:
    try:
        return frame.collect()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise read_error(source, spec.name, exc) from exc


def _write(frame: pl.DataFrame, target: Path) -> None:
    with atomic_path(target) as tmp:
        # zstd level 1: a quarter less CPU than the default level for about the same size
        frame.write_parquet(tmp, compression="zstd", compression_level=1, statistics=True)


def _rows(files: list[Path]) -> int:
    return pl.scan_parquet(files).select(pl.len()).collect().item()


def _source_file(source: MimicSource, table: str) -> str:
    if isinstance(source, RawSource):
        return source.file(table).display(source.path)
    return table
