"""Knowledge-graph build: a release + MIMIC-IV links -> the graph store (`ehr-r1 graph build`)."""

from graphkit.kg.build import BuildConfig, BuildResult, build_graph, graph_info
from graphkit.kg.hooks import register_post_build, unregister_post_build

__all__ = [
    "BuildConfig",
    "BuildResult",
    "build_graph",
    "graph_info",
    "register_post_build",
    "unregister_post_build",
]
