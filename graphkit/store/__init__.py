"""The GraphStore protocol and its backends (embedded FalkorDB, Neo4j). See docs/interfaces.md §3a."""

from __future__ import annotations

import os
from typing import Any

from graphkit.errors import ConfigError
from graphkit.store.base import GraphStore
from graphkit.workspace import Workspace, resolve_workspace

BACKENDS = ("embedded", "neo4j")

__all__ = ["BACKENDS", "GraphStore", "open_store"]


def open_store(
    workspace: Workspace | str | os.PathLike[str] | None = None,
    backend: str = "embedded",
    *,
    graph: str = "kg",
    uri: str | None = None,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
    **options: Any,
) -> GraphStore:
    """Open the workspace's graph. Embedded: starts or attaches to its FalkorDB server.

    Neo4j: ``uri``/``user``/``password`` or NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD.
    ``options`` go to the backend (embedded: ``linger``; neo4j: ``dialect``, ``connection_timeout``).
    """
    if backend == "embedded":
        from graphkit.store.embedded import EmbeddedStore

        ws = workspace if isinstance(workspace, Workspace) else resolve_workspace(workspace)
        return EmbeddedStore(ws.graph, graph=graph, **options)
    if backend == "neo4j":
        from graphkit.store.neo4j_store import Neo4jStore

        return Neo4jStore(uri=uri, user=user, password=password, database=database, **options)
    raise ConfigError(
        "unknown graph backend", where="backend", value=backend, fix=f"use one of {', '.join(BACKENDS)}"
    )
