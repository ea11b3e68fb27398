"""Maintainer tool: copy what the open demo graph needs from the shared open data into the package.

    python -m graphkit.umls.vendor /path/to/shared/data [--out graphkit/data/kg]

Keeps only the needed columns, gzips tables (mtime 0, so reruns are byte-identical) and writes
each source's licence note beside its files. Not used at run time: the demo graph is built from
graphkit/data/kg/ alone (graphkit.umls.demo).

What is deliberately left out (see graphkit/data/kg/README.md): DrugBank identifiers and
DrugBank's compound names (their terms require permission for commercial redistribution).
Drug-disease facts (PharmacotherapyDB, CC0) and pharmacologic-class memberships (Hetionet from
DrugCentral, CC BY 4.0) are kept only for compounds whose name, normalized, equals a drug name
taken from an open source shipped here (MIMIC-IV demo prescription/pharmacy/eMAR names, ODbL;
mimic-code's RxNorm map, MIT); the name written is that open text, normalized.
"""

from __future__ import annotations

import gzip
import io
import shutil
import sys
from pathlib import Path

import polars as pl

from graphkit.atomic import atomic_write_bytes, atomic_write_text
from graphkit.umls.names import drug_name_candidates, normalize_name

DEMO = Path(__file__).resolve().parents[1] / "data" / "mimic-iv-demo"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "kg"


def _write_tsv(frame: pl.DataFrame, path: Path) -> None:
    buffer = io.BytesIO()
    frame.write_csv(buffer, separator="\t", quote_style="never", line_terminator="\n")
    data = buffer.getvalue()
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    atomic_write_bytes(path, data)


def _read_tsv(path: Path, **kw) -> pl.DataFrame:
    return pl.read_csv(path, separator="\t", infer_schema=False, **kw)


