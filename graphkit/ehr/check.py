"""`ehr check`: validate a MIMIC-IV dataset against the schema and say which benchmark tasks it enables.

Every table is read once as stored (CSV: text), in batches of bounded size (`source.batches`):
each value must parse as its schema type (the parsers `source.scan` uses), the patient column
must be filled, and rows are counted. The first problem raises an InputError/SchemaError naming
the file, the column, the value and the fix. Nothing is written.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from graphkit.ehr.schema import DTYPES, TableSpec
from graphkit.ehr.source import MimicSource, RawSource, open_source, typed
from graphkit.errors import InputError, SchemaError
from graphkit.progress import Progress, track

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskNeeds:
    """What one EHR-Bench task reads. bench/ owns the tasks (bench/tasks/*/*.yaml, `requires`);
    graphkit may not import it, so this mirrors their data needs (a test keeps the two equal)."""

    key: str
    family: str  # "decision" | "risk"
    tables: tuple[str, ...]
    optional: tuple[str, ...] = ()  # read when present, with a fallback when absent


def _decision(key: str, *tables: str) -> TaskNeeds:
    return TaskNeeds(key, "decision", tables)


def _risk(key: str, *tables: str, optional: tuple[str, ...] = ()) -> TaskNeeds:
    return TaskNeeds(key, "risk", tables, optional)


_ICU_DEATH = ("icustays", "admissions", "patients")
_ED_ICU = ("edstays", "admissions", "icustays")

# The 45 tasks of the reference (27 decision-making, 18 risk-prediction), keyed as in bench/tasks
# (ED_ICU_Transfer_12hour is the reference's ED_ICU_Tranfer_12hour).
TASKS: tuple[TaskNeeds, ...] = (
    _decision("admissions", "admissions"),
    _decision("omr", "omr"),
    _decision("emar", "emar"),
    _decision("poe", "poe"),
    _decision("services", "services"),
    _decision("transfers", "transfers"),
    _decision("labevents", "labevents", "d_labitems"),
    _decision("microbiologyevents", "microbiologyevents"),
    _decision("prescriptions", "prescriptions"),
    _decision("prescriptions_atc", "prescriptions"),
    _decision("procedures_icd", "procedures_icd", "d_icd_procedures"),
    _decision("procedures_ccs", "procedures_icd"),
    _decision("diagnoses_icd", "diagnoses_icd", "d_icd_diagnoses", "admissions"),
    _decision("diagnoses_ccs", "diagnoses_icd", "admissions"),
    _decision("radiology", "radiology", "radiology_detail"),
    _decision("medrecon", "medrecon"),
    _decision("medrecon_atc", "medrecon"),
    _decision("pyxis", "pyxis"),
    _decision("diagnosis", "diagnosis", "edstays"),
    _decision("diagnosis_ccs", "diagnosis", "edstays"),
    _decision("chartevents", "chartevents", "d_items"),
    _decision("ingredientevents", "ingredientevents", "d_items"),
    _decision("datetimeevents", "datetimeevents", "d_items"),
    _decision("procedureevents", "procedureevents", "d_items"),
    _decision("inputevents", "inputevents", "d_items"),
    _decision("outputevents", "outputevents", "d_items"),
    _decision("next_event", "admissions"),
    _risk("ED_Hospitalization", "edstays", "admissions"),
    _risk("ED_Inpatient_Mortality", "edstays", "admissions"),
    _risk("ED_ICU_Transfer_12hour", *_ED_ICU),
    _risk("ED_Reattendance_3day", "edstays"),
    _risk("ED_Critical_Outcomes", *_ED_ICU),
    _risk("Readmission_30day", "admissions", optional=("discharge",)),
    _risk("Readmission_60day", "admissions", optional=("discharge",)),
    _risk("Inpatient_Mortality", "admissions"),
    _risk("LengthOfStay_3day", "admissions"),
    _risk("LengthOfStay_7day", "admissions"),
    _risk("ICU_Mortality_1day", *_ICU_DEATH),
    _risk("ICU_Mortality_2day", *_ICU_DEATH),
    _risk("ICU_Mortality_3day", *_ICU_DEATH),
    _risk("ICU_Mortality_7day", *_ICU_DEATH),
    _risk("ICU_Mortality_14day", *_ICU_DEATH),
    _risk("ICU_Stay_7day", "icustays"),
    _risk("ICU_Stay_14day", "icustays"),
    _risk("ICU_Readmission", "icustays"),
)


@dataclass
class TableReport:
    table: str
    module: str
    file: str
    format: str
    rows: int
    untimed_rows: int | None  # rows whose time column is empty (never placed on a timeline)
    null_violations: dict[str, int] = field(default_factory=dict)  # NOT NULL columns with empty values


@dataclass(frozen=True)
class TaskStatus:
    task: TaskNeeds
    enabled: bool
    missing: tuple[str, ...]  # "module/table" entries the task needs and the data lacks
    uses: tuple[str, ...]  # optional tables present and used


@dataclass
class CheckReport:
    path: str
    kind: str
    modules: frozenset[str]
    tables: list[TableReport]
    tasks: list[TaskStatus]
    warnings: list[str]
    seconds: float

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def enabled(self, family: str | None = None) -> list[str]:
        return [s.task.key for s in self.tasks if s.enabled and (family is None or s.task.family == family)]

    def disabled(self, family: str | None = None) -> list[str]:
        return [
            s.task.key for s in self.tasks if not s.enabled and (family is None or s.task.family == family)
        ]


def task_status(source: MimicSource) -> list[TaskStatus]:
    statuses = []
    for task in TASKS:
        missing = tuple(_label(source, t) for t in task.tables if not source.has(t))
        uses = tuple(t for t in task.optional if source.has(t))
        statuses.append(TaskStatus(task=task, enabled=not missing, missing=missing, uses=uses))
    return statuses


def _label(source: MimicSource, table: str) -> str:
    return f"{source.schema.table(table).module}/{table}"


def _absence_warnings(source: MimicSource, statuses: list[TaskStatus]) -> list[str]:
    """One warning per missing optional module or table, naming the tasks it switches off."""
    schema = source.schema
    warnings = []
    for module in schema.modules.values():
        if module.required or module.name in source.modules:
            continue
        off = [s.task.key for s in statuses if any(m.startswith(f"{module.name}/") for m in s.missing)]
        fallback = [
            s.task.key
            for s in statuses
            if any(schema.table(t).module == module.name for t in s.task.optional)
        ]
        text = f"{module.name}/ ({module.source}) not found"
        if off:
            text += f": {len(off)} task(s) switched off: {', '.join(off)}"
        if fallback:
            text += f"; {', '.join(fallback)} use structured data instead"
        text += f"; to enable, put or link its {module.name}/ folder beside hosp/"
        warnings.append(text)
    for spec in schema.tables.values():
        if spec.required or spec.module not in source.modules or source.has(spec.name):
            continue
        off = [s.task.key for s in statuses if f"{spec.module}/{spec.name}" in s.missing]
        if off:
            warnings.append(
                f"{spec.module}/{spec.name} not found: {len(off)} task(s) switched off: {', '.join(off)}"
            )
    return warnings


def check(path: str | Path, progress: Progress | None = None) -> CheckReport:
    """Validate the dataset at ``path``; raise on the first problem, return the report otherwise."""
    started = time.perf_counter()
    source = open_source(path)
    reports = [
        _check_table(source, source.spec(name)) for name in track(source.tables, "checking tables", progress)
    ]
    statuses = task_status(source)
    warnings = _absence_warnings(source, statuses)
    for report in reports:
        if report.rows == 0:
            warnings.append(f"{report.file}: the table has no rows")
        for column, count in report.null_violations.items():
            warnings.append(
                f"{report.file}: column {column!r} is NOT NULL in the published schema but empty in {count} row(s)"
            )
    return CheckReport(
        path=str(source.path),
        kind=source.kind,
        modules=source.modules,
        tables=reports,
        tasks=statuses,
        warnings=warnings,
        seconds=time.perf_counter() - started,
    )


def _check_table(source: MimicSource, spec: TableSpec) -> TableReport:
    """One streaming pass over the table's batches; the first bad value raises at once."""
    where = source.display(spec.name)
    if isinstance(source, RawSource):
        table_file = source.file(spec.name)
        stored = {
            name: table_file.file_dtypes.get(name, pl.String()) if table_file.file_dtypes else pl.String()
            for name in spec.columns
        }
        fmt = table_file.format
    else:
        stored = dict(source.scan(spec.name).collect_schema())
        fmt = "parquet"
        for name, dtype in stored.items():
            if dtype != spec.columns[name].polars_dtype:
                raise SchemaError(
                    f"has the wrong type: expected {spec.columns[name].dtype}",
                    where=f"{where}: column {name!r}",
                    value=str(dtype),
                    fix="convert the source again",
                )

    checks = {c.name: _unparseable(c.name, stored[c.name], c.dtype) for c in spec.columns.values()}
    checks = {name: bad for name, bad in checks.items() if bad is not None}
    counted = [c for c in spec.columns.values() if not c.nullable or c.name == spec.time_column]
    exprs = [bad.sum().alias(f"bad:{name}") for name, bad in checks.items()]
    exprs += [_empty(c.name, stored[c.name], c.dtype).sum().alias(f"null:{c.name}") for c in counted]

    rows = 0
    empties = dict.fromkeys((c.name for c in counted), 0)
    for batch in source.batches(spec.name, text=True):
        counts = batch.select(exprs).row(0, named=True) if exprs else {}
        for name, bad in checks.items():
            if counts[f"bad:{name}"]:
                _raise_bad_value(batch, where, spec, name, bad, rows)
        for name in empties:
            empties[name] += counts[f"null:{name}"]
        rows += batch.height

    if spec.subject_column and empties[spec.subject_column]:
        raise InputError(
            f"the patient column is empty in {empties[spec.subject_column]} row(s)",
            where=f"{where}: column {spec.subject_column!r}",
            fix="every row needs its subject_id; download the file again",
        )
    null_violations = {
        c.name: empties[c.name]
        for c in spec.columns.values()
        if not c.nullable and empties[c.name] and c.name != spec.subject_column
    }
    return TableReport(
        table=spec.name,
        module=spec.module,
        file=where,
        format=fmt,
        rows=rows,
        untimed_rows=empties[spec.time_column] if spec.time_column else None,
        null_violations=null_violations,
    )


def _empty(name: str, stored: pl.DataType, dtype: str) -> pl.Expr:
    column = pl.col(name)
    if dtype == "str" or stored != pl.String:
        return column.is_null()
    # a quoted "" in a CSV reads as null for typed columns (source.scan) but as "" for text
    return column.is_null() | (column == "")


def _unparseable(name: str, stored: pl.DataType, dtype: str) -> pl.Expr | None:
    if dtype == "str" or stored == DTYPES[dtype] or (dtype == "datetime" and isinstance(stored, pl.Datetime)):
        return None
    return ~_empty(name, stored, dtype) & typed(name, stored, dtype, strict=False).is_null()


_FIXES = {
    "int": "write whole numbers only",
    "float": "write plain decimal numbers",
    "datetime": "write timestamps as YYYY-MM-DD HH:MM:SS (fractional seconds allowed)",
    "date": "write dates as YYYY-MM-DD",
}


def _raise_bad_value(batch: pl.DataFrame, where: str, spec: TableSpec, name: str, bad: pl.Expr, offset: int):
    row, value = batch.with_row_index("row").filter(bad).select("row", name).row(0)
    dtype = spec.columns[name].dtype
    kind = "unparseable timestamp" if dtype in ("datetime", "date") else f"is not a valid {dtype}"
    raise SchemaError(
        f"{kind} in data row {offset + row + 1}",
        where=f"{where}: column {name!r}",
        value=value,
        fix=_FIXES[dtype],
    )
