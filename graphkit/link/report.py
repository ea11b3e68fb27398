"""`ehr-r1 graph link-report`: per MIMIC table, the share of rows and of distinct items linked, by method."""

from __future__ import annotations

import polars as pl

from graphkit.link.linker import METHODS


def link_report(
    items: pl.DataFrame, links: pl.DataFrame, *, present: set[str] | None = None, top: int = 10
) -> dict:
    """Coverage of ``items`` (with ``rows`` counted) by ``links``.

    Returns ``{"tables": [...], "unlinked": {table: [{key, name, rows}, ...]}}``; a table row has
    table, items, items_linked, item_share, rows, rows_linked, row_share and per method
    ``items_<method>`` / ``rows_<method>``. Only tables in ``present`` (the source's event
    tables) are reported; items counted are those seen in the rows (rows > 0) when the table
    has rows, else every dictionary item of it.
    """
    method_of = (
        links.with_columns(
            pl.col("method").replace_strict({m: i for i, m in enumerate(METHODS)}, default=99).alias("order")
        )
        .sort("key", "order")
        .unique("key", keep="first")
        .select("key", "method")
    )
    frame = items.join(method_of, on="key", how="left").with_columns(pl.col("rows").fill_null(0))
    if present is not None:
        frame = frame.filter(pl.col("table").is_in(sorted(present)))
    seen = frame.group_by("table").agg((pl.col("rows") > 0).any().alias("has_rows"))
    frame = frame.join(seen, on="table").filter(~pl.col("has_rows") | (pl.col("rows") > 0))
    tables = []
    for (table,), part in sorted(frame.partition_by("table", as_dict=True).items()):
        linked = part.filter(pl.col("method").is_not_null())
        rows, rows_linked = int(part["rows"].sum()), int(linked["rows"].sum())
        row = {
            "table": table,
            "items": part.height,
            "items_linked": linked.height,
            "item_share": round(linked.height / part.height, 4) if part.height else 0.0,
            "rows": rows,
            "rows_linked": rows_linked,
            "row_share": round(rows_linked / rows, 4) if rows else None,
        }
        for (method,), group in sorted(linked.partition_by("method", as_dict=True).items()):
            row[f"items_{method}"] = group.height
            row[f"rows_{method}"] = int(group["rows"].sum())
        tables.append(row)
    unlinked = {}
    for (table,), part in sorted(
        frame.filter(pl.col("method").is_null()).partition_by("table", as_dict=True).items()
    ):
        worst = part.sort(["rows", "key"], descending=[True, False]).head(top)
        unlinked[table] = worst.select("key", "name", "rows").to_dicts()
    return {"tables": tables, "unlinked": unlinked}


def methods_of(report: dict) -> list[str]:
    """The methods that linked anything in a report, in cascade order."""
    used = {
        key[len("items_") :]
        for row in report["tables"]
        for key in row
        if key.startswith("items_") and key != "items_linked"
    }
    return [m for m in METHODS if m in used]
