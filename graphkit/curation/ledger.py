"""The curation ledger: an append-only, hash-chained file of edge corrections.

``<workspace>/curation/ledger.jsonl`` holds one JSON line per change::

    {"hash": "<sha256 of the rest of the line>", "curator": "alice",
     "edge": {"relation": "MAY_TREAT", "sab": "RXNORM", "source": "C0025598", "target": "C0011860"},
     "edge_id": "3f0c...", "evidence": ["PMID:123"], "op": "reject", "prev": "<hash of entry 6>",
     "properties": {...},                                    # add only
     "reason": "...", "seq": 7, "time": "2025-11-25T16:12:36.123456Z", "v": 1}

``hash`` comes first; the rest is the entry's canonical JSON (sorted keys, no spaces) and
``hash`` is the SHA-256 of exactly those bytes (``{`` + everything after the hash field), so a
reader checks an entry without serializing it again.

Guarantees:

- Durable: a line is written with one ``write`` on an ``O_APPEND`` descriptor and fsynced before
  the change is applied anywhere; an exclusive ``flock`` on ``ledger.jsonl.lock`` serialises
  writers of every process (CLI, web page), readers take it shared, so no reader ever sees half
  a line of a live writer and no two writers interleave or lose an entry.
- Tamper-evident: every entry carries the hash of the one before (``prev``) and its own hash;
  ``seq`` counts from 1. An edited, removed, inserted or reordered
  entry breaks the chain and is reported with its line number. ``ledger.jsonl.head`` records the
  last entry written (seq and hash, replaced atomically after each append), so cutting whole
  entries off the end is detected too.
- Crash-safe: a kill can leave at most a torn last line (an interrupted write). It is reported
  as such (``TornLedgerError``) and nothing is appended after it until it is cut off explicitly
  (``repair_torn``; the cut bytes are kept aside in ``ledger.jsonl.torn-<time>``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graphkit.atomic import atomic_write_bytes, atomic_write_text
from graphkit.errors import ConfigError, LedgerError
from graphkit.store.vocab import TYPE_PATTERN, edge_id

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
GENESIS = "0" * 64
OPS = ("reject", "restore", "add", "annotate")
STATUS_OPS = {"reject": "rejected", "restore": "active", "add": "active"}
MAX_TEXT = 4000
MAX_EVIDENCE = 50
_FIX_TAMPERED = "restore ledger.jsonl from a backup (the graph keeps its current state until then)"
_HEX = re.compile(r"^[0-9a-f]{6,64}$")
_HASH_PREFIX = '{"hash":"'
_BODY_START = len(_HASH_PREFIX) + 64 + 2  # '{"hash":"' + 64 hex digits + '",'
_FIELDS = frozenset({"v", "seq", "op", "edge", "edge_id", "curator", "time", "reason", "evidence", "prev", "hash"})
_EDGE_FIELDS = frozenset({"source", "relation", "target", "sab"})


class TornLedgerError(LedgerError):
    """The ledger ends in a torn line: a write that a crash interrupted."""


@dataclass(frozen=True)
class EdgeKey:
    """The stable key of an edge: source, relation type, target and source vocabulary (SAB).

    Text form ``SOURCE|RELATION|TARGET|SAB`` (SAB may be left out when it is empty).
    """

    source: str
    relation: str
    target: str
    sab: str = ""

    def __post_init__(self) -> None:
        for name in ("source", "relation", "target", "sab"):
            value = getattr(self, name)
            if not isinstance(value, str) or "|" in value or value != value.strip():
                raise ConfigError(
                    "an edge key part must be text without '|' or surrounding spaces",
                    where=f"edge {name}",
                    value=value,
                )
        for name in ("source", "target"):
            if not getattr(self, name):
                raise ConfigError("an edge needs a source and a target", where=f"edge {name}", value="")
        if not TYPE_PATTERN.match(self.relation):
            raise ConfigError(
                "not a relationship type",
                where="edge relation",
                value=self.relation,
                fix="upper case letters, digits and _, e.g. MAY_TREAT",
            )

    @functools.cached_property
    def edge_id(self) -> str:
        return edge_id(self.source, self.relation, self.target, self.sab or None)

    @property
    def text(self) -> str:
        return "|".join((self.source, self.relation, self.target, self.sab))

    def __str__(self) -> str:
        return f"{self.source} -[{self.relation}]-> {self.target}" + (f" ({self.sab})" if self.sab else "")

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "relation": self.relation, "target": self.target, "sab": self.sab}

    @classmethod
    def parse(cls, text: str) -> EdgeKey:
        parts = text.split("|")
        if len(parts) not in (3, 4):
            raise ConfigError(
                "an edge key reads SOURCE|RELATION|TARGET|SAB",
                where="edge",
                value=text,
                fix="e.g. 'C0025598|MAY_TREAT|C0011860|RXNORM', or give the edge id",
            )
        return cls(*(part.strip() for part in parts))


@dataclass(slots=True)
class Entry:
    """One ledger line (treat as read-only)."""

    seq: int
    op: str
    edge: EdgeKey
    curator: str
    time: str
    reason: str
    evidence: tuple[str, ...]
    prev: str
    hash: str
    properties: Mapping[str, str] = field(default_factory=dict)
    line: int = field(default=0, compare=False)

    @property
    def edge_id(self) -> str:
        return self.edge.edge_id

    @property
    def status(self) -> str | None:
        """The edge status this entry sets (None: an annotation changes no status)."""
        return STATUS_OPS.get(self.op)

    def body(self) -> dict[str, Any]:
        body = {
            "v": FORMAT_VERSION,
            "seq": self.seq,
            "op": self.op,
            "edge": self.edge.to_dict(),
            "edge_id": self.edge_id,
            "curator": self.curator,
            "time": self.time,
            "reason": self.reason,
            "evidence": list(self.evidence),
            "prev": self.prev,
        }
        if self.properties:
            body["properties"] = dict(self.properties)
        return body

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}

    def to_line(self) -> bytes:
        return f'{_HASH_PREFIX}{self.hash}",{_canonical(self.body())[1:]}\n'.encode()


@dataclass(frozen=True)
class Change:
    """A change not yet in the ledger (``Ledger.append_many`` takes these)."""

    op: str
    edge: EdgeKey
    curator: str
    reason: str
    evidence: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass
class LedgerReport:
    """What a full verification found (it raises LedgerError on any damage instead)."""

    path: Path
    entries: int
    head_seq: int
    head_hash: str
    recorded_head: int | None  # seq in the head file, None without one
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "recorded_head": self.recorded_head,
            "notes": self.notes,
            "valid": True,
        }


def _canonical(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(body).encode("utf-8")).hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def check_change(change: Change) -> Change:
    """Reason, curator and evidence present and of sane size; the op known."""
    if change.op not in OPS:
        raise ConfigError("unknown ledger operation", where="op", value=change.op, fix=f"one of {', '.join(OPS)}")
    curator = (change.curator or "").strip()
    reason = (change.reason or "").strip()
    if not curator:
        raise ConfigError("a change needs the curator's name", where="curator", fix="pass --curator NAME")
    if not reason:
        raise ConfigError("a change needs a reason", where="reason", fix="say why, e.g. --reason 'wrong direction'")
    evidence = tuple(str(item).strip() for item in change.evidence if str(item).strip())
    for name, text in (("curator", curator), ("reason", reason), *(("evidence", e) for e in evidence)):
        if len(text) > MAX_TEXT:
            raise ConfigError(f"longer than {MAX_TEXT} characters", where=name, value=text[:40] + "...")
    if len(evidence) > MAX_EVIDENCE:
        raise ConfigError(f"more than {MAX_EVIDENCE} evidence items", where="evidence", value=len(evidence))
    properties = {str(k): str(v) for k, v in (change.properties or {}).items() if v not in (None, "")}
    if properties and change.op != "add":
        raise ConfigError("only an added edge carries properties", where="properties", value=properties)
    return Change(change.op, change.edge, curator, reason, evidence, properties)


def _entry_from(data: Any, line: int, where: str) -> Entry:
    """A parsed line -> Entry, every field type-checked (the hash is checked by the caller)."""
    def bad(problem: str, value: Any = None) -> LedgerError:
        return LedgerError(problem, where=where, value=value, fix=_FIX_TAMPERED)

    if not isinstance(data, dict):
        raise bad("a line is not a JSON object", type(data).__name__)
    if data.get("v") != FORMAT_VERSION:
        raise bad("unknown ledger format version", data.get("v"))
    keys = data.keys()
    if not (keys == _FIELDS or (len(keys) == len(_FIELDS) + 1 and "properties" in keys and _FIELDS <= keys)):
        raise bad("the entry's fields are not those of a ledger entry", sorted(set(keys) ^ _FIELDS))
    edge = data["edge"]
    if not isinstance(edge, dict) or edge.keys() != _EDGE_FIELDS:
        raise bad("the entry's edge is not a stable key", edge)
    try:
        key = EdgeKey(edge["source"], edge["relation"], edge["target"], edge["sab"])
    except ConfigError as exc:
        raise bad(f"the entry's edge is invalid ({exc.problem})", edge) from None
    if key.edge_id != data["edge_id"]:
        raise bad("edge_id does not match the edge's key", data["edge_id"])
    if not isinstance(data["seq"], int) or isinstance(data["seq"], bool) or data["op"] not in OPS:
        raise bad("bad seq or op", (data["seq"], data["op"]))
    texts = ("curator", "time", "reason", "prev", "hash")
    if not all(isinstance(data[name], str) for name in texts) or not isinstance(data["evidence"], list):
        raise bad("a field has the wrong type")
    properties = data.get("properties", {})
    if not isinstance(properties, dict):
        raise bad("properties is not an object", properties)
    return Entry(
        seq=data["seq"],
        op=data["op"],
        edge=key,
        curator=data["curator"],
        time=data["time"],
        reason=data["reason"],
        evidence=tuple(str(e) for e in data["evidence"]),
        prev=data["prev"],
        hash=data["hash"],
        properties=properties,
        line=line,
    )


class Ledger:
    """One ledger file. Thread-safe; processes coordinate through the lock file.

    Entries are read once and kept in memory; each access reads only what other writers
    appended since (``refresh``), so a long-running reader (the web page) stays cheap.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._mutex = threading.RLock()
        self._lock_depth = 0
        self._lock_exclusive = False
        self._reset()

    @classmethod
    def of(cls, workspace) -> Ledger:
        """The ledger of a workspace (graphkit.workspace.Workspace)."""
        return cls(workspace.curation / "ledger.jsonl")

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    def _reset(self) -> None:
        self._entries: list[Entry] = []
        self._by_edge: dict[str, list[int]] = {}
        self._offset = 0
        self._tail = b""  # the bytes of the last line read, to notice a rewrite under us

    # ---- locking
    def locked(self):
        """Hold the writers' lock (no other thread or process appends meanwhile); re-entrant."""
        return self._locked(exclusive=True)

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        with self._mutex:
            if self._lock_depth:  # this thread holds the file lock already (the mutex is re-entrant)
                if exclusive and not self._lock_exclusive:
                    raise RuntimeError("the ledger's shared lock cannot be upgraded")
                self._lock_depth += 1
                try:
                    yield
                finally:
                    self._lock_depth -= 1
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.lock_path, "a+b") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                self._lock_depth, self._lock_exclusive = 1, exclusive
                try:
                    yield
                finally:
                    self._lock_depth = 0
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # ---- reading
    def refresh(self) -> list[Entry]:
        """Read what was appended since the last read (all of it the first time); verified."""
        with self._locked(exclusive=False):
            self._refresh()
            return list(self._entries)

    def entries(self) -> list[Entry]:
        return self.refresh()

    def _refresh(self) -> None:
        if not self.path.exists():
            if self._entries:
                self._reset()
            self._check_head()
            return
        with open(self.path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if self._entries:
                handle.seek(self._offset - len(self._tail))
                if size < self._offset or handle.read(len(self._tail)) != self._tail:
                    log.warning("%s changed under this reader: reading it again", self.path)
                    self._reset()
            if size > self._offset:
                handle.seek(self._offset)
                self._parse(handle.read(size - self._offset))
        self._check_head()

    def _parse(self, data: bytes) -> None:
        line_no = len(self._entries)
        position = 0
        while position < len(data):
            end = data.find(b"\n", position)
            line_no += 1
            where = f"{self.path} line {line_no}"
            if end < 0:
                raise TornLedgerError(
                    "the last line is torn (a write was interrupted by a crash)",
                    where=where,
                    value=data[position : position + 60].decode("utf-8", "replace"),
                    fix="run `ehr-r1 curate verify --repair-torn` to cut it off (its bytes are kept aside)",
                )
            raw = data[position : end + 1]
            position = end + 1
            try:
                parsed = json.loads(raw.decode("utf-8"))
            except ValueError:
                raise LedgerError(
                    "a line is not valid JSON (the file was edited or damaged)",
                    where=where,
                    value=raw[:60].decode("utf-8", "replace"),
                    fix=_FIX_TAMPERED,
                ) from None
            entry = _entry_from(parsed, line_no, where)
            if not raw.startswith(_HASH_PREFIX.encode()) or raw[_BODY_START - 2 : _BODY_START] != b'",':
                raise LedgerError("the entry does not start with its hash", where=where, fix=_FIX_TAMPERED)
            body = b"{" + raw[_BODY_START:-1]
            if hashlib.sha256(body).hexdigest() != entry.hash:
                raise LedgerError(
                    "the entry's hash does not match its content (the entry was edited)",
                    where=where,
                    value=entry.hash[:16],
                    fix=_FIX_TAMPERED,
                )
            expected_seq = len(self._entries) + 1
            if entry.seq != expected_seq:
                raise LedgerError(
                    f"entry number {expected_seq} expected here (an entry was removed, inserted or reordered)",
                    where=where,
                    value=entry.seq,
                    fix=_FIX_TAMPERED,
                )
            previous = self._entries[-1].hash if self._entries else GENESIS
            if entry.prev != previous:
                raise LedgerError(
                    "the hash chain is broken: 'prev' is not the hash of the entry before",
                    where=where,
                    value=entry.prev[:16],
                    fix=_FIX_TAMPERED,
                )
            self._add(entry)
            self._offset += len(raw)
            self._tail = raw

    def _add(self, entry: Entry) -> None:
        self._by_edge.setdefault(entry.edge_id, []).append(len(self._entries))
        self._entries.append(entry)

    def _recorded_head(self) -> dict | None:
        try:
            head = json.loads(self.head_path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            raise LedgerError(
                "the head file is not valid JSON", where=str(self.head_path), fix=_FIX_TAMPERED
            ) from None
        if not isinstance(head, dict) or not isinstance(head.get("seq"), int) or not isinstance(head.get("hash"), str):
            raise LedgerError("the head file is damaged", where=str(self.head_path), value=head, fix=_FIX_TAMPERED)
        return head

    def _check_head(self) -> None:
        head = self._recorded_head()
        if head is None or head["seq"] == 0:
            return
        last = len(self._entries)
        if head["seq"] > last:
            raise LedgerError(
                f"the ledger was truncated: entry {head['seq']} was written but the file ends at entry {last}",
                where=str(self.path),
                value=f"{head['seq'] - last} entries missing",
                fix=_FIX_TAMPERED,
            )
        if self._entries[head["seq"] - 1].hash != head["hash"]:
            raise LedgerError(
                f"entry {head['seq']} is not the entry that was written (its hash differs from the head file's)",
                where=f"{self.path} line {head['seq']}",
                fix=_FIX_TAMPERED,
            )

    # ---- questions
    @property
    def head(self) -> Entry | None:
        with self._mutex:
            return self._entries[-1] if self._entries else None

    def history(self, edge: str | EdgeKey) -> list[Entry]:
        """Every entry about one edge (by edge id or key), oldest first."""
        key = edge.edge_id if isinstance(edge, EdgeKey) else edge
        with self._mutex:
            return [self._entries[i] for i in self._by_edge.get(key, [])]

    def version(self, edge: str | EdgeKey) -> int:
        """The seq of the last entry about this edge (0: never curated); the optimistic-lock token."""
        history = self.history(edge)
        return history[-1].seq if history else 0

    def key_of(self, edge_id_: str) -> EdgeKey | None:
        history = self.history(edge_id_)
        return history[0].edge if history else None

    def curated_ids(self) -> set[str]:
        with self._mutex:
            return set(self._by_edge)

    def since(self, point: str | int | None) -> list[Entry]:
        """Entries after a point: an entry number, an entry hash prefix, or an ISO date/time (UTC)."""
        entries = self.refresh()
        if point is None or point == "":
            return entries
        kind, value = parse_point(point, entries)
        if kind == "seq":
            return [e for e in entries if e.seq > value]
        return [e for e in entries if datetime.fromisoformat(e.time.replace("Z", "+00:00")) >= value]

    # ---- writing
    def append(
        self,
        change: Change,
        *,
        check: Callable[[Ledger], None] | None = None,
        then: Callable[[Entry], Any] | None = None,
    ) -> Entry:
        """Append one change durably; ``check(ledger)`` runs first and ``then(entry)`` after, both
        under the writers' lock (so concurrent writers see and apply changes in ledger order)."""
        change = check_change(change)
        with self._locked(exclusive=True):
            self._refresh()
            if check is not None:
                check(self)
            (entry,) = self._write([change])
            if then is not None:
                then(entry)
            return entry

    def append_many(self, changes: Iterable[Change]) -> list[Entry]:
        """Append many changes with one write and one fsync (imports, benchmarks)."""
        checked = [check_change(change) for change in changes]
        with self._locked(exclusive=True):
            self._refresh()
            return self._write(checked) if checked else []

    def _write(self, changes: list[Change]) -> list[Entry]:
        entries, previous = [], (self._entries[-1].hash if self._entries else GENESIS)
        time = utc_now()
        for number, change in enumerate(changes, start=len(self._entries) + 1):
            body = Entry(number, change.op, change.edge, change.curator, time, change.reason,
                         change.evidence, previous, "", change.properties).body()
            digest = entry_hash(body)
            entries.append(Entry(number, change.op, change.edge, change.curator, time, change.reason,
                                 change.evidence, previous, digest, change.properties, line=number))
            previous = digest
        data = b"".join(entry.to_line() for entry in entries)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):  # disk full: leaves a torn line, reported by the next read
                raise LedgerError(
                    f"short write ({written} of {len(data)} bytes)", where=str(self.path), fix="free disk space"
                )
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)
        for entry in entries:
            line = entry.to_line()
            self._add(entry)
            self._offset += len(line)
            self._tail = line
        self._write_head()
        return entries

    def _write_head(self) -> None:
        last = self._entries[-1]
        atomic_write_text(self.head_path, json.dumps({"seq": last.seq, "hash": last.hash, "time": last.time}) + "\n")

    # ---- verification and repair
    def verify(self) -> LedgerReport:
        """Read the whole file again from the start and check everything; LedgerError on damage."""
        with self._locked(exclusive=False):
            self._reset()
            self._refresh()
            head = self._recorded_head()
            notes = []
            last = self._entries[-1] if self._entries else None
            if head is None and last is not None:
                notes.append("no head file: cutting whole entries off the end could not be detected "
                             "(the next change writes it again)")
            elif head is not None and last is not None and head["seq"] < last.seq:
                notes.append(f"the head file lags by {last.seq - head['seq']} entries (a crash right after "
                             "a write); the next change updates it")
            return LedgerReport(self.path, len(self._entries), last.seq if last else 0,
                                last.hash if last else GENESIS, head["seq"] if head else None, notes)

    def repair_torn(self) -> Path | None:
        """Cut a torn last line off (kept aside in ``<ledger>.torn-<time>``); None when there is none.

        Only a torn last line is repaired: any other damage still raises LedgerError.
        """
        with self._locked(exclusive=True):
            if not self.path.exists():
                return None
            data = self.path.read_bytes()
            whole = data.rfind(b"\n") + 1
            if whole == len(data):
                self._reset()
                self._refresh()
                return None
            aside = self.path.with_name(f"{self.path.name}.torn-{utc_now().replace(':', '')}")
            atomic_write_bytes(aside, data[whole:])
            with open(self.path, "r+b") as handle:
                handle.truncate(whole)
                os.fsync(handle.fileno())
            log.warning("cut %d torn bytes off %s (kept in %s)", len(data) - whole, self.path, aside)
            self._reset()
            self._refresh()
            if self._entries:
                self._write_head()
            return aside


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parse_point(point: str | int, entries: list[Entry]) -> tuple[str, Any]:
    """("seq", n) | ("time", iso) for a --since value; ConfigError when it names nothing."""
    text = str(point).strip()
    if text.isdigit():
        return "seq", int(text)
    if _HEX.match(text.lower()):
        matches = [e.seq for e in entries if e.hash.startswith(text.lower())]
        if len(matches) == 1:
            return "seq", matches[0]
        if len(matches) > 1:
            raise ConfigError("the hash prefix names several entries", where="--since", value=text,
                              fix="give more hex digits")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            "not a point in the ledger",
            where="--since",
            value=text,
            fix="give an entry number (see `ehr-r1 curate log`), an entry hash prefix or an ISO date/time",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return "time", moment.astimezone(UTC)

