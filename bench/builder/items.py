"""Item keys: which concept-bearing item each timeline row holds, as ``{table, key, name}``.

Keys follow docs/interfaces.md §4b where the knowledge-graph linker defines them
(``labevents:<itemid>``, ``diagnoses_icd:<version>:<code>``, ``prescriptions:<drug>``...) and the
same pattern (``<table>:<value>``) for the other tables; the whole list is in
docs/interfaces.md §5. A row yields no item when a key column is empty. The rules are data: ``ITEM_RULES``.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

ITEM_SCHEMA = pl.Struct({"table": pl.String, "key": pl.String, "name": pl.String})


@dataclass(frozen=True)
class ItemRule:
    """Rows of ``table`` give the item ``<prefix>:<key columns joined by ':'>`` named ``name``."""

    table: str
    key: tuple[str, ...]
    name: str
    prefix: str | None = None

    @property
    def key_prefix(self) -> str:
        return self.prefix or self.table


def _rules(*rules: ItemRule) -> dict[str, tuple[ItemRule, ...]]:
    by_table: dict[str, tuple[ItemRule, ...]] = {}
    for rule in rules:
        by_table[rule.table] = by_table.get(rule.table, ()) + (rule,)
    return by_table


_ITEMID = ("itemid",)
_ICD = ("icd_version", "icd_code")

ITEM_RULES: dict[str, tuple[ItemRule, ...]] = _rules(
    ItemRule("admissions", ("admission_type",), "admission_type"),
    ItemRule("transfers", ("transfer_item",), "transfer_item"),
    ItemRule("services", ("curr_service",), "curr_service"),
    ItemRule("omr", ("result_name",), "result_name"),
    ItemRule("poe", ("order_type",), "order_type"),
    ItemRule("prescriptions", ("drug",), "drug"),
    ItemRule("pharmacy", ("medication",), "medication"),
    ItemRule("emar", ("medication",), "medication"),
    ItemRule("labevents", _ITEMID, "item_name"),
    # the test ordered, and (section 4b) the antibiotic tested, linked as a drug name
    ItemRule("microbiologyevents", ("test_itemid",), "test_name", prefix="microbiologyevents:test"),
    ItemRule("microbiologyevents", ("ab_name",), "ab_name"),
    ItemRule("medrecon", ("name",), "name"),
    ItemRule("pyxis", ("name",), "name"),
    ItemRule("procedures_icd", _ICD, "icd_name"),
    ItemRule("hcpcsevents", ("hcpcs_cd",), "hcpcs_name"),
    ItemRule("icustays", ("first_careunit",), "first_careunit"),
    ItemRule("chartevents", _ITEMID, "item_name"),
    ItemRule("datetimeevents", _ITEMID, "item_name"),
    ItemRule("procedureevents", _ITEMID, "item_name"),
    ItemRule("inputevents", _ITEMID, "item_name"),
    ItemRule("ingredientevents", _ITEMID, "item_name"),
    ItemRule("outputevents", _ITEMID, "item_name"),
    ItemRule("radiology", ("exam_names",), "exam_names"),
    ItemRule("diagnosis", _ICD, "icd_title"),
    ItemRule("diagnoses_icd", _ICD, "icd_name"),
    ItemRule("drgcodes", ("drg_type", "drg_code"), "description"),
)
"""Tables without a rule (edstays, triage, vitalsign, discharge) carry no item."""


def row_items(table: str, rows: pl.DataFrame) -> pl.DataFrame:
    """event_id, pos, item (ITEM_SCHEMA) for the rows of one timeline table; empty keys dropped.

    ``rows`` is ``Timeline.rows[table]`` (or a subset of it). A list column (radiology exam
    names) gives one item per element.
    """
    parts = []
    for rule in ITEM_RULES.get(table, ()):
        frame = rows.select("event_id", "pos", *{*rule.key, rule.name})
        for column in {*rule.key, rule.name}:
            if isinstance(frame.schema[column], pl.List):
                frame = frame.explode(column)
        key_parts = [pl.col(c).cast(pl.String).str.strip_chars() for c in rule.key]
        frame = frame.filter(
            pl.all_horizontal([p.is_not_null() & (p.str.len_chars() > 0) for p in key_parts])
        )
        parts.append(
            frame.select(
                "event_id",
                "pos",
                pl.struct(
                    pl.lit(table).alias("table"),
                    pl.concat_str([pl.lit(rule.key_prefix), *key_parts], separator=":").alias("key"),
                    pl.coalesce(pl.col(rule.name).cast(pl.String), key_parts[-1]).alias("name"),
                ).alias("item"),
            )
        )
    if not parts:
        return pl.DataFrame(schema={"event_id": pl.Int64, "pos": pl.Int64, "item": ITEM_SCHEMA})
    return pl.concat(parts).with_columns(pl.col("pos").cast(pl.Int64), pl.col("item").cast(ITEM_SCHEMA))


def event_items(timeline, event_ids: pl.Series) -> pl.DataFrame:
    """event_id, items (list of ITEM_SCHEMA, distinct, in row order) for the given events of a timeline."""
    wanted = pl.DataFrame({"event_id": event_ids.cast(pl.Int64)}).unique()
    events = timeline.events.join(wanted, on="event_id", how="semi").select("event_id", "table")
    parts = []
    for name in sorted(events["table"].cast(pl.String).unique().to_list()):
        rows = timeline.rows.get(name)
        if rows is None or name not in ITEM_RULES:
            continue
        ids = events.filter(pl.col("table") == name).select("event_id")
        parts.append(row_items(name, rows.join(ids, on="event_id", how="semi")))
    if not parts:
        return pl.DataFrame(schema={"event_id": pl.Int64, "items": pl.List(ITEM_SCHEMA)})
    return (
        pl.concat(parts)
        .sort("event_id", "pos", maintain_order=True)
        .group_by("event_id", maintain_order=True)
        .agg(pl.col("item").unique(maintain_order=True).alias("items"))
    )
