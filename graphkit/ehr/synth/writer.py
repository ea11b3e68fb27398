"""Chunked, deterministic writers for a PhysioNet-style MIMIC-IV folder (csv.gz or parquet).

csv.gz: each table is one file of concatenated gzip members (the header, then one member per
chunk), which every gzip reader (zcat, Python, pandas, polars) reads as one stream; members
carry no timestamp, so the bytes depend only on the content and the compressor (isal when it is
installed, else zlib: the same installation always writes the same bytes, and the decompressed
text is the same everywhere). Encoding runs on worker threads (polars, zlib and isal release the
GIL) while the next chunk is generated.
parquet: each chunk is staged as an uncompressed Arrow IPC part (about a memory copy), and the
parts of a table are streamed into one zstd parquet file at the end (one compression pass).
"""

from __future__ import annotations

import io
import shutil
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import polars as pl

from graphkit.ehr.schema import Schema, TableSpec
from graphkit.progress import Progress

FORMATS = ("csv.gz", "parquet")
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
GZIP_LEVEL = 1  # the cohort is a fixture: speed over size (level 6 is 3x slower, 20 % smaller)


def _compressor():
    """isal's gzip (several times faster) when installed, else zlib; both release the GIL."""
    try:
        from isal import isal_zlib

        return isal_zlib.compress
    except ImportError:
        return zlib.compress


_compress = _compressor()


def _csv_gzip(frame: pl.DataFrame, header: bool) -> bytes:
    """One gzip member (no name, no timestamp) holding the frame as MIMIC-style CSV."""
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=header, datetime_format=DATETIME_FORMAT, date_format="%Y-%m-%d")
    return _compress(buffer.getvalue(), GZIP_LEVEL, wbits=31)


class CohortWriter:
    """Writes tables chunk by chunk under ``root/<module>/<table>.<format>``."""

    def __init__(self, root: Path, schema: Schema, fmt: str, workers: int = 2):
        self.root = root
        self.schema = schema
        self.format = fmt
        self.rows: dict[str, int] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._pending: list[tuple[str, Future]] = []
        self._parts: dict[str, list[Path]] = {}

    def path(self, spec: TableSpec) -> Path:
        return self.root / spec.module / f"{spec.name}.{self.format}"

    def start(self, tables: list[str]) -> None:
        for name in tables:
            spec = self.schema.table(name)
            self.rows[name] = 0
            target = self.path(spec)
            target.parent.mkdir(parents=True, exist_ok=True)
            if self.format == "csv.gz":
                empty = pl.DataFrame(schema=spec.polars_schema())
                target.write_bytes(_csv_gzip(empty, header=True))
            else:
                self._parts[name] = []

    def write(self, tables: dict[str, pl.DataFrame]) -> None:
        """Queue one chunk; waits for the previous chunk so at most two are in memory."""
        self.flush()
        for name, frame in tables.items():
            self.rows[name] += frame.height
            if not frame.height:
                continue
            if self.format == "csv.gz":
                self._pending.append((name, self._pool.submit(_csv_gzip, frame, False)))
            else:
                part = self.root / ".parts" / name / f"part-{len(self._parts[name]):05d}.arrow"
                part.parent.mkdir(parents=True, exist_ok=True)
                self._parts[name].append(part)
                self._pending.append(
                    (name, self._pool.submit(frame.write_ipc, part, compression="uncompressed"))
                )

    def flush(self) -> None:
        for name, future in self._pending:
            data = future.result()
            if self.format == "csv.gz":
                with open(self.path(self.schema.table(name)), "ab") as handle:
                    handle.write(data)
        self._pending = []

    def finish(self, progress: Progress | None = None) -> None:
        self.flush()
        self._pool.shutdown(wait=True)
        if self.format != "parquet":
            return
        handle = progress.start("writing parquet tables", total=len(self._parts)) if progress else None
        for name, parts in self._parts.items():
            spec = self.schema.table(name)
            target = self.path(spec)
            if parts:
                pl.scan_ipc(parts).sink_parquet(target, compression="zstd", maintain_order=True)
            else:
                pl.DataFrame(schema=spec.polars_schema()).write_parquet(target, compression="zstd")
            if progress:
                progress.advance(handle)
        shutil.rmtree(self.root / ".parts", ignore_errors=True)
        if progress:
            progress.finish(handle)

    def abort(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def copy_dictionary(source_file: Path, spec: TableSpec, frame_of, target: Path, fmt: str) -> int:
    """A demo dictionary table: copied byte for byte as csv.gz, or rewritten typed as parquet."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv.gz" and source_file.name.endswith(".csv.gz"):
        shutil.copyfile(source_file, target)
        return frame_of().height
    frame = frame_of()
    if fmt == "csv.gz":
        target.write_bytes(_csv_gzip(frame, header=True))
    else:
        frame.write_parquet(target, compression="zstd")
    return frame.height
