"""Association mining, typed path search and thinking-graph objects (docs/interfaces.md §8).

    from graphkit.thinking import (Snapshot, ThinkingGraphBuilder, AssociationIndex, ThinkingOptions,
                                   mine_associations, sample_concepts, ThinkingGraph)
"""

from graphkit.thinking.builder import (
    AssociationIndex,
    ThinkingGraphBuilder,
    build_parallel,
    thinking_requests,
)
from graphkit.thinking.mining import MiningResult, mine_associations, sample_concepts
from graphkit.thinking.model import Edge, Node, Step, ThinkingGraph
from graphkit.thinking.options import MiningOptions, SearchOptions, ThinkingOptions
from graphkit.thinking.search import FoundPath, PairResult, PathFinder
from graphkit.thinking.snapshot import Snapshot
from graphkit.thinking.store_search import StoreAdjacency

__all__ = [
    "AssociationIndex",
    "Edge",
    "FoundPath",
    "MiningOptions",
    "MiningResult",
    "Node",
    "PairResult",
    "PathFinder",
    "SearchOptions",
    "Snapshot",
    "Step",
    "StoreAdjacency",
    "ThinkingGraph",
    "ThinkingGraphBuilder",
    "ThinkingOptions",
    "build_parallel",
    "mine_associations",
    "sample_concepts",
    "thinking_requests",
]
