"""Name keys for linking, vectorized: the same normalization as graphkit.umls.names, as polars expressions.

``normalized(col)`` equals ``graphkit.umls.names.normalize_name`` on every string (tested), so
millions of UMLS atoms are normalized in the polars engine instead of a Python loop.
"""

from __future__ import annotations

import polars as pl

from graphkit.umls.names import MIN_KEY

# (candidate rank, method, score): the whole name, then (drugs only) its first two words, its first word
NAME_CANDIDATES = ((0, "name", 0.9), (1, "name_words", 0.7), (2, "name_words", 0.6))


def normalized(expr: pl.Expr) -> pl.Expr:
    """Lower case, parenthesized parts dropped, runs of non-alphanumerics one space, trimmed."""
    text = expr.str.to_lowercase().str.replace_all(r"\([^)]*\)", " ")
    return text.str.replace_all(r"[^a-z0-9]+", " ").str.strip_chars(" ")


def candidates(items: pl.DataFrame, *, word_kinds: tuple[str, ...] = ("drug",)) -> pl.DataFrame:
    """key, kind, candidate, rank: the name keys an item may match a concept name by.

    Every item offers its whole normalized name (rank 0); items of ``word_kinds`` also offer
    their first two words (1) and first word (2), as ``drug_name_candidates`` does, so
    "Sodium Chloride 0.9%  Flush" can match "sodium chloride". Keys shorter than 3 characters
    and repeats of a better-ranked key are dropped.
    """
    base = items.filter(pl.col("name").is_not_null()).select(
        "key", "kind", normalized(pl.col("name")).alias("whole")
    )
    words = pl.col("whole").str.split(" ")
    ranked = pl.concat(
        [
            base.select("key", "kind", pl.col("whole").alias("candidate"), pl.lit(0).alias("rank")),
            base.filter(pl.col("kind").is_in(list(word_kinds))).select(
                "key", "kind", words.list.head(2).list.join(" ").alias("candidate"), pl.lit(1).alias("rank")
            ),
            base.filter(pl.col("kind").is_in(list(word_kinds))).select(
                "key", "kind", words.list.first().alias("candidate"), pl.lit(2).alias("rank")
            ),
        ]
    )
    return (
        ranked.filter(pl.col("candidate").str.len_chars() >= MIN_KEY)
        .sort("key", "rank")
        .unique(["key", "candidate"], keep="first", maintain_order=True)
        .with_columns(pl.col("rank").cast(pl.Int32))
    )
