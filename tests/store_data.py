"""Shared pieces of the graph store tests: servers, stores on every backend, a small graph."""

from __future__ import annotations

import contextlib
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphkit.store import open_store
from graphkit.store.server import FalkorServer

# A hand-made graph with the shapes that matter: a hierarchy, lateral relations in both
# directions, two sources stating the same pair, a rejected edge with an active detour, and
# a name with quotes, braces and non-ASCII text.
CONCEPTS = [
    {"cui": "C0011849", "name": "Diabetes mellitus", "semantic_types": ["T047"], "semantic_group": "DISO"},
    {
        "cui": "C0011860",
        "name": "Type 2 diabetes mellitus",
        "semantic_types": ["T047"],
        "semantic_group": "DISO",
    },
    {
        "cui": "C0011854",
        "name": "Type 1 diabetes mellitus",
        "semantic_types": ["T047"],
        "semantic_group": "DISO",
    },
    {"cui": "C0025598", "name": "Metformin", "semantic_types": ["T109", "T121"], "semantic_group": "CHEM"},
    {"cui": "C0021641", "name": "Insulin", "semantic_types": ["T116"], "semantic_group": "CHEM"},
    {"cui": "C0020456", "name": "Hyperglycemia", "semantic_types": ["T033"], "semantic_group": "DISO"},
    {"cui": "C0012634", "name": "Disease", "semantic_types": ["T047"], "semantic_group": "DISO"},
    {
        "cui": "C0000001",
        "name": 'The "odd" name {with} ümlauts; //',
        "semantic_types": [],
        "semantic_group": "DISO",
    },
    {"cui": "C0000002", "name": "Duplicate name"},
    {"cui": "C0000003", "name": "Duplicate name"},
    {"cui": "C0000004", "name": "Isolated concept"},
]
RELATIONS = {
    "ISA": [
        {
            "src": "C0011860",
            "dst": "C0011849",
            "rel": "CHD",
            "rela": "isa",
            "sab": "SNOMEDCT_US",
            "source": "umls",
        },
        {
            "src": "C0011854",
            "dst": "C0011849",
            "rel": "CHD",
            "rela": "isa",
            "sab": "SNOMEDCT_US",
            "source": "umls",
        },
        {
            "src": "C0011849",
            "dst": "C0012634",
            "rel": "CHD",
            "rela": "isa",
            "sab": "SNOMEDCT_US",
            "source": "umls",
        },
        # stated twice by two vocabularies: two edges, two edge ids
        {"src": "C0011849", "dst": "C0012634", "rel": "CHD", "rela": "isa", "sab": "MSH", "source": "umls"},
    ],
    "MAY_TREAT": [
        {
            "src": "C0025598",
            "dst": "C0011860",
            "rel": "RO",
            "rela": "may_treat",
            "sab": "MED-RT",
            "source": "umls",
        },
        {
            "src": "C0021641",
            "dst": "C0011849",
            "rel": "RO",
            "rela": "may_treat",
            "sab": "MED-RT",
            "source": "umls",
        },
        # rejected by a curator: never traversed, the detour through C0011849 remains
        {
            "src": "C0021641",
            "dst": "C0011854",
            "rel": "RO",
            "rela": "may_treat",
            "sab": "MED-RT",
            "status": "rejected",
        },
    ],
    "HAS_MANIFESTATION": [
        {"src": "C0011849", "dst": "C0020456", "rel": "RO", "rela": "has_manifestation", "sab": "MSH"},
    ],
}
CODES = [
    {
        "id": "ICD10CM:E11.9",
        "sab": "ICD10CM",
        "code": "E11.9",
        "name": "Type 2 diabetes mellitus without complications",
    },
    {
        "id": "ICD9CM:250.00",
        "sab": "ICD9CM",
        "code": "250.00",
        "name": "Diabetes mellitus without mention of complication",
    },
]
CODE_OF = [{"src": "ICD10CM:E11.9", "dst": "C0011860"}, {"src": "ICD9CM:250.00", "dst": "C0011849"}]
ITEMS = [{"id": "labevents:50931", "table": "labevents", "code": "50931", "name": "Glucose"}]
MAPS_TO = [{"src": "labevents:50931", "dst": "C0020456", "method": "loinc", "score": 1.0}]


