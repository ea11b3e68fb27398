"""How much of a MIMIC-IV source a release covers: per table, distinct items and rows with a concept.

A measure for the open demo graph (and any release), not the linker: it uses only exact
SAB+CODE through MRCONSO and normalized drug names, the first two steps graphkit.link will take.

Item keys (docs/interfaces.md §4) and how each is looked up:
- ``diagnoses_icd:<version>:<code>`` / ``procedures_icd:<version>:<code>``: the code in UMLS form
  (graphkit.umls.icd.umls_code) under ICD9CM / ICD10CM / ICD10PCS;
- ``labevents:<itemid>``, ``outputevents:<itemid>``, ``inputevents:<itemid>``,
  ``procedureevents:<itemid>``, ``datetimeevents:<itemid>``, ``chartevents:<itemid>``: the
  itemid's standard code (LOINC, RxNorm, SNOMED CT) from the vendored mimic-code maps, then
  MRCONSO; ``inputevents``/``ingredientevents`` items without a code try their d_items label as a
  drug name;
- ``prescriptions:<drug>``, ``pharmacy:<medication>``, ``emar:<medication>``,
  ``microbiologyevents:<ab_name>``: normalized drug name candidates
  (graphkit.umls.names.drug_name_candidates) against the names of CHEM concepts.

For ICD diagnoses it also reports how many reach Disease Ontology knowledge: the code's concept
is a DO disease itself, or a GEM neighbour is, or an ICD ancestor (or its GEM neighbour) is.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import polars as pl

from graphkit.umls import icd
from graphkit.umls.names import drug_name_candidates
from graphkit.umls.reader import Release

ITEM_MAPS = Path(__file__).resolve().parents[1] / "data" / "kg" / "mimic-maps" / "item_codes.tsv.gz"
ITEM_TABLES = ("labevents", "outputevents", "inputevents", "procedureevents", "datetimeevents", "chartevents")
NAME_TABLES = {
    "prescriptions": "drug",
    "pharmacy": "medication",
    "emar": "medication",
    "microbiologyevents": "ab_name",
}


def item_code_map(path: Path = ITEM_MAPS) -> pl.DataFrame:
    """table, itemid (Int64), sab, code, name, label, relation — the vendored mimic-code maps."""
    frame = pl.read_csv(io.BytesIO(gzip.decompress(path.read_bytes())), separator="\t", infer_schema=False)
    return frame.with_columns(pl.col("itemid").cast(pl.Int64))


def measure_coverage(release: Release, mimic, item_maps: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per MIMIC table present: items, items_linked, rows, rows_linked, shares, method.

    ``mimic`` is a graphkit.ehr.source MimicSource (open_source(path)).
    """
    item_maps = item_code_map() if item_maps is None else item_maps
    codes = release.codes().select("sab", "code", "cui").unique().collect()
    concepts = release.concepts().select("cui", "name", "semantic_group").collect()
    drug_names = set(
        release.names()
        .join(concepts.lazy().filter(pl.col("semantic_group") == "CHEM").select("cui"), on="cui", how="semi")
        .select(pl.col("name").str.to_lowercase())
        .collect()["name"]
    )
    from graphkit.umls.names import normalize_name

    drug_keys = {normalize_name(n) for n in drug_names}
    results = []

    def add(table: str, items: pl.DataFrame, method: str, extra: dict | None = None) -> None:
        # items: key, rows, linked (bool)
        row = {
            "table": table,
            "method": method,
            "items": items.height,
            "items_linked": int(items["linked"].sum()),
            "rows": int(items["rows"].sum()),
            "rows_linked": int(items.filter("linked")["rows"].sum()),
        }
        row["item_share"] = round(row["items_linked"] / row["items"], 4) if row["items"] else 0.0
        row["row_share"] = round(row["rows_linked"] / row["rows"], 4) if row["rows"] else 0.0
        row.update(extra or {})
        results.append(row)

    code_keys = codes.select(pl.concat_str("sab", pl.lit("|"), "code").alias("k"), "cui")
    for table, procedure in (("diagnoses_icd", False), ("procedures_icd", True)):
        if not mimic.has(table):
            continue
        counts = (
            mimic.scan(table, ["icd_code", "icd_version"])
            .group_by("icd_code", "icd_version")
            .len("rows")
            .collect()
        )
        keys = [
            f"{icd.SAB_OF[(table, int(v))]}|{icd.umls_code(c, int(v), procedure)}"
            for c, v in counts.select("icd_code", "icd_version").rows()
        ]
        items = counts.with_columns(pl.Series("k", keys)).join(code_keys, on="k", how="left")
        items = items.group_by("icd_code", "icd_version", "rows").agg(pl.col("cui").drop_nulls().first())
        items = items.with_columns(pl.col("cui").is_not_null().alias("linked"))
        extra = _disease_knowledge(release, items) if not procedure else None
        add(table, items, "exact SAB+CODE (ICD, UMLS dotted form)", extra)

    for table in ITEM_TABLES:
        if not mimic.has(table):
            continue
        counts = mimic.scan(table, ["itemid"]).group_by("itemid").len("rows").collect()
        mapped = (
            item_maps.filter(pl.col("table") == table)
            .select("itemid", pl.concat_str("sab", pl.lit("|"), "code").alias("k"))
            .join(code_keys, on="k", how="inner")
            .group_by("itemid")
            .agg(pl.col("cui").first())
        )
        items = counts.join(mapped, on="itemid", how="left").with_columns(
            pl.col("cui").is_not_null().alias("linked")
        )
        method = "itemid -> standard code (mimic-code) -> SAB+CODE"
        if table == "inputevents":
            items = _label_fallback(mimic, items, drug_keys)
            method += "; else d_items label as drug name"
        add(table, items, method)

    if mimic.has("ingredientevents"):
        counts = mimic.scan("ingredientevents", ["itemid"]).group_by("itemid").len("rows").collect()
        items = _label_fallback(mimic, counts.with_columns(pl.lit(False).alias("linked")), drug_keys)
        add("ingredientevents", items, "d_items label as drug name")

    for table, column in NAME_TABLES.items():
        if not mimic.has(table):
            continue
        counts = (
            mimic.scan(table, [column])
            .filter(pl.col(column).is_not_null())
            .group_by(column)
            .len("rows")
            .collect()
        )
        linked = [any(k in drug_keys for k in drug_name_candidates(text)) for text in counts[column]]
        add(table, counts.with_columns(pl.Series("linked", linked, dtype=pl.Boolean)), "normalized drug name")

    if mimic.has("hcpcsevents"):
        counts = mimic.scan("hcpcsevents", ["hcpcs_cd"]).group_by("hcpcs_cd").len("rows").collect()
        add("hcpcsevents", counts.with_columns(pl.lit(False).alias("linked")), "no open HCPCS/CPT source")
    return pl.DataFrame(results)


