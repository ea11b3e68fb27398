"""MIMIC items -> concepts: exact SAB+CODE first, then normalized names, then text (QuickUMLS).

Each item is linked by the first tier that finds a concept for it, and only by that tier:

1. codes (score 1.0 unless said): ``icd_code`` ICD-9-CM / ICD-10-CM / ICD-10-PCS codes in UMLS
   (dotted) form; ``code_map`` itemid -> LOINC / RxNorm / SNOMED CT through the vendored
   mimic-code maps (0.9 for their "close", 0.8 for "related" rows); ``hcpcs_code`` HCPCS / CPT
   codes when the release has those SABs; ``ndc`` drug strings -> the NDCs their rows carry ->
   RxNorm concepts through MRSAT (licensed UMLS only), the most frequent three;
2. names: ``name`` (0.9) the whole normalized name equals the normalized name of a concept's
   atom; ``name_words`` (0.7 first two words, 0.6 first word; drugs only);
3. text: ``quickumls`` (score = its similarity) on the item's name, when a matcher is given,
   for items the data uses (``rows`` > 0, or rows not counted): dictionary entries never used
   (most of d_hcpcs, say) are not worth milliseconds each.

Names and text only accept concepts of the item kind's semantic groups (items.KIND_GROUPS, the
first group present wins) and keep at most ``max_concepts`` concepts per item, preferred names
first. A link whose concept is not among the release's concepts (an extra link file naming a
CUI the release, or its --sab filter, does not have) is dropped and reported, never written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from graphkit.errors import InputError
from graphkit.link.items import KIND_GROUPS
from graphkit.link.names import NAME_CANDIDATES, candidates, normalized
from graphkit.umls import icd

log = logging.getLogger(__name__)

# bump when the same inputs would link differently (part of the build's link-step key)
LINK_VERSION = 3
LINK_SCHEMA = {
    "key": pl.String,
    "table": pl.String,
    "code": pl.String,
    "name": pl.String,
    "cui": pl.String,
    "method": pl.String,
    "score": pl.Float64,
}
LINK_COLUMNS = tuple(LINK_SCHEMA)
CODE_METHODS = ("icd_code", "code_map", "hcpcs_code", "ndc")
NAME_METHODS = ("name", "name_words")
TEXT_METHODS = ("quickumls",)
EXTRA_METHOD = "extra"
METHODS = (*CODE_METHODS, *NAME_METHODS, *TEXT_METHODS, EXTRA_METHOD)
MAP_RELATION_SCORES = {"exact": 1.0, "close": 0.9, "related": 0.8}
HCPCS_SABS = ("HCPCS", "CPT")
ICD_TABLES = {"diagnoses_icd": False, "procedures_icd": True, "diagnosis": False}


@dataclass(frozen=True)
class LinkOptions:
    tiers: tuple[str, ...] = ("code", "name", "text")
    max_concepts: int = 3
    text_threshold: float = 0.85  # least QuickUMLS similarity kept

    def to_dict(self) -> dict:
        return {
            "tiers": list(self.tiers),
            "max_concepts": self.max_concepts,
            "text_threshold": self.text_threshold,
        }


@dataclass
class Vocabulary:
    """What linking reads from a release: concepts (cui, semantic_group), codes, atom names."""

    concepts: pl.LazyFrame  # cui, semantic_types, semantic_group
    codes: pl.LazyFrame  # sab, code, cui
    names: pl.LazyFrame  # cui, name, ispref
    ndc: pl.LazyFrame | None = None  # ndc, cui (RxNorm NDC attributes of MRSAT)

    @classmethod
    def from_release(cls, release) -> Vocabulary:
        ndc = None
        if release.has("MRSAT"):
            ndc = (
                release.attributes(["NDC"])
                .filter(pl.col("sab") == "RXNORM")
                .select(pl.col("atv").alias("ndc"), "cui")
                .unique()
            )
        return cls(release.concepts(), release.codes(), release.names(), ndc)


@dataclass
class LinkResult:
    items: pl.DataFrame  # items.ITEM_SCHEMA
    links: pl.DataFrame  # LINK_SCHEMA, one row per (key, cui)
    dropped: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=LINK_SCHEMA))
    text_matching: str = "off"  # "off" | "quickumls" | why it was skipped

    def summary(self) -> dict:
        by_method = dict(self.links.group_by("method").agg(pl.col("key").n_unique()).sort("method").rows())
        return {
            "items": self.items.height,
            "items_linked": self.links["key"].n_unique(),
            "links": self.links.height,
            "items_by_method": by_method,
            "dropped_links": self.dropped.height,
            "dropped_examples": self.dropped.head(5).select("key", "cui", "method").to_dicts(),
            "text_matching": self.text_matching,
        }


def _empty_links() -> pl.DataFrame:
    return pl.DataFrame(schema=LINK_SCHEMA)


def _as_links(frame: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """key, cui, method, score + the item's table, code, name, in LINK_SCHEMA order."""
    joined = frame.join(items.select("key", "table", "code", "name"), on="key", how="inner")
    return joined.select(pl.col(c).cast(t) for c, t in LINK_SCHEMA.items())


