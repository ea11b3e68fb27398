"""`ehr convert`: a parquet copy of a MIMIC-IV dataset laid out for fast per-patient access.

Layout (see CONTRACTS.md §1)::

    OUT/manifest.json                  written last; its presence means the copy is complete
    OUT/<table>/shard-00000.parquet    rows of the subjects that shard_of() puts in shard 0,
    ...                                sorted by subject_id, then the table's time column
    OUT/<dictionary>/all.parquet       d_* tables, provider, caregiver: whole

Two passes per table, both streaming: (1) read the table in batches and append each batch's rows
to per-shard staging parts; (2) per shard, read its parts, sort, write the final file. Memory is
bounded by one batch plus one shard of one table. Every final file is written to a temporary name
and renamed, so a killed run leaves only whole files; running the same command again skips what
is done, drops staging parts of the table it was in, and finishes.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import queue
import shutil
import threading
import time
from collections.abc import Iterator
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
    csv_read_dtypes,
    open_source,
    shard_expr,
    shard_file_name,
    typed,
)
from graphkit.errors import ConfigError, InputError
from graphkit.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

STAGING = ".staging"
SHARD_COLUMN = "__shard"
SORT_KEY = "__sort_key"
PATIENTS_PER_SHARD = 5000
MAX_SHARDS = 1024
BATCH_BYTES = 64 << 20  # decompressed CSV bytes per batch
BATCH_ROWS = 1_000_000  # rows per batch for parquet and plain-CSV sources
# rows of one table held before they are split to staging parts; a table smaller than this is
# sharded in memory in one pass. Peak memory is a few times this.
BUFFER_BYTES = 256 << 20


def default_shards(source: MimicSource) -> int:
    """About PATIENTS_PER_SHARD patients a shard: the demo gets 1, full MIMIC-IV 3.1 about 73."""
    patients = source.scan("patients", columns=["subject_id"]).select(pl.len()).collect().item()
    return max(1, min(MAX_SHARDS, math.ceil(patients / PATIENTS_PER_SHARD)))


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
    for batch in _batches(source, spec):
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


def _batches(source: MimicSource, spec: TableSpec) -> Iterator[pl.DataFrame]:
    if isinstance(source, RawSource) and source.file(spec.name).format == "csv.gz":
        yield from _gzip_csv_batches(source, spec)
        return
    try:
        yield from source.scan(spec.name).collect_batches(chunk_size=BATCH_ROWS)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise _read_error(source, spec, exc) from exc


def _gzip_csv_batches(source: RawSource, spec: TableSpec) -> Iterator[pl.DataFrame]:
    """Decompress in a thread (ISA-L when installed) while polars parses the previous chunk.

    polars inflates .gz on one core before parsing; overlapping the two, using ISA-L's inflate and
    parsing timestamps with the fixed MIMIC format first (see _parse_times) triples the rows per
    second on two cores.
    """
    table_file = source.file(spec.name)
    dtypes = csv_read_dtypes(spec, table_file.header)
    renames = {name: name.lower() for name in table_file.header if name != name.lower()}
    for chunk in _record_chunks(table_file.path, source, spec):
        try:
            frame = pl.read_csv(chunk, has_header=False, schema=dtypes)
        except pl.exceptions.PolarsError as exc:
            raise _read_error(source, spec, exc) from exc
        yield _parse_times(frame.rename(renames).select(list(spec.columns)), spec, source)


_FAST_FORMATS = {"datetime": "%Y-%m-%d %H:%M:%S", "date": "%Y-%m-%d"}


def _parse_times(frame: pl.DataFrame, spec: TableSpec, source: MimicSource) -> pl.DataFrame:
    """Timestamps with MIMIC's exact format first (3x faster than allowing fractional seconds); a
    column where that leaves a value unparsed (another spelling, or a quoted empty text) is parsed
    again the way source.scan parses it."""
    columns = [c for c in spec.columns.values() if c.dtype in _FAST_FORMATS]
    if not columns:
        return frame
    parsed = frame.with_columns(
        pl.col(c.name).str.to_datetime(_FAST_FORMATS[c.dtype], time_unit="us", strict=False)
        if c.dtype == "datetime"
        else pl.col(c.name).str.to_date(_FAST_FORMATS[c.dtype], strict=False)
        for c in columns
    )
    for column in columns:
        if parsed[column.name].null_count() == frame[column.name].null_count():
            continue
        try:
            parsed = parsed.with_columns(frame.select(typed(column.name, pl.String(), column.dtype)))
        except pl.exceptions.PolarsError as exc:
            raise _read_error(source, spec, exc) from exc
    return parsed


def _open_gzip(path: Path):
    try:
        from isal import igzip
    except ImportError:
        return gzip.open(path, "rb")
    return igzip.open(path, "rb")


def _record_chunks(path: Path, source: MimicSource, spec: TableSpec) -> Iterator[bytes]:
    """Decompressed CSV body in chunks that end on record boundaries (the header line dropped).

    A newline ends a record only outside quotes; CSV escapes a quote by doubling it, so "outside"
    is "an even number of quote characters since the chunk start" (each chunk starts a record).
    """
    chunks: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            with _open_gzip(path) as handle:
                handle.readline()  # the header, already read by open_source
                pending = b""
                while not stop.is_set():
                    data = handle.read(BATCH_BYTES)
                    if not data:
                        break
                    cut = _last_record_end(data, odd_quotes=pending.count(b'"') % 2 == 1)
                    if cut:
                        chunks.put(pending + data[:cut] if pending else data[:cut])
                        pending = data[cut:]
                    else:
                        pending += data
                if pending.strip() and not stop.is_set():
                    chunks.put(pending)
            chunks.put(None)
        except BaseException as exc:  # handed to the consumer, which raises it with the file name
            chunks.put(exc)

    worker = threading.Thread(target=produce, name=f"inflate-{spec.name}", daemon=True)
    worker.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise _read_error(source, spec, item) from item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                chunks.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)


def _last_record_end(data: bytes, odd_quotes: bool = False) -> int:
    """Index just past the last newline of ``data`` outside quotes (0 when there is none);
    ``odd_quotes``: the text before ``data`` since the last record start holds an odd number of
    quote characters (``data`` starts inside a quoted field)."""
    end = data.rfind(b"\n")
    if end < 0:
        return 0
    quotes = data.count(b'"', 0, end) + odd_quotes
    while quotes % 2:
        previous = data.rfind(b"\n", 0, end)
        if previous < 0:
            return 0
        quotes -= data.count(b'"', previous, end)
        end = previous
    return end + 1


def _read_error(source: MimicSource, spec: TableSpec, exc: BaseException) -> InputError:
    where = source.file(spec.name).display(source.path) if isinstance(source, RawSource) else spec.name
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(
        f"cannot be converted ({message})",
        where=where,
        fix=f"run `ehr-r1 ehr check {source.path}` to find the bad value, fix or download the file again",
    )


def _collect(frame: pl.LazyFrame, source: MimicSource, spec: TableSpec) -> pl.DataFrame:
    try:
        return frame.collect()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise _read_error(source, spec, exc) from exc


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
