"""Code groupings for the grouped decision targets: CCS for diagnoses/procedures, ATC for drugs.

- CCS (HCUP Clinical Classifications Software, single-level): vendored under bench/data
  (ICD-9-CM/PCS 2015 and the ICD-10-CM/PCS CCS 2019.1; see bench/data/PROVENANCE.md), one label
  per category shared by both ICD versions, so a category is the same target whatever the coding.
- ATC: MIMIC stores NDCs. No openly licensed NDC->ATC table exists (the WHO ATC index forbids
  redistribution; the open NDC maps built from RxNav are CC BY-NC-SA), so none is vendored. A
  user builds one from a licensed UMLS release (`build_atc_from_umls`, through RxNorm) or brings
  a table (`load_atc`); without one the ATC tasks are skipped with a warning.

`unmapped_rates` measures, on a MIMIC-IV source, how many coded rows and distinct codes each
mapping leaves unmapped.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import polars as pl

from graphkit.atomic import atomic_write_bytes
from graphkit.errors import InputError

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
CCS_FILES = {"dx": "ccs_dx.tsv.gz", "px": "ccs_px.tsv.gz"}
CCS_LABELS = "ccs_labels.tsv"
ATC_COLUMNS = ("ndc", "atc_code", "atc_name")
ATC_CODE_LENGTH = {1: 1, 2: 3, 3: 4, 4: 5, 5: 7}


def normalize_icd(code: object) -> str | None:
    """An ICD code as MIMIC and HCUP store it: upper case, no dot, no spaces; None when empty."""
    if code is None:
        return None
    text = str(code).strip().replace(".", "").replace(" ", "").upper()
    return text or None


def normalize_version(version: object) -> str | None:
    if version is None:
        return None
    text = str(version).strip()
    if text.endswith(".0"):
        text = text[:-2]
    return text if text in ("9", "10") else None


def normalize_ndc(ndc: object) -> str | None:
    """An 11-digit NDC, left-padded with zeros as the reference does; None for missing or '0'.

    MIMIC writes 0 where a drug has no NDC and some exports turn the column into floats
    ("904198261.0"), hence the cut at the dot.
    """
    if ndc is None:
        return None
    text = str(ndc).strip()
    parts = text.split("-")
    if len(parts) == 3:
        # A labeled 10-digit NDC (4-4-2, 5-3-2 or 5-4-1) pads each segment to the 5-4-2 form.
        text = parts[0].zfill(5) + parts[1].zfill(4) + parts[2].zfill(2)
    else:
        text = text.split(".", 1)[0]
    if not text.isdigit() or len(text) > 11 or int(text) == 0:
        return None
    return text.zfill(11)


@dataclass(frozen=True)
class CcsMap:
    """(ICD version, ICD code) -> single-level CCS category and its label."""

    kind: Literal["dx", "px"]
    categories: dict[tuple[str, str], str]
    labels: dict[str, str]

    def category(self, version: object, code: object) -> str | None:
        v, c = normalize_version(version), normalize_icd(code)
        if v is None or c is None:
            return None
        return self.categories.get((v, c))

    def label(self, version: object, code: object) -> str | None:
        category = self.category(version, code)
        return None if category is None else self.labels[category]

    def frame(self) -> pl.DataFrame:
        """The table as a frame (icd_version, icd_code, ccs, ccs_label) for vectorized joins."""
        rows = [(v, c, cat, self.labels[cat]) for (v, c), cat in self.categories.items()]
        return pl.DataFrame(rows, schema=["icd_version", "icd_code", "ccs", "ccs_label"], orient="row")


@functools.lru_cache(maxsize=2)
def load_ccs(kind: Literal["dx", "px"]) -> CcsMap:
    """The vendored HCUP single-level CCS map for diagnoses (dx) or procedures (px)."""
    if kind not in CCS_FILES:
        raise InputError("unknown CCS kind", where="kind", value=kind, fix="use 'dx' or 'px'")
    labels: dict[str, str] = {}
    with open(DATA_DIR / CCS_LABELS, encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["kind"] == kind:
                labels[row["ccs"]] = row["label"]
    categories: dict[tuple[str, str], str] = {}
    with gzip.open(DATA_DIR / CCS_FILES[kind], "rt", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            categories[(row["icd_version"], row["icd_code"])] = row["ccs"]
    return CcsMap(kind, categories, labels)


@dataclass(frozen=True)
class AtcMap:
    """NDC (11 digits) -> ATC classes (code, name); one NDC may belong to several classes."""

    classes: dict[str, tuple[tuple[str, str], ...]]
    source: str

    def names(self, ndc: object) -> tuple[str, ...]:
        key = normalize_ndc(ndc)
        if key is None:
            return ()
        return tuple(name for _, name in self.classes.get(key, ()))

    def __len__(self) -> int:
        return len(self.classes)


def load_atc(path: str | Path) -> AtcMap:
    """Read an NDC->ATC table: CSV or TSV (optionally .gz) with columns ndc, atc_code, atc_name."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            "NDC->ATC table not found",
            where=str(path),
            fix="build one with `ehr-r1 bench atc-from-umls` or give an existing file",
        )
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        head = handle.readline()
        delimiter = "\t" if "\t" in head else ","
        reader = csv.DictReader(io.StringIO(head + handle.read()), delimiter=delimiter)
        missing = [c for c in ATC_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(
                f"has no column {missing[0]!r}",
                where=str(path),
                value=reader.fieldnames,
                fix=f"give columns {list(ATC_COLUMNS)}",
            )
        classes: dict[str, dict[str, str]] = defaultdict(dict)
        for line_no, row in enumerate(reader, start=2):
            ndc = normalize_ndc(row["ndc"])
            if ndc is None:
                raise InputError(
                    f"line {line_no}: not an NDC",
                    where=str(path),
                    value=row["ndc"],
                    fix="write NDCs as up to 11 digits",
                )
            if not row["atc_code"] or not row["atc_name"]:
                raise InputError(
                    f"line {line_no}: empty atc_code or atc_name", where=str(path), fix="fill both columns"
                )
            classes[ndc][row["atc_code"]] = row["atc_name"]
    return AtcMap({ndc: tuple(sorted(codes.items())) for ndc, codes in classes.items()}, str(path))


@dataclass(frozen=True)
class AtcBuildStats:
    ndcs: int
    ndcs_mapped: int
    classes: int
    level: int
    path: Path


def build_atc_from_umls(meta_dir: str | Path, out: str | Path, level: int = 4) -> AtcBuildStats:
    """Build an NDC->ATC table from a licensed UMLS release (META/ with MRCONSO, MRREL, MRSAT).

    NDCs are RxNorm attributes (MRSAT, ATN=NDC, SAB=RXNORM) of drug products; a product reaches
    its ingredients through RxNorm relations (tradename_of, consists_of, has_ingredient(s), and
    contains for packs), and an ingredient concept carries ATC atoms (SAB=ATC, level 5 codes).
    The class at `level` (1-5) is the code prefix of that length, named by its ATC atom.
    """
    from graphkit.umls.rrf import scan_rrf

    if level not in ATC_CODE_LENGTH:
        raise InputError(
            "ATC level must be 1-5",
            where="level",
            value=level,
            fix="use 4 (chemical subgroup) or 5 (substance)",
        )
    meta = Path(meta_dir)
    ndc_rows = (
        scan_rrf(meta, "MRSAT", ["CUI", "ATN", "SAB", "ATV"])
        .filter((pl.col("ATN") == "NDC") & (pl.col("SAB") == "RXNORM"))
        .select("CUI", "ATV")
        .collect()
    )
    conso = (
        scan_rrf(meta, "MRCONSO", ["CUI", "SAB", "TTY", "CODE", "STR"])
        .filter(pl.col("SAB").is_in(["RXNORM", "ATC"]))
        .select("CUI", "SAB", "TTY", "CODE", "STR")
        .collect()
    )
    rel = (
        scan_rrf(meta, "MRREL", ["CUI1", "CUI2", "RELA", "SAB"])
        .filter((pl.col("SAB") == "RXNORM") & pl.col("RELA").is_in(list(_PRODUCT_TO_INGREDIENT)))
        .select("CUI1", "CUI2", "RELA")
        .collect()
    )
    ingredient_ttys = {"IN", "PIN", "MIN"}
    rx_tty: dict[str, set[str]] = defaultdict(set)
    atc_of_cui: dict[str, set[str]] = defaultdict(set)
    atc_name: dict[str, str] = {}
    for cui, sab, tty, code, name in conso.iter_rows():
        if sab == "RXNORM":
            rx_tty[cui].add(tty)
        elif code:
            atc_name.setdefault(code, name)
            if len(code) == 7:
                atc_of_cui[cui].add(code)
    neighbours: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in rel.iter_rows():
        # MRREL lists each relation in both directions, so the walk is undirected; it stays on
        # the product's own parts because it never steps past an ingredient (see _ingredients).
        neighbours[a].add(b)
        neighbours[b].add(a)
    width = ATC_CODE_LENGTH[level]
    rows: set[tuple[str, str, str]] = set()
    ndcs: set[str] = set()
    mapped: set[str] = set()
    for cui, value in ndc_rows.iter_rows():
        ndc = normalize_ndc(value)
        if ndc is None:
            continue
        ndcs.add(ndc)
        for ingredient in _ingredients(cui, neighbours, rx_tty, ingredient_ttys):
            for code in atc_of_cui.get(ingredient, ()):
                prefix = code[:width]
                if prefix in atc_name:
                    rows.add((ndc, prefix, atc_name[prefix]))
                    mapped.add(ndc)
    out = Path(out)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(ATC_COLUMNS)
    writer.writerows(sorted(rows))
    data = (
        gzip.compress(buffer.getvalue().encode("utf-8"), mtime=0)
        if out.suffix == ".gz"
        else buffer.getvalue().encode("utf-8")
    )
    atomic_write_bytes(out, data)
    return AtcBuildStats(len(ndcs), len(mapped), len({r[1] for r in rows}), level, out)


_PRODUCT_TO_INGREDIENT = (
    "tradename_of",
    "has_tradename",
    "consists_of",
    "constitutes",
    "has_ingredient",
    "ingredient_of",
    "has_ingredients",
    "ingredients_of",
    "contains",
    "contained_in",
)


def _ingredients(
    start: str, neighbours: dict[str, set[str]], rx_tty: dict[str, set[str]], ingredient_ttys: set[str]
) -> set[str]:
    """Ingredient concepts of a product: a walk of at most three steps (brand -> generic ->
    component -> ingredient) that only passes through drug products and components.

    Ingredients, brand names and packs are never passed through: their neighbours are every
    product that contains them. The start may be a pack, whose contents are its drugs.
    """
    found: set[str] = set()
    if rx_tty.get(start, set()) & ingredient_ttys:
        return {start}
    frontier = {start}
    seen = {start}
    for _ in range(3):
        nxt: set[str] = set()
        for cui in frontier:
            for other in neighbours.get(cui, ()):
                if other in seen:
                    continue
                seen.add(other)
                ttys = rx_tty.get(other, set())
                if ttys & ingredient_ttys:
                    found.add(other)
                elif ttys & _WALK_THROUGH:
                    nxt.add(other)
        frontier = nxt
    return found


_WALK_THROUGH = {"SCD", "SBD", "SCDC", "SBDC"}


class _Source(Protocol):
    def has(self, table: str) -> bool: ...

    def scan(
        self, table: str, columns: list[str] | None = None, shard: int | None = None
    ) -> pl.LazyFrame: ...


@dataclass
class Coverage:
    """How much of one coded column a mapping covers on one dataset."""

    mapping: str
    table: str
    rows: int = 0
    rows_without_code: int = 0
    rows_unmapped: int = 0
    codes: int = 0
    codes_unmapped: int = 0
    unmapped_examples: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def row_rate(self) -> float:
        coded = self.rows - self.rows_without_code
        return self.rows_unmapped / coded if coded else 0.0

    @property
    def code_rate(self) -> float:
        return self.codes_unmapped / self.codes if self.codes else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "mapping": self.mapping,
            "table": self.table,
            "rows": self.rows,
            "rows_without_code": self.rows_without_code,
            "rows_unmapped": self.rows_unmapped,
            "unmapped_row_rate": round(self.row_rate, 6),
            "codes": self.codes,
            "codes_unmapped": self.codes_unmapped,
            "unmapped_code_rate": round(self.code_rate, 6),
            "unmapped_examples": self.unmapped_examples,
            "note": self.note,
        }


