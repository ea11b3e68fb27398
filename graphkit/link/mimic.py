"""Link one MIMIC-IV source to one release: items, codes, names, text, in one call."""

from __future__ import annotations

import logging

import polars as pl

from graphkit.link.items import collect_items
from graphkit.link.linker import LinkOptions, LinkResult, Vocabulary, link_items

log = logging.getLogger(__name__)

# drug tables whose rows carry an NDC (the exact route when the release has RxNorm's MRSAT)
NDC_TABLES = {"prescriptions": "drug", "medrecon": "name"}


def item_ndcs(source) -> pl.DataFrame:
    """key, ndc, rows: the NDCs the rows of each drug item carry (11 digits, not all zeros)."""
    from graphkit.link.items import key_expr

    parts = []
    for table, column in NDC_TABLES.items():
        if not source.has(table):
            continue
        parts.append(
            source.scan(table, [column, "ndc"])
            .filter(
                pl.col(column).str.strip_chars().str.len_chars().gt(0)
                & pl.col("ndc").str.contains(r"^\d{11}$")
                & (pl.col("ndc") != "00000000000")
            )
            .group_by(key_expr(table, (column,)).alias("key"), "ndc")
            .len("rows")
            .with_columns(pl.col("rows").cast(pl.Int64))
            .collect()
        )
    if not parts:
        return pl.DataFrame(schema={"key": pl.String, "ndc": pl.String, "rows": pl.Int64})
    return pl.concat(parts)


def link_mimic(
    release,
    source,
    *,
    options: LinkOptions | None = None,
    vocab: Vocabulary | None = None,
    text_matcher=None,
    extra_links: pl.DataFrame | None = None,
    count_rows: bool = False,
) -> LinkResult:
    """Every item of ``source`` (graphkit.ehr.source) linked to ``release`` (graphkit.umls).

    ``vocab`` replaces the release's tables (e.g. the build's materialized parquet);
    ``text_matcher`` (graphkit.link.text.quickumls_matcher) adds the text tier.
    """
    vocab = vocab or Vocabulary.from_release(release)
    items = collect_items(source, count_rows=count_rows)
    ndcs = item_ndcs(source) if vocab.ndc is not None else None
    result = link_items(
        items, vocab, options=options, item_ndcs=ndcs, text_matcher=text_matcher, extra_links=extra_links
    )
    log.info("linked %d of %d MIMIC items", result.links["key"].n_unique(), items.height)
    return result
