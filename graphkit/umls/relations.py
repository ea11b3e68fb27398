"""From MRREL's (CUI1, REL, CUI2, RELA) rows to directed, typed edges: one per fact.

Direction (pinned, see docs/interfaces.md §3). UMLS states each MRREL row backwards: REL and
RELA are "the relationship of the second concept to the first", so the row
``CUI1=C_parent | CHD | CUI2=C_child | RELA=isa`` says "C_child isa C_parent". Every fact is
published twice, once from each side (``C_child | PAR | C_parent | inverse_isa`` is the other
row). ehr-r1 keeps one edge per fact, ``(a)-[:T]->(b)`` read as "a T b":

1. name = RELA when the row has one, else REL; the row states "CUI2 name CUI1".
2. Each name has an inverse (MRDOC ``rel_inverse`` / ``rela_inverse`` rows, else the built-in
   table below). Of a pair, the *forward* name is chosen by fixed rules (``forward_name``); a row
   stated with the other name is turned round (a, b swapped, names swapped).
3. A name that is its own inverse (RO, SY, ``associated_with``...) is symmetric: the edge points
   from the smaller CUI to the larger, so both rows collapse.
4. The relationship type is the forward name made a label: ``isa`` -> ``ISA``,
   ``may_treat`` -> ``MAY_TREAT``; without RELA the REL gives it (CHD -> ``CHILD_OF``,
   RN -> ``NARROWER_THAN``, RO -> ``RELATED_TO``...). Names clashing with the engine's own
   relationship types get the prefix ``SRC_``.
5. Rows with REL ``XR`` (explicitly not related) or ``DEL`` and self-loops carry no edge.

A RELA with no known inverse is kept as stated (rule 1) and not collapsed; the reader counts and
logs them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# REL -> (inverse REL, type of the forward reading or None when REL is the backward member)
REL_TABLE: dict[str, tuple[str, str | None]] = {
    "CHD": ("PAR", "CHILD_OF"),  # "CUI2 CHD CUI1": CUI2 is a child of CUI1
    "PAR": ("CHD", None),
    "RN": ("RB", "NARROWER_THAN"),  # "CUI2 RN CUI1": CUI2 is narrower than CUI1
    "RB": ("RN", None),
    "QB": ("AQ", "CAN_BE_QUALIFIED_BY"),
    "AQ": ("QB", None),
    "RO": ("RO", "RELATED_TO"),
    "RQ": ("RQ", "POSSIBLY_SYNONYMOUS_WITH"),
    "RL": ("RL", "SIMILAR_TO"),
    "SY": ("SY", "SYNONYM_OF"),
    "SIB": ("SIB", "SIBLING_OF"),
    "RU": ("RU", "RELATED_UNSPECIFIED"),
}
NO_EDGE_RELS = frozenset({"XR", "DEL", ""})

# Relationship types the engine itself creates; a source relation may not take these names.
RESERVED_TYPES = frozenset({"CODE_OF", "MAPS_TO", "ASSOCIATED_WITH"})
RESERVED_PREFIX = "SRC_"

# Inverse RELA pairs used when a release has no MRDOC (the demo graph writes its own MRDOC).
BUILTIN_RELA_INVERSES: dict[str, str] = {}
for _a, _b in [
    ("isa", "inverse_isa"),
    ("part_of", "has_part"),
    ("member_of", "has_member"),
    ("may_treat", "may_be_treated_by"),
    ("may_prevent", "may_be_prevented_by"),
    ("may_diagnose", "may_be_diagnosed_by"),
    ("palliates", "palliated_by"),
    ("has_finding_site", "finding_site_of"),
    ("has_associated_morphology", "associated_morphology_of"),
    ("has_causative_agent", "causative_agent_of"),
    ("cause_of", "due_to"),
    ("has_ingredient", "ingredient_of"),
    ("has_tradename", "tradename_of"),
    ("mapped_to", "mapped_from"),
    ("classified_as", "classifies"),
    ("has_manifestation", "manifestation_of"),
    ("has_component", "component_of"),
    ("has_method", "method_of"),
    ("has_mechanism_of_action", "mechanism_of_action_of"),
    ("has_physiologic_effect", "physiologic_effect_of"),
    ("has_symptom", "symptom_of"),
    ("has_location", "location_of"),
    ("has_material_basis", "material_basis_of"),
    ("has_pharmacologic_class", "pharmacologic_class_of"),
    ("high_result_indicates", "indicated_by_high_result"),
    ("low_result_indicates", "indicated_by_low_result"),
    ("abnormal_result_indicates", "indicated_by_abnormal_result"),
    ("measures", "measured_by"),
]:
    BUILTIN_RELA_INVERSES[_a] = _b
    BUILTIN_RELA_INVERSES[_b] = _a
for _s in ("associated_with", "resembles", "same_as", "possibly_equivalent_to", "sibling_of"):
    BUILTIN_RELA_INVERSES[_s] = _s

# Of an inverse pair, these names are forward even where the general rules would pick the other:
# child-to-whole readings, so hierarchy edges all point upwards like ISA.
PINNED_FORWARD = frozenset(
    {
        "isa",
        "part_of",
        "member_of",
        "mapped_to",
        "cause_of",
        "may_treat",
        "may_prevent",
        "may_diagnose",
        "high_result_indicates",
        "low_result_indicates",
        "abnormal_result_indicates",
    }
)


def forward_name(a: str, b: str) -> str:
    """Which of the inverse pair (a, b) is the forward reading.

    Rules, first that decides: a pinned name; the one not starting with ``inverse_``; a ``has_*``
    name over a ``*_of`` name; the one not ending in ``_by``; the alphabetically smaller.
    """
    if a == b:
        return a
    for x, y in ((a, b), (b, a)):
        if x in PINNED_FORWARD and y not in PINNED_FORWARD:
            return x
    for x, y in ((a, b), (b, a)):
        if y.startswith("inverse_") and not x.startswith("inverse_"):
            return x
    for x, y in ((a, b), (b, a)):
        if x.startswith("has_") and y.endswith("_of"):
            return x
    for x, y in ((a, b), (b, a)):
        if y.endswith("_by") and not x.endswith("_by"):
            return x
    return min(a, b)


_LABEL_CLEAN = re.compile(r"[^A-Z0-9]+")
TYPE_PATTERN = r"^[A-Z][A-Z0-9_]{0,62}$"


def type_label(name: str) -> str:
    """A relation name as a relationship-type label: upper case, [A-Z0-9_], starts with a letter."""
    label = _LABEL_CLEAN.sub("_", name.upper()).strip("_")
    if not label:
        raise ValueError(f"relation name {name!r} has no letters or digits")
    if not label[0].isalpha():
        label = "R_" + label
    label = label[:63]
    if label in RESERVED_TYPES:
        label = RESERVED_PREFIX + label
    return label


@dataclass(frozen=True)
class Reading:
    """How a row stating "CUI2 <name> CUI1" becomes an edge."""

    keep: bool
    swap: bool  # True: edge is CUI1 -> CUI2; False: CUI2 -> CUI1 (before symmetric ordering)
    symmetric: bool  # order the two CUIs instead (smaller first)
    type: str
    rel: str  # REL of the forward reading
    rela: str  # RELA of the forward reading ("" when the row had none)
    inverse_rel: str
    inverse_rela: str
    collapsed: bool  # False when the inverse is unknown (the fact may appear twice)


DROP = Reading(False, False, False, "", "", "", "", "", True)


class RelationNames:
    """Inverse names for REL and RELA values: MRDOC when given, else the built-in tables."""

    def __init__(self, rela_inverses: Mapping[str, str] | None = None):
        self.rela_inverses: dict[str, str] = dict(BUILTIN_RELA_INVERSES)
        if rela_inverses:
            self.rela_inverses.update(rela_inverses)

    @classmethod
    def from_mrdoc_rows(cls, rows: Iterable[tuple[str, str, str, str]]) -> RelationNames:
        """``rows`` as MRDOC (DOCKEY, VALUE, TYPE, EXPL); uses the ``RELA ... rela_inverse`` rows."""
        inverses = {}
        for dockey, value, kind, expl in rows:
            if dockey == "RELA" and kind == "rela_inverse" and value and expl:
                inverses[value] = expl
        return cls(inverses)

    def reading(self, rel: str, rela: str) -> Reading:
        if rel in NO_EDGE_RELS and not rela:
            return DROP
        if rel in ("XR", "DEL"):
            return DROP
        inverse_rel, rel_forward_type = REL_TABLE.get(rel, (rel, None))
        if rela:
            inverse_rela = self.rela_inverses.get(rela)
            if inverse_rela is None:
                return Reading(True, False, False, type_label(rela), rel, rela, inverse_rel, "", False)
            if inverse_rela == rela:
                return Reading(True, False, True, type_label(rela), rel, rela, inverse_rel, rela, True)
            forward = forward_name(rela, inverse_rela)
            if forward == rela:
                return Reading(
                    True, False, False, type_label(rela), rel, rela, inverse_rel, inverse_rela, True
                )
            return Reading(
                True, True, False, type_label(inverse_rela), inverse_rel, inverse_rela, rel, rela, True
            )
        if rel not in REL_TABLE:
            return Reading(True, False, False, type_label(rel), rel, "", rel, "", False)
        if inverse_rel == rel:
            return Reading(True, False, True, rel_forward_type or type_label(rel), rel, "", rel, "", True)
        if rel_forward_type is not None:
            return Reading(True, False, False, rel_forward_type, rel, "", inverse_rel, "", True)
        forward_type = REL_TABLE[inverse_rel][1] or type_label(inverse_rel)
        return Reading(True, True, False, forward_type, inverse_rel, "", rel, "", True)
