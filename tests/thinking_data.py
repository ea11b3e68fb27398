"""Hand-made concept graphs for the thinking tests (CSR and store-backed search use the same ones)."""

from __future__ import annotations

import random

import polars as pl

EDGE_COLUMNS = ("src", "dst", "type", "edge_id", "status", "sab", "rela", "source")


def edges_frame(rows) -> pl.DataFrame:
    """Rows (src, dst, type, edge_id[, status[, sab[, rela[, source]]]]) with defaults filled."""
    full = []
    for row in rows:
        row = tuple(row)
        defaults = ("active", "TEST", "", "umls")
        full.append(row + defaults[len(row) - 4 :])
    return pl.DataFrame(full, schema=list(EDGE_COLUMNS), orient="row")


def concepts_frame(cuis) -> pl.DataFrame:
    cuis = sorted(set(cuis))
    return pl.DataFrame(
        {
            "cui": cuis,
            "name": [f"name of {c}" for c in cuis],
            "semantic_type": ["T047"] * len(cuis),
            "semantic_group": ["DISO"] * len(cuis),
        }
    )


# A small clinical-looking graph. Stored direction reads "src TYPE dst".
#
#   DRUG -MAY_TREAT-> DIS <-ISA- SUBDIS          LAB -MEASURES-> ANALYTE <-HAS_COMPONENT- DIS
#   DRUG -HAS_CONTRAINDICATED_DRUG-> ... (excluded by default)
#   FAR --(chain of 5 ISA edges)--> DIS ;  ISO (no edges)
CLINICAL = [
    ("C_DRUG", "C_DIS", "MAY_TREAT", "e01", "active", "MEDRT", "may_treat"),
    ("C_SUB", "C_DIS", "ISA", "e02", "active", "SNOMEDCT_US", "isa"),
    ("C_LAB", "C_ANA", "MEASURES", "e03", "active", "LNC", "measures"),
    ("C_DIS", "C_ANA", "HAS_COMPONENT", "e04", "active", "SNOMEDCT_US", "has_component"),
    ("C_FAR", "C_F1", "ISA", "e05"),
    ("C_F1", "C_F2", "ISA", "e06"),
    ("C_F2", "C_F3", "ISA", "e07"),
    ("C_F3", "C_F4", "ISA", "e08"),
    ("C_F4", "C_DIS", "ISA", "e09"),
    # a shortcut that is excluded (reference: contraindications), one that is rejected
    ("C_FAR", "C_DIS", "CONTRAINDICATED_WITH_DISEASE", "e10"),
    ("C_F1", "C_DIS", "RELATED_TO", "e11", "rejected"),
    # a mined association is never traversed by default
    ("C_LAB", "C_DIS", "ASSOCIATED_WITH", "e12", "active", "EHRR1_ASSOC:dx", "", "association"),
    # curator-added edge
    ("C_CUR", "C_SUB", "CAUSE_OF", "e13", "active", "CURATOR", "cause_of", "curator"),
]
CLINICAL_CUIS = {c for row in CLINICAL for c in row[:2]} | {"C_ISO"}

# Two shortest paths S -> T of length 2 (via M1 and via M2) plus a parallel edge S -> M2 of
# another source; edge ids chosen so the tie-break order is not insertion order.
TIES = [
    ("S", "M1", "ISA", "t9"),
    ("M1", "T", "ISA", "t3"),
    ("S", "M2", "ISA", "t5"),
    ("S", "M2", "ISA", "t1", "active", "OTHER"),
    ("M2", "T", "PART_OF", "t7"),
    ("S", "X", "ISA", "t2"),
    ("X", "Y", "ISA", "t4"),
    ("Y", "T", "ISA", "t0"),
]
TIES_CUIS = {c for row in TIES for c in row[:2]}


def random_graph(seed: int, n_nodes: int = 40, n_edges: int = 90, types=("ISA", "PART_OF", "MAY_TREAT", "RELATED_TO")):
    """A random multigraph: duplicated pairs, both directions, some rejected and excluded edges."""
    rng = random.Random(seed)
    cuis = [f"C{i:04d}" for i in range(n_nodes)]
    rows = []
    for j in range(n_edges):
        a, b = rng.sample(cuis, 2)
        kind = rng.random()
        status = "rejected" if kind < 0.08 else "active"
        rel_type = "CONCEPT_IN_SUBSET" if 0.08 <= kind < 0.14 else rng.choice(types)
        rows.append((a, b, rel_type, f"r{rng.randrange(10**6):06d}-{j}", status))
    return cuis, rows
