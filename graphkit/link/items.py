"""MIMIC-IV dictionary entities as items with keys computable from event rows (docs/interfaces.md §4b).

An item is one thing a table's rows can name: an ICD code, a lab or ICU itemid, a drug string,
a microbiology test, organism or antibiotic... Its key is built from the columns of an event row
alone (``<prefix>:<value>[:<value>]``, values stripped of surrounding blanks, nothing else
changed), so a sample's context and target items map to concepts with a plain join.

| key | rows of | kind |
|---|---|---|
| ``diagnoses_icd:<icd_version>:<icd_code>`` | diagnoses_icd (every code of d_icd_diagnoses) | diagnosis |
| ``procedures_icd:<icd_version>:<icd_code>`` | procedures_icd (every code of d_icd_procedures) | procedure |
| ``diagnosis:<icd_version>:<icd_code>`` | ED diagnosis | diagnosis |
| ``labevents:<itemid>`` | labevents (every d_labitems item) | measurement |
| ``<linksto>:<itemid>`` | chartevents, datetimeevents, outputevents (measurement), procedureevents (procedure), inputevents, ingredientevents (drug): every d_items item | |
| ``hcpcsevents:<hcpcs_cd>`` | hcpcsevents (every d_hcpcs code) | procedure |
| ``prescriptions:<drug>``, ``pharmacy:<medication>``, ``emar:<medication>``, ``medrecon:<name>``, ``pyxis:<name>`` | those tables | drug |
| ``microbiologyevents:test:<test_itemid>`` | the test ordered | test |
| ``microbiologyevents:org:<org_itemid>`` | the organism grown | organism |
| ``microbiologyevents:<ab_name>`` | the antibiotic tested | drug |
| ``omr:<result_name>`` | omr | measurement |
| ``drgcodes:<drg_type>:<drg_code>`` | drgcodes | diagnosis |

Administrative values (admission types, services, care units, order types) name no clinical
concept and are not items here.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

# kind -> semantic groups a concept found by name or text may belong to, best first
KIND_GROUPS: dict[str, tuple[str, ...]] = {
    "diagnosis": ("DISO",),
    "procedure": ("PROC",),
    "measurement": ("PROC", "PHYS", "CHEM", "DISO", "CONC"),
    "drug": ("CHEM",),
    "test": ("PROC",),
    "organism": ("LIVB",),
}

ITEM_SCHEMA = {
    "key": pl.String,
    "table": pl.String,
    "code": pl.String,
    "name": pl.String,
    "kind": pl.String,
    "rows": pl.Int64,
}
ITEM_COLUMNS = tuple(ITEM_SCHEMA)

# tables of d_items.linksto and the kind of their items
D_ITEMS_KINDS = {
    "chartevents": "measurement",
    "datetimeevents": "measurement",
    "outputevents": "measurement",
    "procedureevents": "procedure",
    "inputevents": "drug",
    "ingredientevents": "drug",
}


@dataclass(frozen=True)
class TextItems:
    """Items named by the text (or id) in event rows: ``<prefix>:<key columns>``, named by ``name``."""

    table: str
    prefix: str
    key: tuple[str, ...]
    name: str
    kind: str


TEXT_ITEMS: tuple[TextItems, ...] = (
    TextItems("prescriptions", "prescriptions", ("drug",), "drug", "drug"),
    TextItems("pharmacy", "pharmacy", ("medication",), "medication", "drug"),
    TextItems("emar", "emar", ("medication",), "medication", "drug"),
    TextItems("medrecon", "medrecon", ("name",), "name", "drug"),
    TextItems("pyxis", "pyxis", ("name",), "name", "drug"),
    TextItems("microbiologyevents", "microbiologyevents:test", ("test_itemid",), "test_name", "test"),
    TextItems("microbiologyevents", "microbiologyevents:org", ("org_itemid",), "org_name", "organism"),
    TextItems("microbiologyevents", "microbiologyevents", ("ab_name",), "ab_name", "drug"),
    TextItems("omr", "omr", ("result_name",), "result_name", "measurement"),
    TextItems("drgcodes", "drgcodes", ("drg_type", "drg_code"), "description", "diagnosis"),
    TextItems("diagnosis", "diagnosis", ("icd_version", "icd_code"), "icd_title", "diagnosis"),
)

# table -> (dictionary table, key columns, name column, kind) for dictionary-backed items
DICTIONARY_ITEMS = {
    "diagnoses_icd": ("d_icd_diagnoses", ("icd_version", "icd_code"), "long_title", "diagnosis"),
    "procedures_icd": ("d_icd_procedures", ("icd_version", "icd_code"), "long_title", "procedure"),
    "labevents": ("d_labitems", ("itemid",), "label", "measurement"),
    "hcpcsevents": ("d_hcpcs", ("code",), "long_description", "procedure"),
}
# event-table columns holding the dictionary key (same order as the dictionary's)
EVENT_KEY_COLUMNS = {
    "diagnoses_icd": ("icd_version", "icd_code"),
    "procedures_icd": ("icd_version", "icd_code"),
    "labevents": ("itemid",),
    "hcpcsevents": ("hcpcs_cd",),
}
ITEMID_TABLES = tuple(D_ITEMS_KINDS)


def key_expr(prefix: str, columns: tuple[str, ...]) -> pl.Expr:
    """The item key of a row, as bench's item rules and docs/interfaces.md §4b compute it."""
    parts = [pl.col(c).cast(pl.String).str.strip_chars() for c in columns]
    return pl.concat_str([pl.lit(prefix), *parts], separator=":")