def vendor(shared: Path, out: Path = DEFAULT_OUT) -> dict[str, int]:
    counts: dict[str, int] = {}

    # ---- Disease Ontology (CC0)
    do_dir = out / "disease-ontology"
    do_dir.mkdir(parents=True, exist_ok=True)
    human = _read_tsv(shared / "disease-ontology" / "HumanDO.tsv")
    terms = human.select(pl.col("id").alias("doid"), pl.col("label")).unique().sort("doid")
    by_label = terms.select(pl.col("label").alias("subClassOf"), pl.col("doid").alias("parent"))
    isa = (
        human.join(by_label, on="subClassOf", how="inner")
        .select(pl.col("id").alias("doid"), "parent")
        .filter(pl.col("doid") != pl.col("parent"))
        .unique()
        .sort("doid", "parent")
    )
    xrefs = (
        _read_tsv(shared / "disease-ontology" / "allXREFinDO.tsv")
        .with_columns(pl.col("xref").str.split_exact(":", 1).alias("x"))
        .select(
            pl.col("id").alias("doid"),
            pl.col("x").struct.field("field_0").alias("vocab"),
            pl.col("x").struct.field("field_1").alias("code"),
        )
        .filter(pl.col("vocab").is_in(["ICD10CM", "ICD9CM", "UMLS_CUI"]))
        .unique()
        .sort("doid", "vocab", "code")
    )
    symptoms = (
        _read_tsv(shared / "disease-ontology" / "disease-symptom.tsv")
        .select(pl.col("disease_id").alias("doid"), "symptom_id", pl.col("symptom_label").alias("symptom"))
        .unique()
        .sort("doid", "symptom_id")
    )
    _write_tsv(terms, do_dir / "terms.tsv.gz")
    _write_tsv(isa, do_dir / "isa.tsv.gz")
    _write_tsv(xrefs, do_dir / "xrefs.tsv.gz")
    _write_tsv(symptoms, do_dir / "symptoms.tsv.gz")
    shutil.copyfile(shared / "disease-ontology" / "LICENSE", do_dir / "LICENSE.txt")
    counts.update(
        do_terms=terms.height, do_isa=isa.height, do_xrefs=xrefs.height, do_symptoms=symptoms.height
    )

    # ---- open drug names and the drug facts re-keyed to them
    open_names = _open_drug_names(shared)
    by_key = {}
    for text, origin in open_names:
        for key in drug_name_candidates(text):
            by_key.setdefault(key, origin)
    nodes = _read_tsv(shared / "hetionet-clinical" / "nodes.tsv")
    compounds = nodes.filter(pl.col("kind") == "Compound").select("id", "name")
    compound_key = {cid: normalize_name(name) for cid, name in compounds.iter_rows()}
    kept_compound = {cid: key for cid, key in compound_key.items() if key in by_key}
    indications = _read_tsv(shared / "pharmacotherapydb" / "indications.tsv")
    indication_rows = []
    for doid, _drugbank_id, _, drug, category in indications.select(
        "doid_id", "drugbank_id", "disease", "drug", "category"
    ).iter_rows():
        key = normalize_name(drug)
        if category in ("DM", "SYM") and key in by_key:
            indication_rows.append((doid, key, category))
    pharm = (
        pl.DataFrame(indication_rows, schema=["doid", "drug", "category"], orient="row")
        .unique()
        .sort("doid", "drug", "category")
    )
    used_drugs = set(pharm["drug"])

    het_dir = out / "hetionet"
    het_dir.mkdir(parents=True, exist_ok=True)
    edges = _read_tsv(shared / "hetionet-clinical" / "edges.tsv")
    disease_edges = edges.filter(pl.col("metaedge").is_in(["DpS", "DlA", "DrD"])).with_columns(
        pl.col("source").str.replace("^Disease::", ""), pl.col("target").str.split("::").list.last()
    )
    class_rows = []
    for source, _, target in edges.filter(pl.col("metaedge") == "PCiC").iter_rows():
        compound_id = target
        if compound_id in kept_compound:
            class_rows.append((source.split("::", 1)[1], "PCiC", kept_compound[compound_id]))
    member_edges = pl.DataFrame(class_rows, schema=["source", "metaedge", "target"], orient="row")
    used_drugs |= set(member_edges["target"])
    het_edges = pl.concat([disease_edges, member_edges]).unique().sort("metaedge", "source", "target")
    used_ids = set(het_edges["target"]) | set(het_edges.filter(pl.col("metaedge") == "PCiC")["source"])
    het_nodes = (
        nodes.filter(pl.col("kind").is_in(["Symptom", "Anatomy", "Pharmacologic Class"]))
        .with_columns(pl.col("id").str.split("::").list.last())
        .filter(pl.col("id").is_in(sorted(used_ids)))
        .unique()
        .sort("kind", "id")
    )
    _write_tsv(het_nodes, het_dir / "nodes.tsv.gz")
    _write_tsv(het_edges, het_dir / "edges.tsv.gz")
    counts.update(hetionet_nodes=het_nodes.height, hetionet_edges=het_edges.height)

    pdb_dir = out / "pharmacotherapydb"
    pdb_dir.mkdir(parents=True, exist_ok=True)
    _write_tsv(pharm, pdb_dir / "indications.tsv.gz")
    counts["pharmacotherapydb_indications"] = pharm.height

    drugs_dir = out / "drugs"
    drugs_dir.mkdir(parents=True, exist_ok=True)
    drug_table = pl.DataFrame(
        sorted((key, by_key[key]) for key in used_drugs), schema=["name", "name_source"], orient="row"
    )
    _write_tsv(drug_table, drugs_dir / "drug_names.tsv")
    counts["drugs"] = drug_table.height

    # ---- GEMs (public domain)
    gem_dir = out / "icd-gems"
    gem_dir.mkdir(parents=True, exist_ok=True)
    for src_name, out_name, a, b in [
        ("icd9toicd10cmgem.csv", "icd9cm_to_icd10cm.tsv.gz", "icd9cm", "icd10cm"),
        ("icd10cmtoicd9gem.csv", "icd10cm_to_icd9cm.tsv.gz", "icd10cm", "icd9cm"),
    ]:
        gem = (
            pl.read_csv(shared / "icd-gems" / src_name, infer_schema=False)
            .filter(pl.col("no_map") == "0")
            .select(pl.col(a).alias("source"), pl.col(b).alias("target"), "approximate")
            .unique()
            .sort("source", "target")
        )
        _write_tsv(gem, gem_dir / out_name)
        counts[out_name] = gem.height
    pcs = (
        pl.read_csv(shared / "icd-gems" / "icd9pcs_to_icd10pcs_gem.csv.gz", infer_schema=False)
        .filter(pl.col("flags").str.slice(1, 1) == "0")
        .select(
            pl.col("icd_9").alias("source"),
            pl.col("icd_10").alias("target"),
            pl.col("flags").str.slice(0, 1).alias("approximate"),
        )
        .unique()
        .sort("source", "target")
    )
    _write_tsv(pcs, gem_dir / "icd9pcs_to_icd10pcs.tsv.gz")
    counts["icd9pcs_to_icd10pcs"] = pcs.height

    # ---- MIMIC item -> standard code maps (MIT + LOINC notice)
    maps_dir = out / "mimic-maps"
    maps_dir.mkdir(parents=True, exist_ok=True)
    item_codes = _item_codes(shared / "mimic-code-mappings")
    _write_tsv(item_codes, maps_dir / "item_codes.tsv.gz")
    shutil.copyfile(shared / "mimic-code-mappings" / "LICENSE", maps_dir / "LICENSE.txt")
    counts["item_codes"] = item_codes.height

    # ---- LOINC2HPO (MIT-style + LOINC notice)
    l2h_dir = out / "loinc2hpo"
    l2h_dir.mkdir(parents=True, exist_ok=True)
    l2h = (
        _read_tsv(shared / "loinc2hpo" / "loinc2hpo-annotations.tsv", quote_char=None)
        .filter(~pl.col("outcome").is_in(["N", "NEG"]))
        .select(
            pl.col("loincId").alias("loinc"),
            pl.col("loincScale").alias("scale"),
            "outcome",
            pl.col("hpoTermId").alias("hpo"),
        )
        .unique()
        .sort("loinc", "outcome", "hpo")
    )
    _write_tsv(l2h, l2h_dir / "loinc2hpo.tsv.gz")
    shutil.copyfile(shared / "loinc2hpo" / "License.md", l2h_dir / "License.md")
    counts["loinc2hpo"] = l2h.height
    atomic_write_text(out / "VENDORED_COUNTS.tsv", "".join(f"{k}\t{v}\n" for k, v in sorted(counts.items())))
    return counts


