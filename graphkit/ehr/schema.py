"""The MIMIC-IV schema (hosp, icu, ed, note), parsed from the data file ``mimic_iv_schema.yaml``."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from graphkit.errors import ConfigError, SchemaError

SCHEMA_FILE = Path(__file__).with_name("mimic_iv_schema.yaml")

DTYPES: dict[str, pl.DataType] = {
    "int": pl.Int64(),
    "float": pl.Float64(),
    "str": pl.String(),
    "datetime": pl.Datetime("us"),
    "date": pl.Date(),
}

_COLUMN_GRAMMAR = re.compile(
    r"^\s*(?P<dtype>\w+)\s*(?P<notnull>,\s*not null)?\s*(?:,\s*since\s+(?P<since>[\d.]+))?\s*$"
)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    dtype: str  # "int" | "float" | "str" | "datetime" | "date"
    nullable: bool
    since: str | None = None  # the MIMIC-IV version that introduced the column

    @property
    def polars_dtype(self) -> pl.DataType:
        return DTYPES[self.dtype]


@dataclass(frozen=True)
class TableSpec:
    name: str
    module: str
    required: bool
    columns: dict[str, ColumnSpec]
    subject_column: str | None
    time_column: str | None

    @property
    def is_dictionary(self) -> bool:
        """Dictionary tables (d_*, provider, caregiver) have no patient column and are never sharded."""
        return self.subject_column is None

    def polars_schema(self, columns: list[str] | None = None) -> dict[str, pl.DataType]:
        names = list(self.columns) if columns is None else columns
        return {name: self.columns[name].polars_dtype for name in names}


@dataclass(frozen=True)
class ModuleSpec:
    name: str
    required: bool
    source: str


@dataclass(frozen=True)
class Schema:
    versions: tuple[str, ...]
    modules: dict[str, ModuleSpec]
    tables: dict[str, TableSpec]

    def table(self, name: str) -> TableSpec:
        try:
            return self.tables[name]
        except KeyError:
            raise SchemaError(
                "is not a MIMIC-IV table",
                where=f"table {name!r}",
                value=name,
                fix=f"use one of: {', '.join(sorted(self.tables))}",
            ) from None

    def tables_in(self, module: str) -> list[TableSpec]:
        return [spec for spec in self.tables.values() if spec.module == module]


@functools.cache
def _load_default() -> Schema:
    return _parse(SCHEMA_FILE)


def load_schema(path: str | Path | None = None) -> Schema:
    """The schema from ``mimic_iv_schema.yaml`` (cached), or from another file of the same shape."""
    return _load_default() if path is None else _parse(Path(path))


def _parse(path: Path) -> Schema:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the schema file: {exc}", where=str(path)) from exc
    if not isinstance(raw, dict) or raw.get("format") != 1:
        raise ConfigError("is not a format-1 schema file", where=str(path), fix="start it with `format: 1`")

    modules = {
        name: ModuleSpec(
            name=name, required=bool(body.get("required", False)), source=str(body.get("source", ""))
        )
        for name, body in raw["modules"].items()
    }
    tables: dict[str, TableSpec] = {}
    for name, body in raw["tables"].items():
        where = f"{path.name}: tables.{name}"
        module = body.get("module")
        if module not in modules:
            raise ConfigError(
                "names an unknown module",
                where=f"{where}.module",
                value=module,
                fix=f"use one of: {', '.join(modules)}",
            )
        columns = {
            column: _parse_column(column, text, f"{where}.columns.{column}")
            for column, text in body["columns"].items()
        }
        for key in ("subject", "time"):
            if body.get(key) is not None and body[key] not in columns:
                raise ConfigError(
                    "is not one of the table's columns",
                    where=f"{where}.{key}",
                    value=body[key],
                    fix="name a column listed under `columns`",
                )
        tables[name] = TableSpec(
            name=name,
            module=module,
            required=bool(body.get("required", True)),
            columns=columns,
            subject_column=body.get("subject"),
            time_column=body.get("time"),
        )
    return Schema(versions=tuple(str(v) for v in raw["versions"]), modules=modules, tables=tables)


def _parse_column(name: str, text: object, where: str) -> ColumnSpec:
    match = _COLUMN_GRAMMAR.match(str(text))
    if not match or match["dtype"] not in DTYPES:
        raise ConfigError(
            "is not a column definition",
            where=where,
            value=text,
            fix=f"write `<type>[, not null][, since <version>]` with type one of {', '.join(DTYPES)}",
        )
    return ColumnSpec(
        name=name, dtype=match["dtype"], nullable=match["notnull"] is None, since=match["since"]
    )
