"""The Neo4j backend: the official ``neo4j`` driver (extra ``neo4j``), imported only here.

The password comes from the argument or NEO4J_PASSWORD and is only ever handed to the driver:
it is not stored on the object, not logged, and not part of any error message.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Any

from graphkit.errors import ConfigError, StoreError
from graphkit.extras import require
from graphkit.progress import NULL_PROGRESS, Progress
from graphkit.store import schema
from graphkit.store.base import (
    BaseStore,
    cypher_error,
    is_write,
    node_value,
    relationship_slots,
    relationship_value,
)
from graphkit.store.vocab import Vocabulary

log = logging.getLogger(__name__)

URI_ENV, USER_ENV, PASSWORD_ENV, DATABASE_ENV = "NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE"
_POSITION = re.compile(r"\(line (\d+), column (\d+) \(offset: \d+\)\)")
DIALECTS = ("neo4j", "falkordb")
_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


class Neo4jStore(BaseStore):
    backend = "neo4j"

    def __init__(
        self,
        *,
        uri: str | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        dialect: str | None = None,
        connection_timeout: float = 10.0,
        vocab: Vocabulary | None = None,
    ):
        super().__init__(vocab)
        neo4j = require("neo4j", "neo4j", "the neo4j graph backend")
        self.uri = uri or os.environ.get(URI_ENV)
        if not self.uri:
            raise ConfigError(
                "no Neo4j URI", where="--uri", fix=f"pass --uri bolt://host:7687 or set {URI_ENV}"
            )
        self.user = user or os.environ.get(USER_ENV) or "neo4j"
        self.database = database or os.environ.get(DATABASE_ENV) or None
        scheme = self.uri.split("://", 1)[0] if "://" in self.uri else ""
        if scheme not in _SCHEMES:
            raise ConfigError(
                "not a Bolt URI",
                where="--uri",
                value=self.uri,
                fix="e.g. bolt://localhost:7687 or neo4j://host:7687",
            )
        secret = password if password is not None else os.environ.get(PASSWORD_ENV)
        auth = (self.user, secret) if secret else None
        has_auth = auth is not None
        where = (
            f"Neo4j at {self.uri} (user {self.user})"
            if has_auth
            else f"Neo4j at {self.uri} (no authentication)"
        )
        try:
            self._driver = neo4j.GraphDatabase.driver(
                self.uri, auth=auth, connection_timeout=connection_timeout
            )
        except (ValueError, neo4j.exceptions.ConfigurationError):
            raise ConfigError(
                "not a usable Neo4j URI",
                where="--uri",
                value=self.uri,
                fix="e.g. bolt://localhost:7687 or neo4j://host:7687",
            ) from None
        del secret, auth
        try:
            self._driver.verify_connectivity()
        except neo4j.exceptions.AuthError:
            self._driver.close()
            raise StoreError(
                "Neo4j refused the user name or password",
                where=where,
                fix=f"check {USER_ENV} / {PASSWORD_ENV} (or --user / --ask-password)",
            ) from None
        except (neo4j.exceptions.ServiceUnavailable, OSError):
            self._driver.close()
            problem = (
                "cannot reach the server, or it closed the connection at login"
                if has_auth
                else "cannot reach the server"
            )
            raise StoreError(
                problem, where=where, fix=f"start it, or correct --uri / {URI_ENV} and the credentials"
            ) from None
        except neo4j.exceptions.Neo4jError as exc:
            self._driver.close()
            raise StoreError(
                "the server refused the connection",
                where=where,
                value=exc.code or type(exc).__name__,
                fix=f"check {USER_ENV} / {PASSWORD_ENV} and that it is a Neo4j 5 server",
            ) from None
        self._where = where
        self.dialect = dialect or self._detect_dialect()
        if self.dialect not in DIALECTS:
            raise ConfigError(
                "unknown Cypher dialect", where="dialect", value=self.dialect, fix="neo4j or falkordb"
            )
        self._load_vocabulary()

    def __repr__(self) -> str:
        return f"Neo4jStore(uri={self.uri!r}, user={self.user!r}, database={self.database!r})"

    def _detect_dialect(self) -> str:
        """FalkorDB's Bolt endpoint calls itself Neo4j; it has no dbms.components() procedure."""
        neo4j = require("neo4j", "neo4j")
        try:
            with self._driver.session(database=self.database) as session:
                session.run("CALL dbms.components() YIELD name RETURN name").consume()
            return "neo4j"
        except neo4j.exceptions.Neo4jError:
            return "falkordb"

    # ---- queries
    def _execute(
        self, text: str, params: dict[str, Any], name: str, *, retry_safe: bool, read_only: bool = False
    ) -> list[dict]:
        neo4j = require("neo4j", "neo4j")
        if self._closed:
            raise StoreError("the store is closed", where=self._where)
        if self.dialect == "falkordb" and _unsafe_for_falkordb_bolt(params):
            # FalkorDB 4.16's Bolt endpoint pastes values into the query text unescaped: the value
            # "x' MATCH (n) DETACH DELETE n //" deletes the graph, and "\\b" becomes a backspace
            raise ConfigError(
                "FalkorDB's Bolt endpoint cannot carry values with ' or \\ safely (it pastes them into the query)",
                where=f"cypher query '{name}'",
                fix="use the embedded backend (or a real Neo4j) for such values",
            )

        def work(tx):
            result = tx.run(text, params)
            return [{key: _value(record[key]) for key in record.keys()} for record in result]

        try:
            with self._driver.session(database=self.database) as session:
                if read_only or not is_write(text):
                    return session.execute_read(work)
                if retry_safe:
                    return session.execute_write(work)
                # a non-idempotent write is sent once: the driver's retries could apply it twice
                return _run_once(session, text, params)
        except neo4j.exceptions.CypherSyntaxError as exc:
            match = _POSITION.search(exc.message or "")
            position = (int(match.group(1)), int(match.group(2))) if match else None
            first_line = (exc.message or str(exc)).splitlines()[0]
            raise cypher_error(name, f"syntax error: {first_line}", text, position) from None
        except neo4j.exceptions.ServiceUnavailable:
            raise StoreError(
                "lost the connection to Neo4j", where=self._where, fix="check the server and retry"
            ) from None
        except neo4j.exceptions.Neo4jError as exc:
            if read_only and exc.code and "AccessMode" in exc.code:
                raise StoreError(
                    "the query writes to the graph, and it was run read-only",
                    where=f"cypher query '{name}'",
                    fix="allow writes (`ehr-r1 graph query --write`, or read_only=False)",
                ) from None
            message = (exc.message or str(exc)).splitlines()[0]
            raise cypher_error(name, f"{exc.code}: {message}" if exc.code else message, text) from None

    # ---- schema
    def ensure_schema(self) -> list[str]:
        return schema.apply_schema_file(self, "schema")

    def apply_schema_items(self, items: list[schema.SchemaItem]) -> list[str]:
        def execute(text: str) -> list[dict]:
            return self._execute(text, {}, "schema", retry_safe=True)

        if self.dialect == "falkordb":
            return schema.apply_falkordb(items, execute, None)
        return schema.apply_neo4j(items, execute)

    # ---- bulk
    def bulk_load(
        self,
        nodes: Mapping[str, Any] | None = None,
        relationships: Any = None,
        *,
        replace: bool = False,
        progress: Progress | None = None,
        batch_size: int = 10_000,
    ) -> dict:
        """Batched UNWIND CREATE; ``replace`` deletes the graph first (not atomic on Neo4j).

        For a first build at full UMLS scale, `ehr-r1 graph export --format neo4j-admin` and
        ``neo4j-admin database import full`` are much faster.
        """
        from graphkit.store import bulk

        started = time.perf_counter()
        progress = progress or NULL_PROGRESS
        existing = self.run("count_all_nodes")[0]["n"]
        if existing and not replace:
            raise StoreError(
                f"the database already has {existing} nodes",
                where=f"bulk load ({self._where})",
                fix="pass replace=True to delete them first, or add with merge_nodes/merge_relationships",
            )
        vocab, node_frames, rel_frames = bulk.check_bulk_input(self._vocab, nodes, relationships)
        ids = bulk.node_ids(vocab, node_frames)
        bulk.endpoint_ids(vocab, rel_frames, ids)  # every endpoint is in the load, before anything is deleted
        if existing:
            self.clear()
        counts: dict[str, dict[str, int]] = {"nodes": {}, "relationships": {}}
        for label, frame in node_frames.items():
            rows = (row for part in bulk.rows_of(frame, batch_size) for row in part)
            counts["nodes"][label] = self._bulk_write(
                "create_nodes", rows, batch_size, {"node_label": label}, progress, vocab
            )
        for rel_type, frame in rel_frames.items():
            slots = relationship_slots(vocab, rel_type)
            rows = (
                {
                    "src": row.pop("src"),
                    "dst": row.pop("dst"),
                    "properties": {k: v for k, v in row.items() if v is not None},
                }
                for part in bulk.rows_of(frame, batch_size)
                for row in part
            )
            counts["relationships"][rel_type] = self._bulk_write(
                "create_relationships", rows, batch_size, slots, progress, vocab
            )
        return self._finish_bulk(vocab, counts, "UNWIND CREATE", started)

    def _bulk_write(self, name, rows, batch_size, slots, progress, vocab) -> int:
        saved, self._vocab = self._vocab, vocab
        try:
            return self.write(name, rows, batch_size=batch_size, slots=slots, progress=progress)
        finally:
            self._vocab = saved

    # ---- the rest of the protocol
    def stats(self) -> dict:
        from graphkit.store.stats import collect

        info = self._driver.get_server_info()
        return collect(
            self,
            backend={
                "backend": self.backend,
                "uri": self.uri,
                "user": self.user,
                "database": self.database or "(server default)",
                "server_version": info.agent,
                "dialect": self.dialect,
            },
        )

    def clear(self) -> None:
        """Delete every node and relationship, in batches (a single transaction would not fit)."""
        while self.run("delete_some_nodes", limit=10_000)[0]["deleted"]:
            pass
        self._vocab = Vocabulary()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._driver.close()