def _valid(columns: tuple[str, ...]) -> pl.Expr:
    parts = [pl.col(c).cast(pl.String).str.strip_chars() for c in columns]
    return pl.all_horizontal([p.is_not_null() & (p.str.len_chars() > 0) for p in parts])


def _code_expr(columns: tuple[str, ...]) -> pl.Expr:
    parts = [pl.col(c).cast(pl.String).str.strip_chars() for c in columns]
    return pl.concat_str(parts, separator=":") if len(parts) > 1 else parts[0]


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=ITEM_SCHEMA)


def _counts(source, table: str, prefix: str, columns: tuple[str, ...], name: str | None) -> pl.DataFrame:
    """key, code, name (most frequent spelling), rows: the distinct items of an event table."""
    wanted = list(dict.fromkeys([*columns, *([name] if name else [])]))
    frame = source.scan(table, wanted).filter(_valid(columns))
    frame = frame.select(
        key_expr(prefix, columns).alias("key"),
        _code_expr(columns).alias("code"),
        (pl.col(name).cast(pl.String) if name else pl.lit(None, pl.String)).alias("name"),
    )
    return (
        frame.group_by("key", "code", "name")
        .len("rows")
        .sort("rows", "name", descending=[True, False], nulls_last=True)
        .group_by("key", maintain_order=True)
        .agg(pl.col("code").first(), pl.col("name").drop_nulls().first(), pl.col("rows").sum().cast(pl.Int64))
        .collect()
    )


def _finish(frame: pl.DataFrame, table: str, kind: str) -> pl.DataFrame:
    return frame.with_columns(pl.lit(table).alias("table"), pl.lit(kind).alias("kind")).select(
        pl.col(c).cast(t) for c, t in ITEM_SCHEMA.items()
    )


def _merge(dictionary: pl.DataFrame, observed: pl.DataFrame | None, counted: bool) -> pl.DataFrame:
    """Dictionary entries plus observed keys missing from it; rows from the observations (0 if
    unseen or the table is absent; null when rows were not counted)."""
    if observed is None:
        return dictionary.with_columns(pl.lit(0 if counted else None, pl.Int64).alias("rows"))
    joined = dictionary.join(observed.select("key", "rows"), on="key", how="left").with_columns(
        pl.col("rows").fill_null(0)
    )
    extra = observed.join(dictionary, on="key", how="anti")
    return pl.concat([joined, extra.select(joined.columns)], how="vertical_relaxed")


def collect_items(source, *, count_rows: bool = False) -> pl.DataFrame:
    """Every item of a MIMIC-IV source: key, table, code, name, kind, rows.

    Dictionary tables give every entity they list (so the link table does not depend on which
    patients are present); event tables add what they hold beyond that, and the text-keyed
    tables (drugs, microbiology, ...) give their distinct values. ``rows`` (how many event rows
    name the item) is counted with ``count_rows`` for the dictionary-backed tables; the
    text-keyed tables always count (their items are found by scanning anyway). Items of tables
    the source does not have are left out, except dictionary items (d_items lists chartevents
    items even where chartevents is absent).
    """
    parts: list[pl.DataFrame] = []
    for table, (dictionary, columns, name, kind) in DICTIONARY_ITEMS.items():
        if not source.has(dictionary) and not source.has(table):
            continue
        entries = _empty().select("key", "code", "name")
        if source.has(dictionary):
            entries = (
                source.scan(dictionary, [*columns, name])
                .filter(_valid(columns))
                .select(
                    key_expr(table, columns).alias("key"),
                    _code_expr(columns).alias("code"),
                    pl.col(name).cast(pl.String).alias("name"),
                )
                .unique("key", keep="first", maintain_order=True)
                .collect()
            )
        observed = None
        if source.has(table) and (count_rows or not source.has(dictionary)):
            observed = _counts(source, table, table, EVENT_KEY_COLUMNS[table], None).drop("name")
            observed = observed.with_columns(pl.lit(None, pl.String).alias("name"))
        parts.append(_finish(_merge(entries, observed, count_rows), table, kind))

    if source.has("d_items"):
        d_items = (
            source.scan("d_items", ["itemid", "label", "linksto"])
            .filter(pl.col("linksto").is_in(list(D_ITEMS_KINDS)) & pl.col("itemid").is_not_null())
            .select("itemid", pl.col("label").cast(pl.String).alias("name"), "linksto")
            .collect()
        )
        for table, kind in D_ITEMS_KINDS.items():
            entries = d_items.filter(pl.col("linksto") == table).select(
                key_expr(table, ("itemid",)).alias("key"), _code_expr(("itemid",)).alias("code"), "name"
            )
            observed = None
            if source.has(table) and count_rows:
                observed = _counts(source, table, table, ("itemid",), None).drop("name")
                observed = observed.with_columns(pl.lit(None, pl.String).alias("name"))
            if entries.height or observed is not None:
                parts.append(
                    _finish(
                        _merge(entries.unique("key", maintain_order=True), observed, count_rows), table, kind
                    )
                )

    for spec in TEXT_ITEMS:
        if not source.has(spec.table):
            continue
        observed = _counts(source, spec.table, spec.prefix, spec.key, spec.name)
        parts.append(_finish(observed.select("key", "code", "name", "rows"), spec.table, spec.kind))

    if not parts:
        return _empty()
    items = pl.concat(parts, how="vertical_relaxed")
    return items.unique("key", keep="first", maintain_order=True).sort("table", "key")
