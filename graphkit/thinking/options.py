"""Options of association mining and path search, validated, hashable into config hashes.

Defaults follow the EHR-R1 reference (thinking_graph_preprocess/): support >= 5, lift > 5,
top 20 associated context concepts per target; bidirectional search of <= 10 hops a side,
<= 10 paths and <= 2,000 expanded nodes, without subset-membership and contraindication
relations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from graphkit.errors import ConfigError
from graphkit.hashing import config_hash

# The reference drops these UMLS RELAs ("subset includes concept", "concept in subset",
# "Has contraindicated drug", "Contraindicated with disease"). Both members of each inverse
# pair are listed because the forward member a release stores depends on its MRDOC.
REFERENCE_EXCLUDED_TYPES: frozenset[str] = frozenset(
    {
        "SUBSET_INCLUDES_CONCEPT",
        "CONCEPT_IN_SUBSET",
        "HAS_CONTRAINDICATED_DRUG",
        "CONTRAINDICATED_WITH_DISEASE",
    }
)
# Mined associations are statistics, not knowledge: traversing them would make every
# (evidence, target) pair a trivial one-hop path.
ASSOCIATION_TYPE = "ASSOCIATED_WITH"
DEFAULT_EXCLUDED_TYPES: frozenset[str] = REFERENCE_EXCLUDED_TYPES | {ASSOCIATION_TYPE}

DIRECTIONS = ("both", "forward")


def _check(condition: bool, option: str, value: Any, fix: str) -> None:
    if not condition:
        raise ConfigError("invalid value", where=f"option {option}", value=value, fix=fix)


@dataclass(frozen=True)
class MiningOptions:
    """Association mining: which (context concept -> target concept) pairs become edges.

    ``support`` is the number of train samples of the task whose context holds the context
    concept and whose gold targets hold the target concept; ``confidence`` = support / samples
    with the context concept; ``lift`` = support * samples / (context samples * target samples).
    """

    min_support: int = 5
    min_lift: float = 5.0  # strict: lift > min_lift, as the reference's threshold
    min_confidence: float = 0.0
    top_k: int = 20  # per (task, target concept), best lift first

    def __post_init__(self) -> None:
        _check(self.min_support >= 1, "--min-support", self.min_support, "use an integer >= 1")
        _check(self.min_lift >= 0, "--min-lift", self.min_lift, "use a number >= 0")
        _check(0 <= self.min_confidence <= 1, "--min-confidence", self.min_confidence, "use a number in [0, 1]")
        _check(self.top_k >= 1, "--top-k", self.top_k, "use an integer >= 1")

    def as_dict(self) -> dict:
        return asdict(self)

    def hash(self) -> str:
        return config_hash({"mining": self.as_dict()})


@dataclass(frozen=True)
class SearchOptions:
    """Typed path search between one evidence concept and one target concept.

    ``direction``: "both" follows each stored edge either way (a UMLS fact is stored once, read
    forward or backward; the path keeps the stored direction), "forward" only source -> target.
    ``max_hops``: levels each side of the bidirectional search may grow (a path has at most twice
    as many edges). ``max_expanded``: nodes whose neighbours may be read, both sides together;
    a search that would pass it gives up without a path. ``max_paths``: shortest paths returned
    per pair, the lexicographically smallest edge-id sequences first.
    """

    direction: str = "both"
    max_hops: int = 10
    max_paths: int = 10
    max_expanded: int = 2000
    excluded_types: frozenset[str] = field(default=DEFAULT_EXCLUDED_TYPES)

    def __post_init__(self) -> None:
        _check(self.direction in DIRECTIONS, "--direction", self.direction, "use 'both' or 'forward'")
        _check(1 <= self.max_hops <= 100, "--max-hops", self.max_hops, "use an integer in 1..100")
        _check(self.max_paths >= 1, "--max-paths", self.max_paths, "use an integer >= 1")
        _check(self.max_expanded >= 1, "--max-expanded", self.max_expanded, "use an integer >= 1")
        object.__setattr__(self, "excluded_types", frozenset(self.excluded_types))

    def as_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["excluded_types"] = sorted(self.excluded_types)
        return data

    def with_(self, **changes) -> SearchOptions:
        return replace(self, **changes)


@dataclass(frozen=True)
class ThinkingOptions:
    """What goes into one thinking graph."""

    search: SearchOptions = field(default_factory=SearchOptions)
    max_evidence: int = 20  # associated context concepts searched per target, best lift first
    paths_per_pair: int = 1  # the reference keeps the single shortest path of each pair
    max_targets: int | None = None  # None: every gold target concept

    def __post_init__(self) -> None:
        _check(self.max_evidence >= 1, "--max-evidence", self.max_evidence, "use an integer >= 1")
        _check(
            1 <= self.paths_per_pair <= self.search.max_paths,
            "--paths-per-pair",
            self.paths_per_pair,
            f"use an integer in 1..max_paths ({self.search.max_paths})",
        )
        _check(
            self.max_targets is None or self.max_targets >= 1,
            "--max-targets",
            self.max_targets,
            "use an integer >= 1 or leave it out",
        )

    def as_dict(self) -> dict:
        return {
            "search": self.search.as_dict(),
            "max_evidence": self.max_evidence,
            "paths_per_pair": self.paths_per_pair,
            "max_targets": self.max_targets,
        }

    def hash(self) -> str:
        return config_hash({"thinking": self.as_dict()})
