"""UMLS semantic types and semantic groups (the public SemGroups mapping shipped as data)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import polars as pl

# When a concept's types fall in several groups, the first group here names it: clinical groups
# before generic ones, so a drug that is also a "Substance" stays CHEM and a disease that is also
# a "Finding" stays DISO.
GROUP_PRIORITY: tuple[str, ...] = (
    "DISO",
    "CHEM",
    "PROC",
    "ANAT",
    "PHYS",
    "DEVI",
    "LIVB",
    "GENE",
    "PHEN",
    "ACTI",
    "OBJC",
    "CONC",
    "OCCU",
    "ORGA",
    "GEOG",
)
UNKNOWN_GROUP = "UNKN"


@dataclass(frozen=True)
class SemanticType:
    tui: str
    name: str
    group: str
    group_name: str


@lru_cache(maxsize=1)
def semantic_types() -> dict[str, SemanticType]:
    """TUI -> SemanticType, from graphkit/data/kg/semgroups/SemGroups.txt."""
    text = resources.files("graphkit").joinpath("data/kg/semgroups/SemGroups.txt").read_text(encoding="utf-8")
    types: dict[str, SemanticType] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        group, group_name, tui, name = line.split("|")
        types[tui] = SemanticType(tui=tui, name=name, group=group, group_name=group_name)
    return types


def group_of(tuis: list[str] | tuple[str, ...]) -> str:
    """The semantic group of a concept with these types (GROUP_PRIORITY breaks ties; UNKN if none known)."""
    table = semantic_types()
    groups = {table[t].group for t in tuis if t in table}
    for group in GROUP_PRIORITY:
        if group in groups:
            return group
    return UNKNOWN_GROUP


def semgroups_frame() -> pl.DataFrame:
    """TUI, STY, semantic_group, group_rank (lower wins) as a frame for vectorized joins."""
    rank = {g: i for i, g in enumerate(GROUP_PRIORITY)}
    rows = [(t.tui, t.name, t.group, rank.get(t.group, len(rank))) for t in semantic_types().values()]
    return pl.DataFrame(
        rows,
        schema={"TUI": pl.String, "STY": pl.String, "semantic_group": pl.String, "group_rank": pl.Int32},
        orient="row",
    )
