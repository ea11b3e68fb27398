"""What both backends share: the GraphStore protocol, slots, parameters, batching, result values."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, Protocol, runtime_checkable

import cypher
from graphkit.errors import ConfigError, CypherError, GraphError
from graphkit.progress import NULL_PROGRESS, Progress
from graphkit.store.vocab import (
    CONCEPT_RELATION,
    STATUSES,
    Vocabulary,
    check_property_name,
    edge_id,
)

log = logging.getLogger(__name__)

_SLOT = re.compile(r"\{\{\s*([A-Za-z0-9_]*)\s*\}\}")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WRITES = re.compile(r"\b(CREATE|MERGE|SET|DELETE|REMOVE|DROP)\b", re.IGNORECASE)
_CREATES = re.compile(r"\bCREATE\b", re.IGNORECASE)
MAX_HOPS = 32
AD_HOC = "ad-hoc query"


@runtime_checkable
class GraphStore(Protocol):
    """One graph database, whichever backend serves it (see docs/interfaces.md §3a)."""

    backend: str
    dialect: str

    @property
    def vocab(self) -> Vocabulary: ...

    def register_relation_types(self, names: Iterable[str]) -> None: ...

    def ensure_schema(self) -> list[str]: ...

    def apply_schema_items(self, items: list) -> list[str]: ...

    def run(self, name: str, /, *, slots: Mapping[str, Any] | None = None, **params: Any) -> list[dict]: ...

    def query(
        self,
        text: str,
        params: Mapping[str, Any] | None = None,
        *,
        name: str = AD_HOC,
        read_only: bool = False,
    ) -> list[dict]: ...

    def write(
        self,
        name: str,
        rows: Iterable[Mapping[str, Any]],
        /,
        *,
        batch_size: int = 5000,
        slots: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
        **params: Any,
    ) -> int: ...

    def merge_nodes(
        self, label: str, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 5000
    ) -> int: ...

    def merge_relationships(
        self, rel_type: str, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 5000
    ) -> int: ...

    def bulk_load(self, nodes=None, relationships=None, *, replace: bool = False, progress=None) -> dict: ...

    def stats(self) -> dict: ...

    def clear(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> GraphStore: ...

    def __exit__(self, *exc: object) -> None: ...


def render_slots(text: str, slots: Mapping[str, Any] | None, vocab: Vocabulary, name: str) -> str:
    """Fill ``{{slot}}`` placeholders with vocabulary-checked names; the kind comes from the suffix."""
    slots = dict(slots or {})
    wanted = set(_SLOT.findall(text))
    missing = sorted(wanted - slots.keys())
    if missing:
        raise ConfigError("the query needs slot values", where=f"cypher query '{name}'", value=missing)
    extra = sorted(slots.keys() - wanted)
    if extra:
        raise ConfigError("the query has no such slots", where=f"cypher query '{name}'", value=extra)
    rendered = {slot: _slot_value(slot, value, vocab, name) for slot, value in slots.items()}
    return _SLOT.sub(lambda match: rendered[match.group(1)], text)


def _slot_value(slot: str, value: Any, vocab: Vocabulary, name: str) -> str:
    if slot.endswith("_label"):
        return vocab.label(value)
    if slot.endswith("_types"):
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise ConfigError("expects a list of relationship types", where=f"slot {slot}", value=value)
        names = [vocab.rel_type(item) for item in value]
        if not names:
            raise ConfigError("needs at least one relationship type", where=f"slot {slot}", value=value)
        return "|".join(dict.fromkeys(names))
    if slot.endswith("_type"):
        return vocab.rel_type(value)
    if slot.endswith("_hops"):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_HOPS:
            raise ConfigError(
                f"must be a whole number from 1 to {MAX_HOPS}",
                where=f"slot {slot}",
                value=value,
                fix="e.g. 6",
            )
        return str(value)
    if slot.endswith("_key"):
        return check_property_name(value, where=f"slot {slot}")
    raise ConfigError(
        "slot of unknown kind (suffix _label, _type, _types, _hops or _key)",
        where=f"cypher query '{name}'",
        value=slot,
    )


def check_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parameter names a strict identifier, values plain JSON-like data (no NaN/inf)."""
    checked: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if not isinstance(key, str) or not _PARAM_NAME.match(key):
            raise ConfigError(
                "not a valid parameter name",
                where="query parameter",
                value=key,
                fix="use letters, digits and _",
            )
        _check_value(value, key)
        checked[key] = value
    return checked