def _icd_coverage(source: _Source, table: str, ccs: CcsMap, examples: int) -> Coverage:
    cov = Coverage(f"ccs_{ccs.kind}", table)
    frame = source.scan(table, ["icd_code", "icd_version"]).collect()
    cov.rows = frame.height
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for code, version in frame.iter_rows():
        v, c = normalize_version(version), normalize_icd(code)
        if v is None or c is None:
            cov.rows_without_code += 1
            continue
        counts[(v, c)] += 1
    cov.codes = len(counts)
    missing = sorted((k for k in counts if k not in ccs.categories), key=lambda k: (-counts[k], k))
    cov.codes_unmapped = len(missing)
    cov.rows_unmapped = sum(counts[k] for k in missing)
    cov.unmapped_examples = [f"ICD-{v} {c}" for v, c in missing[:examples]]
    return cov


def _ndc_coverage(source: _Source, table: str, atc: AtcMap | None, examples: int) -> Coverage:
    cov = Coverage("atc", table)
    frame = source.scan(table, ["ndc"]).collect()
    cov.rows = frame.height
    counts: dict[str, int] = defaultdict(int)
    for (value,) in frame.iter_rows():
        ndc = normalize_ndc(value)
        if ndc is None:
            cov.rows_without_code += 1
        else:
            counts[ndc] += 1
    cov.codes = len(counts)
    if atc is None:
        cov.codes_unmapped = cov.codes
        cov.rows_unmapped = cov.rows - cov.rows_without_code
        cov.note = "no NDC->ATC table given (see `ehr-r1 bench atc-from-umls`)"
        return cov
    missing = sorted((k for k in counts if k not in atc.classes), key=lambda k: (-counts[k], k))
    cov.codes_unmapped = len(missing)
    cov.rows_unmapped = sum(counts[k] for k in missing)
    cov.unmapped_examples = [f"NDC {k}" for k in missing[:examples]]
    cov.note = f"NDC->ATC table {atc.source}"
    return cov


def unmapped_rates(source: _Source, atc: AtcMap | None = None, examples: int = 5) -> list[Coverage]:
    """Coverage of every grouped-target mapping on the tables of `source` that it has."""
    checks: Iterable[tuple[str, str]] = (
        ("diagnoses_icd", "dx"),
        ("procedures_icd", "px"),
        ("diagnosis", "dx"),
        ("prescriptions", "atc"),
        ("medrecon", "atc"),
    )
    result = []
    for table, kind in checks:
        if not source.has(table):
            log.info("coverage: %s not in the dataset, skipped", table)
            continue
        if kind == "atc":
            result.append(_ndc_coverage(source, table, atc, examples))
        else:
            result.append(_icd_coverage(source, table, load_ccs(kind), examples))
    return result