def load_small_graph(store) -> None:
    """The hand-made graph through the batched UNWIND path (merge_*), twice to prove idempotence."""
    store.register_relation_types(RELATIONS)
    for _ in range(2):
        store.merge_nodes("Concept", CONCEPTS)
        store.merge_nodes("Code", CODES)
        store.merge_nodes("Item", ITEMS)
        for rel_type, rows in RELATIONS.items():
            store.merge_relationships(rel_type, rows)
        store.merge_relationships("CODE_OF", CODE_OF)
        store.merge_relationships("MAPS_TO", MAPS_TO)


def small_graph_bulk() -> tuple[dict, dict]:
    return (
        {"Concept": CONCEPTS, "Code": CODES, "Item": ITEMS},
        {**RELATIONS, "CODE_OF": CODE_OF, "MAPS_TO": MAPS_TO},
    )


def free_bolt_port() -> int:
    """A free loopback port FalkorDB accepts: its BOLT_PORT is silently ignored above 32767."""
    for _ in range(200):
        port = random.randint(20000, 32767)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port for the Bolt test server")


@contextlib.contextmanager
def bolt_endpoint(graph_dir: Path) -> Iterator[str]:
    """A FalkorDB server with its Bolt endpoint on loopback: the neo4j backend's test double.

    Pinned FalkorDB 4.16 limits: in memory only (a Bolt write aborts the server while AOF is
    on), and once a Bolt connection closes the endpoint accepts no new one and SHUTDOWN
    hangs; so one driver per server, and the server is killed at the end.
    """
    port = free_bolt_port()
    server = FalkorServer(graph_dir, bolt_port=port, persistent=False, linger=0, probe_timeout=1)
    server.acquire()
    try:
        yield f"bolt://127.0.0.1:{port}"
    finally:
        server.stop(force=True, timeout=2)


@pytest.fixture(scope="session")
def embedded_session_store(tmp_path_factory):
    store = open_store(tmp_path_factory.mktemp("embedded-ws"), "embedded", graph="contract", linger=0)
    yield store
    store.close()


@pytest.fixture(scope="session")
def bridge_session_store(tmp_path_factory):
    with bolt_endpoint(tmp_path_factory.mktemp("bolt") / "graph") as uri:
        store = open_store(backend="neo4j", uri=uri)
        yield store
    store.close()  # after the server is gone: closing a live Bolt connection wedges the endpoint


@pytest.fixture(scope="session")
def real_neo4j_session_store():
    if not os.environ.get("NEO4J_URI"):
        pytest.skip("NEO4J_URI is not set")
    store = open_store(backend="neo4j")
    yield store
    store.close()


BACKEND_PARAMS = ["embedded", "neo4j-bridge", pytest.param("neo4j", marks=pytest.mark.neo4j)]


def backend_store(request):
    """The session store of ``request.param``, emptied for the test."""
    name = {
        "embedded": "embedded_session_store",
        "neo4j-bridge": "bridge_session_store",
        "neo4j": "real_neo4j_session_store",
    }
    store = request.getfixturevalue(name[request.param])
    store.clear()
    return store


def graph_files(data_dir: Path) -> dict[str, bytes]:
    """The persisted data of an embedded graph (to prove an error left it untouched)."""
    files = {}
    for path in sorted(data_dir.rglob("*")):
        if path.is_file() and (path.name == "dump.rdb" or "appendonlydir" in path.parts):
            files[str(path.relative_to(data_dir))] = path.read_bytes()
    return files
