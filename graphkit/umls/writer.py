"""Frames in RRF layout for the releases ehr-r1 writes itself (the demo graph, the synthetic one)."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from graphkit.umls.relations import BUILTIN_RELA_INVERSES, REL_TABLE
from graphkit.umls.rrf import COLUMNS


def relation_rows(facts: pl.DataFrame, both_directions: bool = True) -> pl.DataFrame:
    """MRREL (CUI1, REL, CUI2, RELA, SAB) rows for facts "src rela dst".

    ``facts`` has src, dst, rel, rela, inv_rel, inv_rela, SAB. A row states "CUI2 RELA CUI1", so
    the forward row puts the source second; the inverse row (UMLS publishes both) the target.
    """
    parts = [
        facts.select(
            pl.col("dst").alias("CUI1"),
            pl.col("rel").alias("REL"),
            pl.col("src").alias("CUI2"),
            pl.col("rela").alias("RELA"),
            "SAB",
        )
    ]
    if both_directions:
        parts.append(
            facts.select(
                pl.col("src").alias("CUI1"),
                pl.col("inv_rel").alias("REL"),
                pl.col("dst").alias("CUI2"),
                pl.col("inv_rela").alias("RELA"),
                "SAB",
            )
        )
    return pl.concat(parts)


def complete_mrrel(rows: pl.DataFrame, first_rui: int = 1) -> pl.DataFrame:
    """Fill the remaining MRREL columns; RUIs numbered in row order from ``first_rui``."""
    return rows.with_columns(
        pl.lit("").alias("AUI1"),
        pl.lit("CUI").alias("STYPE1"),
        pl.lit("").alias("AUI2"),
        pl.lit("CUI").alias("STYPE2"),
        ("R" + pl.int_range(first_rui, first_rui + pl.len()).cast(pl.String).str.zfill(9)).alias("RUI"),
        pl.lit("").alias("SRUI"),
        pl.col("SAB").alias("SL"),
        pl.lit("").alias("RG"),
        pl.lit("").alias("DIR"),
        pl.lit("N").alias("SUPPRESS"),
        pl.lit("").alias("CVF"),
    )


def mrsab_frame(sources: Iterable[tuple[str, str, str, str, str]]) -> pl.DataFrame:
    """MRSAB rows from (RSAB, VSAB, source name, version, citation), current and in the release."""
    rows = []
    for rsab, vsab, name, version, citation in sources:
        row = dict.fromkeys(COLUMNS["MRSAB"], "")
        row.update(
            RSAB=rsab,
            VSAB=vsab,
            SON=name,
            SF=rsab,
            SVER=version,
            SRL="0",
            LAT="ENG",
            CENC="UTF-8",
            CURVER="Y",
            SABIN="Y",
            SSN=name,
            SCIT=citation,
        )
        rows.append(row)
    return pl.DataFrame(rows, schema=dict.fromkeys(COLUMNS["MRSAB"], pl.String))


def mrdoc_frame(relas: Iterable[str]) -> pl.DataFrame:
    """MRDOC rows naming the inverse of every REL and of each RELA in ``relas`` (and their inverses)."""
    rows = [("REL", rel, "rel_inverse", inverse) for rel, (inverse, _) in sorted(REL_TABLE.items())]
    names = set()
    for rela in relas:
        names.add(rela)
        names.add(BUILTIN_RELA_INVERSES[rela])
    rows += [("RELA", r, "rela_inverse", BUILTIN_RELA_INVERSES[r]) for r in sorted(names)]
    return pl.DataFrame(rows, schema=list(COLUMNS["MRDOC"]), orient="row")