def _check_value(value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(
                "NaN and infinity cannot be sent to the graph", where=f"parameter {where}", value=value
            )
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_value(item, where)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not key or "`" in key:
                raise ConfigError(
                    "map keys must be non-empty strings without backticks",
                    where=f"parameter {where}",
                    value=key,
                )
            _check_value(item, f"{where}.{key}")
        return
    raise ConfigError(
        "unsupported value type (use str, int, float, bool, None, lists and maps)",
        where=f"parameter {where}",
        value=type(value).__name__,
    )


def is_write(text: str) -> bool:
    return bool(_WRITES.search(_strip_comments(text)))


def is_idempotent(text: str) -> bool:
    """Safe to send twice after a lost reply: reads and MERGE writes, not CREATE."""
    body = re.sub(r"CREATE\s+INDEX", "", _strip_comments(text), flags=re.IGNORECASE)
    return not _CREATES.search(body)


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def batches(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    if size < 1:
        raise ConfigError("must be at least 1", where="batch_size", value=size)
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def cypher_error(name: str, problem: str, text: str, position: tuple[int, int] | None = None) -> CypherError:
    """The error of a query, naming it and, for a syntax error, the line and column."""
    where = f"cypher query '{name}'"
    problem = " ".join(problem.split())
    if position is not None:
        line, column = position
        where += f" at line {line}, column {column}"
        lines = text.splitlines() or [text]
        snippet = lines[min(max(line, 1), len(lines)) - 1].strip()
        return CypherError(problem, where=where, value=snippet[:100], fix="correct the query text")
    return CypherError(problem, where=where, fix="correct the query or its parameters")


def _with_where(exc: CypherError, suffix: str) -> CypherError:
    kwargs: dict[str, Any] = {"where": f"{exc.where}{suffix}", "fix": exc.fix}
    if exc.has_value:
        kwargs["value"] = exc.value
    return CypherError(exc.problem, **kwargs)


def node_value(node_id: Any, labels: Iterable[str], properties: Mapping[str, Any]) -> dict:
    return {"_id": str(node_id), "_labels": sorted(labels), **dict(properties)}


def relationship_value(rel_id: Any, rel_type: str, src: Any, dst: Any, properties: Mapping[str, Any]) -> dict:
    return {"_id": str(rel_id), "_type": rel_type, "_src": str(src), "_dst": str(dst), **dict(properties)}


def prepare_node_rows(vocab: Vocabulary, label: str, rows: Iterable[Mapping[str, Any]]) -> Iterator[dict]:
    spec = vocab.node_spec(label)
    allowed = spec.properties.keys()
    for row in rows:
        unknown = row.keys() - allowed
        if unknown:
            raise ConfigError(
                f"unknown property for label {label}",
                where=f"{label} row",
                value=sorted(unknown),
                fix=f"use {', '.join(allowed)} (the model lives in graphkit/store/vocab.py)",
            )
        if row.get(spec.key) in (None, ""):
            raise ConfigError(
                f"a {label} row needs its key '{spec.key}'", where=f"{label} row", value=dict(row)
            )
        yield {key: value for key, value in row.items() if value is not None}


def prepare_relationship_rows(
    vocab: Vocabulary, rel_type: str, rows: Iterable[Mapping[str, Any]]
) -> Iterator[dict]:
    """Rows {src, dst, **props}: properties checked; concept relations get edge_id and status filled."""
    spec = vocab.spec(rel_type)
    allowed = spec.properties.keys()
    fill_identity = spec.identity == CONCEPT_RELATION.identity
    for row in rows:
        src, dst = row.get("src"), row.get("dst")
        if src in (None, "") or dst in (None, ""):
            raise ConfigError(
                f"a {rel_type} row needs 'src' and 'dst'", where=f"{rel_type} row", value=dict(row)
            )
        properties = {
            key: value for key, value in row.items() if key not in ("src", "dst") and value is not None
        }
        unknown = properties.keys() - allowed
        if unknown:
            raise ConfigError(
                f"unknown property for relationship type {rel_type}",
                where=f"{rel_type} row",
                value=sorted(unknown),
                fix=f"use {', '.join(allowed)} (the model lives in graphkit/store/vocab.py)",
            )
        if fill_identity:
            properties.setdefault("edge_id", edge_id(src, rel_type, dst, properties.get("sab")))
        if "status" in allowed:
            properties.setdefault("status", "active")
            if properties["status"] not in STATUSES:
                raise ConfigError(
                    "unknown edge status",
                    where=f"{rel_type} row",
                    value=properties["status"],
                    fix="active or rejected",
                )
        yield {"src": src, "dst": dst, "properties": properties}


def relationship_slots(vocab: Vocabulary, rel_type: str) -> dict[str, str]:
    """The slots of the relationship write queries: endpoint labels and keys, and the type."""
    spec = vocab.spec(rel_type)
    return {
        "src_label": spec.src,
        "src_key": vocab.node_spec(spec.src).key,
        "dst_label": spec.dst,
        "dst_key": vocab.node_spec(spec.dst).key,
        "rel_type": rel_type,
    }


class BaseStore:
    """Shared behaviour; a backend implements ``_execute`` and the backend-specific methods."""

    backend = "base"
    dialect = "neo4j"

    def __init__(self, vocab: Vocabulary | None = None):
        self._vocab = vocab or Vocabulary()
        self._closed = False

    # ---- vocabulary
    @property
    def vocab(self) -> Vocabulary:
        return self._vocab

    def register_relation_types(self, names: Iterable[str]) -> None:
        self._vocab = self._vocab.with_relation_types(names)

    def _load_vocabulary(self) -> None:
        """The concept relation types present in the graph join the vocabulary (pattern-checked)."""
        present = [row["relationshipType"] for row in self.run("relationship_types")]
        skipped = []
        for name in present:
            if name in self._vocab.types:
                continue
            try:
                self._vocab = self._vocab.with_relation_types([name])
            except GraphError:
                skipped.append(name)
        if skipped:
            log.warning(
                "relationship types in the graph that do not fit the vocabulary are left out: %s", skipped
            )

    # ---- queries
    def _execute(
        self, text: str, params: dict[str, Any], name: str, *, retry_safe: bool, read_only: bool = False
    ) -> list[dict]:
        raise NotImplementedError

    def run(self, name: str, /, *, slots: Mapping[str, Any] | None = None, **params: Any) -> list[dict]:
        """A named query (cypher/<name>.cypher); ``name`` is positional, so a parameter may be called name."""
        text = render_slots(cypher.load(name), slots, self._vocab, name)
        return self._execute(text, check_params(params), name, retry_safe=is_idempotent(text))

    def query(
        self,
        text: str,
        params: Mapping[str, Any] | None = None,
        *,
        name: str = AD_HOC,
        read_only: bool = False,
    ) -> list[dict]:
        """Ad-hoc Cypher; ``read_only`` makes the server refuse writes (the CLI's default)."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("empty query", where=f"cypher query '{name}'", fix="pass a Cypher statement")
        return self._execute(text, check_params(params), name, retry_safe=read_only, read_only=read_only)

    def write(
        self,
        name: str,
        rows: Iterable[Mapping[str, Any]],
        /,
        *,
        batch_size: int = 5000,
        slots: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
        **params: Any,
    ) -> int:
        return self._write(name, rows, batch_size=batch_size, slots=slots, progress=progress, params=params)

    def _write(
        self,
        name: str,
        rows: Iterable[Mapping[str, Any]],
        *,
        batch_size: int,
        slots: Mapping[str, Any] | None,
        progress: Progress | None,
        params: Mapping[str, Any],
        check_batch: Callable[[list, list[dict]], None] | None = None,
    ) -> int:
        text = render_slots(cypher.load(name), slots, self._vocab, name)
        if "$rows" not in text:
            raise ConfigError("a write query must read its batch from $rows", where=f"cypher query '{name}'")
        params = check_params(params)
        retry_safe = is_idempotent(text)
        progress = progress or NULL_PROGRESS
        handle = progress.start(name)
        written = 0
        try:
            for number, chunk in enumerate(batches(rows, batch_size), start=1):
                check_params({"rows": chunk})
                try:
                    result = self._execute(text, {**params, "rows": chunk}, name, retry_safe=retry_safe)
                except CypherError as exc:
                    raise _with_where(
                        exc, f", batch {number} (rows {written + 1}-{written + len(chunk)})"
                    ) from exc
                if check_batch is not None:
                    check_batch(chunk, result)
                written += len(chunk)
                progress.advance(handle, len(chunk))
        finally:
            progress.finish(handle)
        return written

    def merge_nodes(self, label: str, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 5000) -> int:
        key = self._vocab.node_spec(label).key
        prepared = (
            {"key": row[key], "properties": row} for row in prepare_node_rows(self._vocab, label, rows)
        )
        return self.write(
            "merge_nodes", prepared, batch_size=batch_size, slots={"node_label": label, "node_key": key}
        )

    def merge_relationships(
        self, rel_type: str, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 5000
    ) -> int:
        """Idempotent; rows whose endpoints are missing raise GraphError (earlier batches stay written)."""
        spec = self._vocab.spec(rel_type)
        slots = relationship_slots(self._vocab, rel_type)
        src_key, dst_key = slots["src_key"], slots["dst_key"]
        name = "merge_relationships_by_id" if spec.identity else "merge_relationships"

        def check_batch(chunk: list, result: list[dict]) -> None:
            merged = result[0]["merged"] if result else 0
            if merged == len(chunk):
                return
            missing = []
            for label, key, end in ((spec.src, src_key, "src"), (spec.dst, dst_key, "dst")):
                keys = sorted({row[end] for row in chunk})
                found = self.run("existing_keys", slots={"node_label": label, "node_key": key}, keys=keys)
                present = {row["key"] for row in found}
                missing += [f"{label} {k}" for k in keys if k not in present]
            raise GraphError(
                f"{len(chunk) - merged} {rel_type} relationships name nodes that are not in the graph",
                where=f"merge_relationships {rel_type}",
                value=missing[:5],
                fix="write the nodes first (merge_nodes), or drop these rows",
            )

        return self._write(
            name,
            prepare_relationship_rows(self._vocab, rel_type, rows),
            batch_size=batch_size,
            slots=slots,
            progress=None,
            params={},
            check_batch=check_batch,
        )

    def _finish_bulk(self, vocab: Vocabulary, counts: dict, method: str, started: float) -> dict:
        """After a bulk load: the load's relation types join the vocabulary, the schema is applied."""
        self._vocab = vocab
        loaded = time.perf_counter()
        self.ensure_schema()
        return {
            **counts,
            "method": method,
            "load_seconds": round(loaded - started, 3),
            "schema_seconds": round(time.perf_counter() - loaded, 3),
        }

    # ---- lifecycle
    def close(self) -> None:
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
