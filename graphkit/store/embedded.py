"""The embedded backend: FalkorDB run by the store itself (graphkit.store.server)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from graphkit.errors import ConfigError, CypherError, StoreError
from graphkit.progress import NULL_PROGRESS, Progress
from graphkit.store import schema
from graphkit.store.base import BaseStore, cypher_error, node_value, relationship_value
from graphkit.store.server import FalkorServer, no_retry
from graphkit.store.vocab import Vocabulary

log = logging.getLogger(__name__)

_GRAPH_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_ERROR_POSITION = re.compile(r"errMsg: (.*?) line: (\d+), column: (\d+)", re.DOTALL)
_ERROR_CONTEXT = re.compile(r"errCtx: CYPHER ")


class EmbeddedStore(BaseStore):
    backend = "embedded"
    dialect = "falkordb"

    def __init__(
        self,
        graph_dir: str | Path,
        *,
        graph: str = "kg",
        linger: float | None = None,
        bolt_port: int | None = None,
        persistent: bool = True,
        vocab: Vocabulary | None = None,
    ):
        super().__init__(vocab)
        if not isinstance(graph, str) or not _GRAPH_NAME.match(graph):
            raise ConfigError(
                "not a valid graph name", where="graph", value=graph, fix="letters, digits, _ and -"
            )
        self.graph_name = graph
        self.server = FalkorServer(graph_dir, linger=linger, bolt_port=bolt_port, persistent=persistent)
        self._lease = self.server.acquire()
        try:
            self._connect()
            self._load_vocabulary()
        except BaseException:
            self.server.release(self._lease)
            raise

    def __repr__(self) -> str:
        return f"EmbeddedStore(graph={self.graph_name!r}, socket={str(self.server.socket)!r})"

    def _connect(self) -> None:
        from falkordb import FalkorDB

        self._db = FalkorDB(unix_socket_path=str(self.server.socket), retry=no_retry())
        self._graph = self._db.select_graph(self.graph_name)

    # ---- queries
    def _execute(
        self, text: str, params: dict[str, Any], name: str, *, retry_safe: bool, read_only: bool = False
    ) -> list[dict]:
        import redis

        if self._closed:
            raise StoreError("the store is closed", where=f"graph '{self.graph_name}'")
        try:
            return self._send(text, params, name, read_only)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            restarted = self.server.recover()
            self._connect()
            if restarted and not retry_safe:
                raise StoreError(
                    "the graph server stopped while this query ran and was restarted from its persisted data",
                    where=f"cypher query '{name}'",
                    fix="check whether its changes are there, then run it again",
                ) from exc
            return self._send(text, params, name, read_only)

    def _send(self, text: str, params: dict[str, Any], name: str, read_only: bool) -> list[dict]:
        import redis

        try:
            if read_only:
                if not self._db.connection.exists(self.graph_name):
                    self._graph.query("RETURN 0")  # GRAPH.RO_QUERY refuses a graph that was never written
                result = self._graph.ro_query(text, params or None)
            else:
                result = self._graph.query(text, params or None)
        except redis.exceptions.ResponseError as exc:
            raise self._error(exc, text, params, name) from None
        columns = [column[1] for column in result.header]
        return [dict(zip(columns, (_value(v) for v in row), strict=True)) for row in result.result_set]

    def _error(self, exc: Exception, text: str, params: dict[str, Any], name: str):
        message = str(exc)
        match = _ERROR_POSITION.search(message)
        if "RO_QUERY is to be executed only on read-only queries" in message:
            return CypherError(
                "the query writes to the graph, and it was run read-only",
                where=f"cypher query '{name}'",
                fix="allow writes (`ehr-r1 graph query --write`, or read_only=False)",
            )
        if match is None:
            return cypher_error(name, message, text)
        problem = match.group(1)
        if params and _ERROR_CONTEXT.search(message):
            # the client sends parameters as a "CYPHER name=value ..." prefix: the error is there
            return ConfigError(
                "the server could not read the parameters", where=f"cypher query '{name}'", value=problem
            )
        return cypher_error(
            name, f"syntax error: {problem}", text, (int(match.group(2)), int(match.group(3)))
        )

    # ---- schema
    def ensure_schema(self) -> list[str]:
        return schema.apply_schema_file(self, "schema")

    def apply_schema_items(self, items: list[schema.SchemaItem]) -> list[str]:
        def execute(text: str) -> list[dict]:
            return self._execute(text, {}, "schema", retry_safe=True)

        def create_unique(label: str, prop: str) -> None:
            import redis

            try:
                self._graph.create_node_unique_constraint(label, prop)
            except redis.exceptions.ResponseError as exc:
                if "already exists" not in str(exc):
                    raise StoreError(
                        "cannot create a unique constraint", where=f"{label}.{prop}", value=str(exc)
                    ) from exc

        applied = schema.apply_falkordb(items, execute, create_unique)
        if applied:
            log.info("schema: %d changes on graph '%s'", len(applied), self.graph_name)
        return applied

    def constraints(self) -> list[dict]:
        return self._execute(
            "CALL db.constraints() YIELD type, label, properties, status RETURN type, label, properties, status",
            {},
            "constraints",
            retry_safe=True,
        )

    # ---- bulk
    def bulk_load(
        self,
        nodes: Mapping[str, Any] | None = None,
        relationships: Any = None,
        *,
        replace: bool = False,
        progress: Progress | None = None,
    ) -> dict:
        """GRAPH.BULK into a staging graph, renamed over this one at the end (atomic for readers)."""

        import redis

        from graphkit.store import bulk

        started = time.perf_counter()
        progress = progress or NULL_PROGRESS
        existing = self._node_count()
        if existing and not replace:
            raise StoreError(
                f"graph '{self.graph_name}' already has {existing} nodes",
                where="bulk load",
                fix="pass replace=True to build a new graph in its place, or add to it with merge_nodes/merge_relationships",
            )
        vocab, node_frames, rel_frames = bulk.check_bulk_input(self._vocab, nodes, relationships)
        checked = time.perf_counter()
        staging = f"{self.graph_name}.staging.{uuid.uuid4().hex[:8]}"
        connection = self._db.connection
        counts: dict[str, dict[str, int]] = {"nodes": {}, "relationships": {}}
        ids = bulk.node_ids(vocab, node_frames)
        ends = bulk.endpoint_ids(vocab, rel_frames, ids)
        resolved = time.perf_counter()
        first = True
        paused = self._pause_background_saves()
        try:
            with ThreadPoolExecutor(max_workers=1) as sender:
                pending = None

                def submit(node_count: int, rel_count: int, label_tokens: list, type_tokens: list):
                    nonlocal pending, first
                    if pending is not None:
                        pending.result()
                    pending = sender.submit(
                        bulk.send,
                        connection,
                        staging,
                        first,
                        node_count,
                        rel_count,
                        label_tokens,
                        type_tokens,
                    )
                    first = False

                for label, frame in node_frames.items():
                    spec = vocab.node_spec(label)
                    handle = progress.start(f"bulk load {label}", len(frame))
                    for _, part in bulk.chunks(frame):
                        order, records = bulk.encode_records(part, spec.properties, None)
                        submit(len(part), 0, [bulk.header(label, order) + records], [])
                        progress.advance(handle, len(part))
                    progress.finish(handle)
                    counts["nodes"][label] = len(frame)
                for rel_type, frame in rel_frames.items():
                    spec = vocab.spec(rel_type)
                    src, dst = ends[rel_type]
                    handle = progress.start(f"bulk load {rel_type}", len(frame))
                    for start, part in bulk.chunks(frame):
                        part_ends = (src[start : start + len(part)], dst[start : start + len(part)])
                        order, records = bulk.encode_records(
                            part.drop("src", "dst"), spec.properties, part_ends
                        )
                        submit(0, len(part), [], [bulk.header(rel_type, order) + records])
                        progress.advance(handle, len(part))
                    progress.finish(handle)
                    counts["relationships"][rel_type] = len(frame)
                if pending is not None:
                    pending.result()
            if first:
                self._execute("RETURN 0", {}, "bulk load", retry_safe=True)  # nothing to load: an empty graph
            else:
                connection.rename(staging, self.graph_name)
        except BaseException:
            if connection.exists(staging):
                connection.delete(staging)
            raise
        finally:
            self._resume_background_saves(paused)
        self._graph = self._db.select_graph(self.graph_name)
        sent = time.perf_counter()
        counts["phases"] = {
            "check_seconds": round(checked - started, 3),  # model checks, edge ids
            "endpoints_seconds": round(resolved - checked, 3),
            "encode_send_seconds": round(sent - resolved, 3),
        }
        report = self._finish_bulk(vocab, counts, "GRAPH.BULK", started)
        if not first and self.server.persistent:
            try:
                connection.bgrewriteaof()  # fold the GRAPH.BULK payloads into an RDB base: faster restarts
            except redis.exceptions.ResponseError as exc:
                # the automatic rewrite, enabled again above, may have started first: same effect
                if "already in progress" not in str(exc):
                    raise
        return report

    def _pause_background_saves(self) -> dict[str, str]:
        """FalkorDB 4.16 can deadlock when a fork for an AOF rewrite or RDB save starts while a
        GRAPH.BULK is running (seen here: automatic AOF rewrite halfway through 5M edges), so
        neither may start during a bulk load. The AOF itself keeps logging every request."""
        connection = self._db.connection
        saved = {key: str(connection.config_get(key)[key]) for key in ("auto-aof-rewrite-percentage", "save")}
        connection.config_set("auto-aof-rewrite-percentage", 0)
        connection.config_set("save", "")
        while int(connection.info("persistence").get("aof_rewrite_in_progress", 0)) or int(
            connection.info("persistence").get("rdb_bgsave_in_progress", 0)
        ):
            time.sleep(0.1)
        return saved

    def _resume_background_saves(self, saved: dict[str, str]) -> None:
        import redis

        try:
            for key, value in saved.items():
                self._db.connection.config_set(key, value)
        except redis.exceptions.ConnectionError:
            log.warning("could not restore %s after the bulk load (the server is gone)", ", ".join(saved))

    def _node_count(self) -> int:
        if not self._db.connection.exists(self.graph_name):
            return 0
        return int(self.run("count_all_nodes")[0]["n"])

    # ---- the rest of the protocol
    def stats(self) -> dict:
        from graphkit.store.stats import collect

        info = self._db.connection.info()
        server = self.server.status()
        constraints = {
            f"{row['label']}.{','.join(row['properties'])}": row["status"] for row in self.constraints()
        }
        return collect(
            self,
            backend={
                "backend": self.backend,
                "graph": self.graph_name,
                "socket": server["socket"],
                "data_dir": server["data_dir"],
                "pid": info.get("process_id"),
                "clients": server["clients"],
                "memory_used": info.get("used_memory_human"),
                "persistence": "AOF (appendfsync everysec) + RDB"
                if info.get("aof_enabled")
                else "memory only",
                "server_version": info.get("redis_version"),
                "unique_constraints": constraints,
            },
        )

    def clear(self) -> None:
        if self._db.connection.exists(self.graph_name):
            self._graph.delete()
        self._vocab = Vocabulary()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._db.close()
        finally:
            self.server.release(self._lease)


def _value(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    from falkordb.edge import Edge
    from falkordb.node import Node
    from falkordb.path import Path as FalkorPath

    if isinstance(value, Node):
        return node_value(value.id, value.labels or [], value.properties)
    if isinstance(value, Edge):
        return relationship_value(
            value.id, value.relation, _node_id(value.src_node), _node_id(value.dest_node), value.properties
        )
    if isinstance(value, FalkorPath):
        return {
            "nodes": [_value(n) for n in value.nodes()],
            "relationships": [_value(e) for e in value.edges()],
        }
    if isinstance(value, list):
        return [_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _value(item) for key, item in value.items()}
    return value


def _node_id(node: Any) -> Any:
    return getattr(node, "id", node)