def _best(
    frame: pl.DataFrame, order: list[str], limit: int, descending: list[bool] | None = None
) -> pl.DataFrame:
    """At most ``limit`` rows per key, best first by ``order``."""
    return (
        frame.sort(["key", *order], descending=[False, *(descending or [False] * len(order))])
        .group_by("key", maintain_order=True)
        .head(limit)
    )


# ---- tier 1: codes
def icd_links(items: pl.DataFrame, codes: pl.LazyFrame) -> pl.DataFrame:
    """ICD items by SAB + the code in UMLS (dotted) form."""
    icd_items = items.filter(pl.col("table").is_in(list(ICD_TABLES)))
    if not icd_items.height:
        return pl.DataFrame(
            schema={"key": pl.String, "cui": pl.String, "method": pl.String, "score": pl.Float64}
        )
    sabs, dotted = [], []
    for table, code in icd_items.select("table", "code").rows():
        version, _, raw = code.partition(":")
        procedure = ICD_TABLES[table]
        sab = icd.SAB_OF.get(("procedures_icd" if procedure else "diagnoses_icd", int(version)))
        sabs.append(sab)
        dotted.append(icd.umls_code(raw, int(version), procedure) if sab else None)
    wanted = icd_items.select("key").with_columns(
        pl.Series("sab", sabs, pl.String), pl.Series("umls", dotted, pl.String)
    )
    found = codes.select("sab", pl.col("code").alias("umls"), "cui").join(
        wanted.lazy(), on=["sab", "umls"], how="inner"
    )
    return found.select(
        "key", "cui", pl.lit("icd_code").alias("method"), pl.lit(1.0).alias("score")
    ).collect()


def code_map_links(items: pl.DataFrame, codes: pl.LazyFrame, item_maps: pl.DataFrame) -> pl.DataFrame:
    """itemid items through the standard code maps (table, itemid, sab, code, relation)."""
    keyed = item_maps.select(
        pl.concat_str([pl.col("table"), pl.col("itemid").cast(pl.String)], separator=":").alias("key"),
        "sab",
        "code",
        pl.col("relation")
        .replace_strict(MAP_RELATION_SCORES, default=0.8, return_dtype=pl.Float64)
        .alias("score"),
    ).join(items.select("key"), on="key", how="semi")
    found = codes.select("sab", "code", "cui").join(keyed.lazy(), on=["sab", "code"], how="inner")
    return (
        found.group_by("key", "cui")
        .agg(pl.col("score").max())
        .select("key", "cui", pl.lit("code_map").alias("method"), "score")
        .collect()
    )


def hcpcs_links(items: pl.DataFrame, codes: pl.LazyFrame) -> pl.DataFrame:
    wanted = items.filter(pl.col("table") == "hcpcsevents").select("key", "code")
    found = codes.filter(pl.col("sab").is_in(list(HCPCS_SABS))).join(wanted.lazy(), on="code", how="inner")
    return (
        found.select("key", "cui", pl.lit("hcpcs_code").alias("method"), pl.lit(1.0).alias("score"))
        .unique()
        .collect()
    )


def ndc_links(item_ndcs: pl.DataFrame, ndc: pl.LazyFrame, limit: int) -> pl.DataFrame:
    """Drug items through the NDCs of their rows (key, ndc, rows) to RxNorm concepts, most rows first."""
    found = (
        ndc.join(item_ndcs.lazy(), on="ndc", how="inner")
        .group_by("key", "cui")
        .agg(pl.col("rows").sum())
        .collect()
    )
    found = _best(found, ["rows", "cui"], limit, [True, False])
    return found.select("key", "cui", pl.lit("ndc").alias("method"), pl.lit(1.0).alias("score"))


# ---- tier 2: names
def name_links(items: pl.DataFrame, vocab: Vocabulary, limit: int) -> pl.DataFrame:
    """Normalized names equal to a concept atom's normalized name, in the kind's semantic groups."""
    wanted = candidates(items.filter(pl.col("kind").is_in(list(KIND_GROUPS))))
    if not wanted.height:
        return pl.DataFrame(
            schema={"key": pl.String, "cui": pl.String, "method": pl.String, "score": pl.Float64}
        )
    keys = wanted.select(pl.col("candidate").unique())
    atoms = (
        vocab.names.select(
            "cui", normalized(pl.col("name")).alias("candidate"), pl.col("ispref").cast(pl.Boolean)
        )
        .join(keys.lazy(), on="candidate", how="semi")
        .group_by("cui", "candidate")
        .agg(pl.col("ispref").any())
        .join(vocab.concepts.select("cui", "semantic_group"), on="cui", how="inner")
        .collect()
    )
    group_rank = pl.DataFrame(
        [(kind, group, i) for kind, groups in KIND_GROUPS.items() for i, group in enumerate(groups)],
        schema={"kind": pl.String, "semantic_group": pl.String, "group_rank": pl.Int32},
        orient="row",
    )
    matched = wanted.join(atoms, on="candidate", how="inner").join(
        group_rank, on=["kind", "semantic_group"], how="inner"
    )
    # the best candidate rank, then the best group, decide; ties keep up to `limit` concepts
    matched = matched.filter(pl.col("rank") == pl.col("rank").min().over("key")).filter(
        pl.col("group_rank") == pl.col("group_rank").min().over("key")
    )
    matched = matched.group_by("key", "cui", "rank").agg(pl.col("ispref").any())
    matched = _best(matched, ["ispref", "cui"], limit, [True, False])
    methods = pl.DataFrame(
        [(rank, method, score) for rank, method, score in NAME_CANDIDATES],
        schema={"rank": pl.Int32, "method": pl.String, "score": pl.Float64},
        orient="row",
    )
    return matched.join(methods, on="rank", how="left").select("key", "cui", "method", "score")