_BRIDGE_UNSAFE = re.compile(r"['\\]")
_BRIDGE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _unsafe_for_falkordb_bolt(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_BRIDGE_UNSAFE.search(value))
    if isinstance(value, Mapping):
        return any(
            not _BRIDGE_KEY.match(str(key)) or _unsafe_for_falkordb_bolt(item) for key, item in value.items()
        )
    if isinstance(value, (list, tuple)):
        return any(_unsafe_for_falkordb_bolt(item) for item in value)
    return False


def _run_once(session, text: str, params: dict[str, Any]) -> list[dict]:
    with session.begin_transaction() as tx:
        result = tx.run(text, params)
        rows = [{key: _value(record[key]) for key in record.keys()} for record in result]
        tx.commit()
    return rows


def _value(value: Any) -> Any:
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Node):
        return node_value(value.element_id, value.labels, dict(value))
    if isinstance(value, Relationship):
        return relationship_value(
            value.element_id,
            value.type,
            value.start_node.element_id if value.start_node is not None else None,
            value.end_node.element_id if value.end_node is not None else None,
            dict(value),
        )
    if isinstance(value, Path):
        return {
            "nodes": [_value(n) for n in value.nodes],
            "relationships": [_value(r) for r in value.relationships],
        }
    if isinstance(value, list):
        return [_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _value(item) for key, item in value.items()}
    return value