def _label_fallback(mimic, items: pl.DataFrame, drug_keys: set[str]) -> pl.DataFrame:
    if not mimic.has("d_items"):
        return items
    labels = dict(mimic.scan("d_items", ["itemid", "label"]).collect().rows())
    by_name = [
        linked or any(k in drug_keys for k in drug_name_candidates(labels.get(itemid) or ""))
        for itemid, linked in items.select("itemid", "linked").rows()
    ]
    return items.with_columns(pl.Series("linked", by_name, dtype=pl.Boolean))


def _disease_knowledge(release: Release, items: pl.DataFrame) -> dict:
    """Share of diagnosis rows whose concept reaches a Disease Ontology disease (self, GEM, ancestor)."""
    do_cuis = release.codes().filter(pl.col("sab") == "DOID").select("cui").unique().collect()
    rel = (
        release.relations()
        .filter(pl.col("type").is_in(["CHILD_OF", "MAPPED_TO"]))
        .select("src", "type", "dst")
    )
    rel = rel.collect()
    gem = rel.filter(pl.col("type") == "MAPPED_TO")
    gem_both = pl.concat(
        [gem.select("src", "dst"), gem.select(pl.col("dst").alias("src"), pl.col("src").alias("dst"))]
    )
    up = rel.filter(pl.col("type") == "CHILD_OF").select("src", "dst")
    frame = items.filter("linked").select("cui", "rows")
    is_do = set(do_cuis["cui"])

    def reaches(cuis: pl.Series, neighbours: pl.DataFrame) -> set[str]:
        found = (
            pl.DataFrame({"src": cuis}).join(neighbours, on="src").filter(pl.col("dst").is_in(list(is_do)))
        )
        return set(found["src"])

    cuis = frame["cui"].unique()
    direct = {c for c in cuis if c in is_do}
    via_gem = reaches(cuis, gem_both) - direct
    # ancestors up to 6 levels, each possibly through a GEM neighbour
    ancestors = pl.DataFrame({"src": cuis, "anc": cuis})
    reach_anc: set[str] = set()
    for _ in range(6):
        ancestors = ancestors.join(up, left_on="anc", right_on="src").select(
            "src", pl.col("dst").alias("anc")
        )
        if not ancestors.height:
            break
        anc_do = ancestors.filter(pl.col("anc").is_in(list(is_do)))["src"]
        anc_gem = ancestors.join(gem_both, left_on="anc", right_on="src").filter(
            pl.col("dst").is_in(list(is_do))
        )["src"]
        reach_anc |= set(anc_do) | set(anc_gem)
    via_ancestor = reach_anc - direct - via_gem

    def rows_of(group: set[str]) -> int:
        return int(frame.filter(pl.col("cui").is_in(list(group)))["rows"].sum())

    total = int(items["rows"].sum()) or 1
    return {
        "do_rows_direct": round(rows_of(direct) / total, 4),
        "do_rows_via_gem": round(rows_of(via_gem) / total, 4),
        "do_rows_via_ancestor": round(rows_of(via_ancestor) / total, 4),
    }