# ---- the cascade
def link_items(
    items: pl.DataFrame,
    vocab: Vocabulary,
    *,
    options: LinkOptions | None = None,
    item_maps: pl.DataFrame | None = None,
    item_ndcs: pl.DataFrame | None = None,
    text_matcher=None,
    extra_links: pl.DataFrame | None = None,
) -> LinkResult:
    """Link ``items`` (items.collect_items) to the concepts of ``vocab``; see the module doc.

    ``extra_links``: hand-made links (key, cui[, score]) that win over every tier (method
    ``extra``); their keys must be items. ``text_matcher``: a text.TextMatcher (QuickUMLS).
    """
    options = options or LinkOptions()
    _check_tiers(options.tiers)
    remaining = items
    found: list[pl.DataFrame] = []

    def take(frame: pl.DataFrame) -> None:
        nonlocal remaining
        frame = frame.join(remaining.select("key"), on="key", how="semi")
        if frame.height:
            found.append(_as_links(frame, items))
            remaining = remaining.join(frame.select("key").unique(), on="key", how="anti")

    if extra_links is not None:
        take(_extra(extra_links, items))
    if "code" in options.tiers:
        from graphkit.umls.coverage import item_code_map

        code_frames = [
            icd_links(remaining, vocab.codes),
            code_map_links(remaining, vocab.codes, item_code_map() if item_maps is None else item_maps),
            hcpcs_links(remaining, vocab.codes),
        ]
        if vocab.ndc is not None and item_ndcs is not None and item_ndcs.height:
            code_frames.append(ndc_links(item_ndcs, vocab.ndc, options.max_concepts))
        for frame in code_frames:
            take(frame)
    if "name" in options.tiers:
        take(name_links(remaining, vocab, options.max_concepts))
    text_state = "off"
    if "text" in options.tiers:
        if text_matcher is None:
            text_state = "skipped: no text matcher"
        else:
            # text matching is slow (ms per name): only items the data uses, when rows were counted
            in_use = remaining.filter(pl.col("rows").is_null() | (pl.col("rows") > 0))
            take(text_matcher.link(in_use, threshold=options.text_threshold, limit=options.max_concepts))
            text_state = text_matcher.describe()
    links = pl.concat(found) if found else _empty_links()
    links, dropped = _drop_missing(links, vocab)
    links = links.sort("table", "key", "score", "cui", descending=[False, False, True, False])
    return LinkResult(items=items, links=links, dropped=dropped, text_matching=text_state)


def _check_tiers(tiers: Iterable[str]) -> None:
    for tier in tiers:
        if tier not in ("code", "name", "text"):
            raise InputError(
                "unknown linking tier", where="link tiers", value=tier, fix="use code, name and/or text"
            )


def _extra(extra: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    missing = {"key", "cui"} - set(extra.columns)
    if missing:
        raise InputError(
            "extra links need the columns key and cui",
            where="extra links",
            value=sorted(missing),
            fix="write rows key, cui[, score]",
        )
    unknown = extra.join(items.select("key"), on="key", how="anti")["key"].unique().sort()
    if len(unknown):
        raise InputError(
            f"{len(unknown)} extra links name items that are not MIMIC items of this source",
            where="extra links",
            value=unknown.head(5).to_list(),
            fix="use item keys as docs/interfaces.md §4b builds them (e.g. labevents:50912)",
        )
    score = pl.col("score").cast(pl.Float64) if "score" in extra.columns else pl.lit(1.0)
    return extra.select(
        pl.col("key").cast(pl.String),
        pl.col("cui").cast(pl.String),
        pl.lit(EXTRA_METHOD).alias("method"),
        score.alias("score"),
    ).unique(["key", "cui"], keep="first", maintain_order=True)


def _drop_missing(links: pl.DataFrame, vocab: Vocabulary) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Links whose concept the release does not have are dropped (and returned, for the report)."""
    cuis = links.select(pl.col("cui").unique())
    present = vocab.concepts.select("cui").join(cuis.lazy(), on="cui", how="semi").collect()
    dropped = links.join(present, on="cui", how="anti")
    if dropped.height:
        log.warning(
            "%d links name concepts that are not in the release and were dropped (e.g. %s -> %s)",
            dropped.height,
            dropped["key"][0],
            dropped["cui"][0],
        )
    return links.join(present, on="cui", how="semi"), dropped