def _open_drug_names(shared: Path) -> list[tuple[str, str]]:
    """(text, origin) of drug names from open sources shipped with ehr-r1, sorted, deduplicated."""
    names: set[tuple[str, str]] = set()
    for table, column in [("prescriptions", "drug"), ("pharmacy", "medication"), ("emar", "medication")]:
        frame = pl.read_csv(DEMO / "hosp" / f"{table}.csv.gz", columns=[column], infer_schema=False)
        names |= {(t, f"mimic-iv-demo {table}.{column}") for t in frame[column].drop_nulls().unique()}
    rx = pl.read_csv(shared / "mimic-code-mappings" / "inputevents_to_rxnorm.csv", infer_schema=False)
    names |= {(t, "mimic-code inputevents_to_rxnorm") for t in rx["omop_concept_name"].drop_nulls()}
    names |= {(t, "mimic-code inputevents_to_rxnorm") for t in rx["label"].drop_nulls()}
    return sorted(names)


def _item_codes(folder: Path) -> pl.DataFrame:
    """table, itemid, sab, code, name (standard concept name), label (MIMIC label), relation."""
    frames = []

    def omop(file: str, table: str, label_col: str = "label") -> None:
        frame = pl.read_csv(folder / file, infer_schema=False)
        item_col = "itemid (omop_source_code)"
        frames.append(
            frame.filter(pl.col(item_col).is_not_null() & pl.col("omop_concept_code").is_not_null())
            .select(
                pl.lit(table).alias("table"),
                pl.col(item_col).alias("itemid"),
                pl.col("omop_vocabulary_id")
                .replace_strict({"LOINC": "LNC", "RxNorm": "RXNORM", "SNOMED": "SNOMEDCT_US"}, default=None)
                .alias("sab"),
                pl.col("omop_concept_code").alias("code"),
                pl.col("omop_concept_name").alias("name"),
                pl.col(label_col).alias("label"),
                pl.lit("exact").alias("relation"),
            )
            .filter(pl.col("sab").is_not_null())
        )

    def sssom(file: str, table: str) -> None:
        frame = pl.read_csv(folder / file, infer_schema=False)
        prefix = frame["object_id"].str.split(":").list.first()
        frames.append(
            frame.with_columns(prefix.alias("p"))
            .select(
                pl.lit(table).alias("table"),
                pl.col("subject_id").str.replace("^mimic:", "").alias("itemid"),
                pl.col("p")
                .replace_strict({"loinc": "LNC", "snomed": "SNOMEDCT_US"}, default=None)
                .alias("sab"),
                pl.col("object_id").str.split(":").list.last().alias("code"),
                pl.col("object_label").alias("name"),
                pl.col("subject_label").alias("label"),
                pl.col("predicate_id")
                .replace_strict({"skos:exactMatch": "exact", "skos:closeMatch": "close"}, default="related")
                .alias("relation"),
            )
            .filter(pl.col("sab").is_not_null())
        )

    omop("d_labitems_to_loinc.csv", "labevents")
    omop("meas_chartevents_main.csv", "chartevents")
    sssom("chartevents_to_loinc.csv", "chartevents")
    omop("outputevents_to_loinc.csv", "outputevents")
    omop("inputevents_to_rxnorm.csv", "inputevents")
    omop("proc_itemid.csv", "procedureevents")
    sssom("procedureevents_to_snomed.csv", "procedureevents")
    omop("proc_datetimeevents.csv", "datetimeevents")
    return (
        pl.concat(frames)
        .with_columns(pl.col("itemid").str.strip_chars(), pl.col("code").str.strip_chars())
        .unique(["table", "itemid", "sab", "code"], keep="first", maintain_order=True)
        .sort("table", "itemid", "sab", "code")
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m graphkit.umls.vendor", description=__doc__.split("\n")[0]
    )
    parser.add_argument("shared", type=Path, help="the shared open data folder (holds disease-ontology/ ...)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    counts = vendor(args.shared, args.out)
    sys.stdout.write("".join(f"{k}\t{v}\n" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
