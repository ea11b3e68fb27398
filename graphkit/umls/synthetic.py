"""A synthetic, UMLS-shaped RRF release: the scale fixture for the graph store and path search.

    from graphkit.umls.synthetic import generate_synthetic_rrf
    summary = generate_synthetic_rrf(out_dir, n_concepts=1_000_000, n_relations=5_000_000, seed=0)

or ``python -m graphkit.umls.synthetic OUT_DIR [--concepts N] [--relations N] [--seed S]``.

Writes MRCONSO, MRREL, MRSTY, MRSAB and MRDOC (.RRF, the layouts of graphkit.umls.rrf) that the
same reader as a licensed UMLS accepts. Shape, chosen to look like the Metathesaurus:

- concepts: real-format CUIs (C + 7 digits, increasing with random gaps), 1-2 semantic types each
  from the 127 real TUIs with a clinical skew (diseases, drugs, procedures, findings dominate);
- atoms: about ``atoms_per_concept`` MRCONSO rows a concept over ten SABs with their code shapes
  (SNOMEDCT_US, MSH, NCI, RXNORM, LNC, ICD10CM, ICD9CM, HPO, MEDRT, MTH); the first atom is the
  English preferred one (TS=P, STT=PF, ISPREF=Y); others mix languages and suppression flags;
- relations: ``n_relations`` distinct facts, each written as the two MRREL rows UMLS publishes
  (one from each side, with inverse REL/RELA; ``both_directions=False`` writes one). About 45 %
  hierarchy (PAR/CHD with RELA isa or none, RB/RN), 45 % lateral RO with 20 RELAs, 10 %
  symmetric (RO without RELA, RQ, SY, SIB). Parents and one end of each lateral relation are
  drawn with a power law, so a few hub concepts get very high degree, like UMLS;
- deterministic: the same arguments give byte-identical files.

Facts are unique by (source, type, target, SAB), so the reader yields exactly ``n_relations``
edges from the two-row form (minus none: no self-loops are generated).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from graphkit.atomic import atomic_path
from graphkit.umls.relations import BUILTIN_RELA_INVERSES, REL_TABLE
from graphkit.umls.rrf import COLUMNS
from graphkit.umls.semantic import semantic_types
from graphkit.umls.writer import complete_mrrel, mrdoc_frame, mrsab_frame, relation_rows

# SAB, share of atoms, share of relations, code shape
SABS: tuple[tuple[str, float, float, str], ...] = (
    ("SNOMEDCT_US", 0.28, 0.40, "snomed"),
    ("MSH", 0.14, 0.16, "mesh"),
    ("NCI", 0.14, 0.12, "nci"),
    ("RXNORM", 0.10, 0.10, "rxnorm"),
    ("LNC", 0.08, 0.06, "loinc"),
    ("ICD10CM", 0.06, 0.05, "icd10"),
    ("ICD9CM", 0.04, 0.03, "icd9"),
    ("HPO", 0.04, 0.04, "hpo"),
    ("MEDRT", 0.03, 0.04, "medrt"),
    ("MTH", 0.09, 0.00, "none"),
)

# TUIs that dominate clinical UMLS content get most of the mass; every other real TUI shares the rest.
_HEAVY_TUIS = {
    "T047": 0.14,
    "T121": 0.09,
    "T109": 0.08,
    "T033": 0.08,
    "T061": 0.07,
    "T023": 0.06,
    "T116": 0.06,
    "T200": 0.05,
    "T191": 0.04,
    "T184": 0.03,
    "T059": 0.03,
    "T060": 0.02,
    "T037": 0.02,
    "T046": 0.02,
    "T201": 0.02,
    "T034": 0.02,
    "T029": 0.015,
    "T048": 0.015,
    "T019": 0.01,
    "T025": 0.01,
}

LATERAL_RELAS: tuple[tuple[str, float], ...] = (
    ("may_treat", 0.09),
    ("has_finding_site", 0.10),
    ("associated_with", 0.08),
    ("has_ingredient", 0.07),
    ("mapped_to", 0.06),
    ("has_causative_agent", 0.05),
    ("cause_of", 0.05),
    ("has_associated_morphology", 0.07),
    ("part_of", 0.06),
    ("member_of", 0.05),
    ("has_component", 0.05),
    ("has_method", 0.04),
    ("may_prevent", 0.03),
    ("may_diagnose", 0.03),
    ("has_manifestation", 0.03),
    ("has_tradename", 0.03),
    ("classified_as", 0.03),
    ("has_mechanism_of_action", 0.02),
    ("has_physiologic_effect", 0.01),
    ("measures", 0.01),
)
SYMMETRIC_RELS: tuple[tuple[str, float], ...] = (("RO", 0.4), ("RQ", 0.3), ("SY", 0.2), ("SIB", 0.1))

_SYLLABLES = (
    "car di o my pa thy neu ro gas tro en ter itis hep at ic ren al pul mon ary vas cu lar"
    " derm a to sis hem or rhage throm bo sis lym pho ma leuk em ia my el oid os te o por"
    " ne phr lith cyst ec to my plas ty sco py gram cil lin mab zole pril sar tan olol pine"
    " statin dip ine sul fa mide ox a cin cef a zo lin in sul in"
).split()
_QUALIFIERS = (
    "acute",
    "chronic",
    "primary",
    "secondary",
    "left",
    "right",
    "bilateral",
    "severe",
    "mild",
    "congenital",
    "recurrent",
    "unspecified",
    "oral",
    "injectable",
    "serum",
    "urine",
)
_LANGS = (("ENG", 0.85), ("SPA", 0.07), ("FRE", 0.04), ("GER", 0.04))
_SUPPRESS = (("N", 0.93), ("O", 0.03), ("E", 0.02), ("Y", 0.02))


def _choice(rng: np.random.Generator, items, weights, size):
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(items), size=size, p=p / p.sum())


def _vocabulary(rng: np.random.Generator, size: int = 4000) -> np.ndarray:
    n_syl = rng.integers(2, 5, size)
    picks = rng.integers(0, len(_SYLLABLES), (size, 4))
    words = set()
    out = []
    for i in range(size):
        word = "".join(_SYLLABLES[j] for j in picks[i, : n_syl[i]])
        if word not in words:
            words.add(word)
            out.append(word)
    return np.array(sorted(out), dtype=object)


def _codes(shape: str, ids: np.ndarray) -> pl.Series:
    s = pl.Series(ids.astype(np.int64))
    if shape == "snomed":
        return (s * 7919 % 900_000_000 + 100_000).cast(pl.String)
    if shape == "mesh":
        return "D" + (s % 1_000_000).cast(pl.String).str.zfill(6)
    if shape == "nci":
        return "C" + (s % 10_000_000).cast(pl.String)
    if shape == "rxnorm":
        return (s % 3_000_000 + 1000).cast(pl.String)
    if shape == "loinc":
        body = s % 100_000
        return body.cast(pl.String) + "-" + (body % 10).cast(pl.String)
    if shape == "icd10":
        letter = pl.Series([chr(65 + int(v)) for v in (ids % 26)])
        return letter + (s % 100).cast(pl.String).str.zfill(2) + "." + (s // 100 % 10).cast(pl.String)
    if shape == "icd9":
        return (s % 1000).cast(pl.String).str.zfill(3) + "." + (s // 1000 % 10).cast(pl.String)
    if shape == "hpo":
        return "HP:" + (s % 10_000_000).cast(pl.String).str.zfill(7)
    if shape == "medrt":
        return "N" + (s % 10_000_000_000).cast(pl.String).str.zfill(10)
    return pl.Series(["NOCODE"] * len(ids))


def _write(frame: pl.DataFrame, path: Path, name: str, append: bool = False) -> None:
    columns = COLUMNS[name]
    out = frame.select([pl.col(c).cast(pl.String).fill_null("") for c in columns]).with_columns(
        pl.lit("").alias("__end")
    )
    with open(path, "ab" if append else "wb") as handle:
        out.write_csv(handle, separator="|", include_header=False, quote_style="never", line_terminator="\n")


def generate_synthetic_rrf(
    out_dir: str | Path,
    n_concepts: int = 1_000_000,
    n_relations: int = 5_000_000,
    seed: int = 0,
    atoms_per_concept: float = 2.0,
    both_directions: bool = True,
    chunk_relations: int = 1_000_000,
) -> dict:
    """Write a synthetic release into ``out_dir`` (created); return counts, seconds and file sizes."""
    if n_concepts < 2 or n_relations < 1:
        raise ValueError("need at least 2 concepts and 1 relation")
    if n_concepts >= 1 << 24:
        raise ValueError("at most 16,777,215 concepts")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    gaps = rng.integers(1, 9, n_concepts)
    cui_num = np.cumsum(gaps)
    if cui_num[-1] >= 10_000_000:
        cui_num = np.arange(1, n_concepts + 1)
    cuis = pl.Series("CUI", cui_num).cast(pl.String).str.zfill(7)
    cuis = "C" + cuis

    # ---- semantic types (MRSTY)
    types = semantic_types()
    tuis = sorted(types)
    rest = (1.0 - sum(_HEAVY_TUIS.values())) / (len(tuis) - len(_HEAVY_TUIS))
    tui_weights = [_HEAVY_TUIS.get(t, rest) for t in tuis]
    primary = _choice(rng, tuis, tui_weights, n_concepts)
    has_second = rng.random(n_concepts) < 0.08
    second = _choice(rng, tuis, tui_weights, int(has_second.sum()))
    sty_idx = np.concatenate([np.arange(n_concepts), np.flatnonzero(has_second)])
    sty_tui = np.concatenate([primary, second])
    tui_arr = np.array(tuis, dtype=object)
    mrsty = pl.DataFrame({"i": sty_idx, "TUI": tui_arr[sty_tui]}).unique(["i", "TUI"]).sort(["i", "TUI"])
    mrsty = mrsty.with_columns(
        cuis.gather(mrsty["i"]).alias("CUI"),
        pl.col("TUI").replace_strict({t: types[t].name for t in tuis}).alias("STY"),
        pl.col("TUI").replace_strict({t: "B" + ".".join(str(int(t[1:]))) for t in tuis}).alias("STN"),
        ("AT" + pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(8)).alias("ATUI"),
        pl.lit("").alias("CVF"),
    )

    # ---- atoms (MRCONSO)
    vocab = _vocabulary(rng)
    extra = rng.poisson(max(atoms_per_concept - 1.0, 0.0), n_concepts).clip(0, 7)
    atom_concept = np.repeat(np.arange(n_concepts), 1 + extra)
    n_atoms = atom_concept.size
    first = np.ones(n_atoms, dtype=bool)
    first[1:] = atom_concept[1:] != atom_concept[:-1]
    atom_sab = _choice(rng, [s[0] for s in SABS], [s[1] for s in SABS], n_atoms)
    n_words = rng.integers(1, 4, n_concepts)
    word_ids = rng.integers(0, len(vocab), (n_concepts, 3))
    concept_names = pl.DataFrame({f"w{k}": vocab[word_ids[:, k]] for k in range(3)}).select(
        pl.when(pl.Series(n_words) >= 3)
        .then(pl.concat_str("w0", "w1", "w2", separator=" "))
        .when(pl.Series(n_words) == 2)
        .then(pl.concat_str("w0", "w1", separator=" "))
        .otherwise(pl.col("w0"))
        .str.to_titlecase()
        .alias("name")
    )["name"]
    qualifier = pl.Series(rng.integers(0, len(_QUALIFIERS), n_atoms)).replace_strict(
        dict(enumerate(_QUALIFIERS)), return_dtype=pl.String
    )
    atom_names = concept_names.gather(atom_concept)
    variant = ~first & (rng.random(n_atoms) < 0.7)
    atom_names = pl.select(
        pl.when(pl.Series(variant))
        .then(pl.concat_str(qualifier, pl.lit(" "), atom_names.str.to_lowercase()))
        .otherwise(atom_names)
    ).to_series()
    lat = np.where(first, 0, _choice(rng, [x[0] for x in _LANGS], [x[1] for x in _LANGS], n_atoms))
    sup = np.where(first, 0, _choice(rng, [x[0] for x in _SUPPRESS], [x[1] for x in _SUPPRESS], n_atoms))
    sab_names = [s[0] for s in SABS]
    code_parts = []
    for k, (_, _, _, shape) in enumerate(SABS):
        where = np.flatnonzero(atom_sab == k)
        if where.size:
            code_parts.append(
                pl.DataFrame({"pos": where, "CODE": _codes(shape, (atom_concept[where] + 1) * 104_729 + k)})
            )
    code_col = pl.concat(code_parts).sort("pos")["CODE"]
    seq = pl.int_range(1, n_atoms + 1, eager=True).cast(pl.String)
    mrconso = pl.DataFrame(
        {
            "CUI": cuis.gather(atom_concept),
            "LAT": pl.Series(lat).replace_strict(
                dict(enumerate(x[0] for x in _LANGS)), return_dtype=pl.String
            ),
            "TS": pl.select(pl.when(pl.Series(first)).then(pl.lit("P")).otherwise(pl.lit("S"))).to_series(),
            "LUI": "L" + seq.str.zfill(7),
            "STT": pl.select(
                pl.when(pl.Series(first)).then(pl.lit("PF")).otherwise(pl.lit("VO"))
            ).to_series(),
            "SUI": "S" + seq.str.zfill(7),
            "ISPREF": pl.select(
                pl.when(pl.Series(first)).then(pl.lit("Y")).otherwise(pl.lit("N"))
            ).to_series(),
            "AUI": "A" + seq.str.zfill(8),
            "SAUI": "",
            "SCUI": code_col,
            "SDUI": "",
            "SAB": pl.Series(atom_sab).replace_strict(dict(enumerate(sab_names)), return_dtype=pl.String),
            "TTY": pl.select(
                pl.when(pl.Series(first)).then(pl.lit("PT")).otherwise(pl.lit("SY"))
            ).to_series(),
            "CODE": code_col,
            "STR": atom_names,
            "SRL": "0",
            "SUPPRESS": pl.Series(sup).replace_strict(
                dict(enumerate(x[0] for x in _SUPPRESS)), return_dtype=pl.String
            ),
            "CVF": "",
        }
    )

    paths = {name: out_dir / f"{name}.RRF" for name in ("MRCONSO", "MRREL", "MRSTY", "MRSAB", "MRDOC")}
    with atomic_path(paths["MRCONSO"]) as tmp:
        _write(mrconso, tmp, "MRCONSO")
    with atomic_path(paths["MRSTY"]) as tmp:
        _write(mrsty, tmp, "MRSTY")
    del mrconso, atom_names, mrsty

    # ---- relations (MRREL)
    rel_sabs = [s for s in SABS if s[2] > 0]
    lateral_names = [r for r, _ in LATERAL_RELAS]
    symmetric_names = [r for r, _ in SYMMETRIC_RELS]
    # type ids: 0 isa(PAR/CHD), 1 CHD no RELA, 2 RN, 3.. lateral, then symmetric
    kinds = ["isa", "CHD", "RN", *lateral_names, *symmetric_names]
    # Draw every candidate fact at once (numbers only), keep the first occurrence of each
    # (source, target, type, SAB) in draw order, then build and write the text in chunks.
    m = int(n_relations * 1.1) + 64
    u = rng.random(m)
    kind = np.where(u < 0.25, 0, np.where(u < 0.37, 1, np.where(u < 0.45, 2, np.where(u < 0.90, 3, 4))))
    lat_pick = _choice(rng, lateral_names, [w for _, w in LATERAL_RELAS], m)
    sym_pick = _choice(rng, symmetric_names, [w for _, w in SYMMETRIC_RELS], m)
    type_id = np.where(kind < 3, kind, np.where(kind == 3, 3 + lat_pick, 3 + len(lateral_names) + sym_pick))
    child = rng.integers(1, n_concepts, m)
    parent = np.floor(child * rng.random(m) ** 3).astype(np.int64)
    hub = np.floor(n_concepts * rng.random(m) ** 2.5).astype(np.int64).clip(0, n_concepts - 1)
    other = rng.integers(0, n_concepts, m)
    src = np.where(kind < 3, child, other)
    dst = np.where(kind < 3, parent, hub)
    del u, kind, lat_pick, sym_pick, child, parent, hub, other
    sab = _choice(rng, [s[0] for s in rel_sabs], [s[2] for s in rel_sabs], m)
    key = (src.astype(np.int64) << 36) | (dst.astype(np.int64) << 12) | (type_id.astype(np.int64) << 4) | sab
    key[src == dst] = -1
    _, first_pos = np.unique(key, return_index=True)
    first_pos = np.sort(first_pos[key[first_pos] >= 0])
    if first_pos.size < n_relations:
        raise ValueError("cannot draw that many distinct relations: raise n_concepts or lower n_relations")
    chosen = first_pos[:n_relations]
    src, dst, type_id, sab = src[chosen], dst[chosen], type_id[chosen], sab[chosen]
    del key, first_pos, chosen
    kind_names = dict(enumerate(kinds))
    sab_of = {i: s[0] for i, s in enumerate(rel_sabs)}
    rows_written = 0
    with atomic_path(paths["MRREL"]) as tmp:
        tmp.write_bytes(b"")
        for lo in range(0, n_relations, chunk_relations):
            hi = min(lo + chunk_relations, n_relations)
            facts = pl.DataFrame(
                {
                    "src": cuis.gather(src[lo:hi]),
                    "dst": cuis.gather(dst[lo:hi]),
                    "kind": pl.Series(type_id[lo:hi]).replace_strict(kind_names, return_dtype=pl.String),
                    "SAB": pl.Series(sab[lo:hi]).replace_strict(sab_of, return_dtype=pl.String),
                }
            )
            facts = facts.with_columns(_fact_names(pl.col("kind")))
            rows = relation_rows(facts, both_directions).with_row_index("__k").sort("CUI1", "__k")
            rows = complete_mrrel(rows, first_rui=rows_written + 1)
            _write(rows, tmp, "MRREL", append=True)
            rows_written += rows.height
    written = n_relations

    # ---- sources (MRSAB) and relation names (MRDOC)
    mrsab = mrsab_frame(
        (sab, f"{sab}_SYNTH", f"Synthetic {sab}-shaped source", "SYNTH", "ehr-r1 synthetic generator")
        for sab, *_ in SABS
    )
    with atomic_path(paths["MRSAB"]) as tmp:
        _write(mrsab, tmp, "MRSAB")
    with atomic_path(paths["MRDOC"]) as tmp:
        _write(mrdoc_frame([*lateral_names, "isa"]), tmp, "MRDOC")

    return {
        "out_dir": str(out_dir),
        "seed": seed,
        "concepts": n_concepts,
        "relations": written,
        "mrrel_rows": rows_written,
        "mrconso_rows": int(n_atoms),
        "seconds": round(time.perf_counter() - started, 2),
        "bytes": {name: p.stat().st_size for name, p in paths.items()},
    }


def _fact_names(kind: pl.Expr) -> list[pl.Expr]:
    """REL/RELA of the forward row and of its inverse for each generated kind."""
    lateral = {r: BUILTIN_RELA_INVERSES[r] for r, _ in LATERAL_RELAS}
    rel = (
        pl.when(kind.is_in(["isa", "CHD"]))
        .then(pl.lit("CHD"))
        .when(kind == "RN")
        .then(pl.lit("RN"))
        .when(kind.is_in(list(lateral)))
        .then(pl.lit("RO"))
        .otherwise(kind)
    )
    rela = (
        pl.when(kind == "isa")
        .then(pl.lit("isa"))
        .when(kind.is_in(list(lateral)))
        .then(kind)
        .otherwise(pl.lit(""))
    )
    inv_rel = rel.replace_strict({r: REL_TABLE[r][0] for r in REL_TABLE}, default=rel)
    inv_rela = (
        pl.when(kind == "isa")
        .then(pl.lit("inverse_isa"))
        .when(kind.is_in(list(lateral)))
        .then(kind.replace_strict(lateral, default=""))
        .otherwise(pl.lit(""))
    )
    return [rel.alias("rel"), rela.alias("rela"), inv_rel.alias("inv_rel"), inv_rela.alias("inv_rela")]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m graphkit.umls.synthetic", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out_dir")
    parser.add_argument("--concepts", type=int, default=1_000_000)
    parser.add_argument("--relations", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--atoms-per-concept", type=float, default=2.0)
    parser.add_argument("--one-row-per-relation", action="store_true", help="skip the inverse MRREL rows")
    args = parser.parse_args(argv)
    summary = generate_synthetic_rrf(
        args.out_dir,
        n_concepts=args.concepts,
        n_relations=args.relations,
        seed=args.seed,
        atoms_per_concept=args.atoms_per_concept,
        both_directions=not args.one_row_per_relation,
    )
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
