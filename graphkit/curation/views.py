"""What curators look at: the review queue, one edge with its evidence and users, a concept.

Shared by `ehr-r1 curate queue|show` and the web page; every function returns plain data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from graphkit.curation.graph import ASSOCIATED_WITH, MAPS_TO, fetch_edge, wait_for_indexes
from graphkit.curation.ledger import EdgeKey, Entry, Ledger
from graphkit.errors import ConfigError
from graphkit.store.paths import ConceptPath, Step

QUEUES = ("used", "mappings", "associations")
TEXT_METHODS = ("quickumls", "name_words")  # graphkit.link tiers that match on text, not codes
CUI = re.compile(r"^C\d{7}$")
ALL = 2**31 - 1  # a LIMIT that never stops a count (FalkorDB ignores rows past larger ones)


@dataclass
class EdgeView:
    key: EdgeKey
    live: dict | None  # the graph's relationship properties (None: not in the graph)
    history: list[Entry]
    cases: list[dict]
    n_cases: int
    n_uses: int
    capped: bool = False  # more than n_cases cases use it (counting stopped there; n_uses is theirs)
    paths: list[dict] = field(default_factory=list)

    @property
    def version(self) -> int:
        return self.history[-1].seq if self.history else 0

    @property
    def status(self) -> str:
        return self.live["status"] if self.live else "not in the graph"

    def evidence(self) -> dict:
        """Where the edge comes from: source vocabulary, linking method, mining statistics."""
        if not self.live:
            return {}
        hidden = {"status", "edge_id", "source_name", "target_name"}
        return {k: v for k, v in sorted(self.live.items()) if k not in hidden and v not in (None, "")}

    def to_dict(self) -> dict:
        return {
            "edge": self.key.to_dict(),
            "edge_id": self.key.edge_id,
            "text": self.key.text,
            "status": self.status,
            "version": self.version,
            "source_name": (self.live or {}).get("source_name"),
            "target_name": (self.live or {}).get("target_name"),
            "evidence": self.evidence(),
            "history": [entry.to_dict() for entry in self.history],
            "cases": self.cases,
            "n_cases": self.n_cases,
            "n_uses": self.n_uses,
            "cases_capped": self.capped,
            "example_paths": self.paths,
        }


def count_users(store, edge_id: str, cap: int | None = None) -> tuple[int, int, bool]:
    """(cases, uses, capped): the cases using an edge, counted up to ``cap`` (None: all); when
    capped, ``uses`` are those of the cases counted."""
    limit = cap + 1 if cap is not None else ALL
    row = store.run("curation_edge_case_count", edge_id=edge_id, cap=limit)
    cases, uses = (row[0]["cases"], row[0]["uses"]) if row else (0, 0)
    capped = cap is not None and cases > cap
    return (cap if capped else cases), uses, capped


def edge_view(store, ledger: Ledger, key: EdgeKey, *, cases: int = 20, paths: int = 3,
              count_cap: int | None = None) -> EdgeView:
    """One edge; ``count_cap`` stops counting its cases there (the web page: an edge thousands
    of cases use need not be counted in full on every view)."""
    ledger.refresh()
    live = fetch_edge(store, key)
    n_cases, n_uses, capped = count_users(store, key.edge_id, count_cap)
    users = store.run("curation_edge_cases", edge_id=key.edge_id, limit=cases) if cases > 0 else []
    view = EdgeView(key, live, ledger.history(key), users, n_cases, n_uses, capped)
    view.paths = example_paths(store, key.edge_id, users, paths)
    return view


def example_paths(store, edge_id: str, users: list[dict], limit: int) -> list[dict]:
    """Up to ``limit`` thinking-graph paths through the edge, one per case, walked evidence -> target."""
    found: list[tuple[str, str, list[dict]]] = []
    for user in users:
        if len(found) >= limit:
            break
        if "path" not in user["roles"]:
            continue
        rows = store.run("thinking_case_paths", case_id=user["case_id"])
        walks: dict[tuple[str, int], list[dict]] = {}
        for row in rows:
            if row["role"] == "path":
                walks.setdefault((row["target_cui"], row["path"]), []).append(row)
        for (target, _), steps in sorted(walks.items()):
            if any(step["edge_id"] == edge_id for step in steps):
                found.append((user["case_id"], target, sorted(steps, key=lambda s: s["position"])))
                break
    cuis = sorted({cui for _, _, steps in found for s in steps for cui in (s["source"], s["target"])})
    names = {row["cui"]: row["name"] for row in store.run("thinking_concepts", cuis=cuis)} if cuis else {}
    return [
        {"case_id": case_id, "target": target, **_walk(steps, target, names, edge_id)}
        for case_id, target, steps in found
    ]


def _walk(steps: list[dict], target: str, names: dict, edge_id: str) -> dict:
    """A stored path (edges in order) as walked from its evidence concept to ``target``."""
    at, cuis, walked = target, [target], []
    for step in reversed(steps):
        forward = step["target"] == at
        at = step["source"] if forward else step["target"]
        cuis.append(at)
        walked.append(Step(step["relation"], forward, step["edge_id"], None))
    cuis.reverse()
    walked.reverse()
    path = ConceptPath(cuis, [names.get(c) for c in cuis], walked)
    return {"text": path.render(), "nodes": cuis, "edge_ids": [s.edge_id for s in walked],
            "position": [s.edge_id for s in walked].index(edge_id)}


# ---- the review queue
def _unreviewed(fetch: Callable[[int], tuple[list[dict], bool]], limit: int, reviewed: set[str],
                include_reviewed: bool) -> list[dict]:
    """The first ``limit`` rows not yet in the ledger, fetching more while reviewed ones crowd them
    out; ``fetch(n)`` returns rows from the best n candidates and whether there are more."""
    wanted = limit
    while True:
        rows, more = fetch(wanted)
        for row in rows:
            row["reviewed"] = row["edge_id"] in reviewed
        kept = rows if include_reviewed else [row for row in rows if not row["reviewed"]]
        if len(kept) >= limit or not more:
            return kept[:limit]
        wanted *= 4


def used_ranking(store, task: str | None, n: int) -> tuple[list[dict], bool]:
    """The n most used edges (on paths). FalkorDB without a task: candidates by in-degree of the
    usage record (all uses), then exact case counts for those; otherwise one aggregation."""
    if task is None and getattr(store, "dialect", "") == "falkordb":
        ids = [row["edge_id"] for row in store.run("curation_queue_used_candidates_falkordb", limit=n)]
        rows = store.run("curation_queue_used_details", ids=ids) if ids else []
        rows.sort(key=lambda r: (-r["cases"], -r["uses"], r["edge_id"]))
        return rows, len(ids) == n
    rows = store.run("curation_queue_used", task=task, limit=n)
    return rows, len(rows) == n


def ensure_queue_schema(store, timeout: float = 120.0) -> None:
    """The indexes of the review queue (cypher/curation_schema.cypher), created when missing and
    waited for while the server fills them; idempotent. Without them the queue is still right,
    only slower (called by the CLI and the web page)."""
    from graphkit.store.schema import apply_schema_file

    if apply_schema_file(store, "curation_schema"):
        wait_for_indexes(store, timeout)


def queue(
    store,
    ledger: Ledger,
    *,
    kinds: Iterable[str] = QUEUES,
    limit: int = 20,
    task: str | None = None,
    max_score: float = 0.8,
    max_support: int = 10,
    include_reviewed: bool = False,
    used: Callable[[int], tuple[list[dict], bool]] | None = None,
) -> dict[str, list[dict]]:
    """Edges worth a curator's look, per kind: ``used`` (most cases use them), ``mappings``
    (MAPS_TO below ``max_score`` or text-matched), ``associations`` (support <= ``max_support``).
    Edges already in the ledger are left out unless ``include_reviewed``. ``used(n)`` gives the
    n most used edges (default ``used_ranking``; the web page keeps that ranking between changes
    of the usage records, as it does not depend on the ledger)."""
    ledger.refresh()
    used = used or (lambda n: used_ranking(store, task, n))
    reviewed = ledger.curated_ids()
    result: dict[str, list[dict]] = {}
    for kind in kinds:
        if kind == "used":
            def fetch(n: int) -> tuple[list[dict], bool]:
                rows, more = used(n)
                return [_row("used", EdgeKey(r["source"], r["relation"], r["target"], r["sab"] or ""), r,
                             edge_id=r["edge_id"], status=r["status"] or "not in the graph",
                             cases=r["cases"], uses=r["uses"], origin=r["origin"]) for r in rows], more
        elif kind == "mappings":
            def fetch(n: int) -> tuple[list[dict], bool]:
                rows = store.run("curation_queue_mappings", max_score=float(max_score), methods=list(TEXT_METHODS), limit=n)
                return [_row("mappings", EdgeKey(r["source"], MAPS_TO, r["target"]), r, status=r["status"],
                             method=r["method"], score=r["score"]) for r in rows], len(rows) == n
        elif kind == "associations":
            if ASSOCIATED_WITH not in store.vocab.types:
                result[kind] = []
                continue

            def fetch(n: int) -> tuple[list[dict], bool]:
                rows = store.run("curation_queue_associations", max_support=int(max_support), task=task, limit=n)
                return [_row("associations", EdgeKey(r["source"], ASSOCIATED_WITH, r["target"], r["sab"] or ""), r,
                             edge_id=r["edge_id"], status=r["status"], task=r["task"], support=r["support"],
                             lift=r["lift"], confidence=r["confidence"]) for r in rows], len(rows) == n
        else:
            raise ConfigError("unknown queue", where="--kind", value=kind, fix=f"one of {', '.join(QUEUES)}")
        result[kind] = _unreviewed(fetch, limit, reviewed, include_reviewed)
    return result


def _row(kind: str, key: EdgeKey, raw: dict, *, edge_id: str | None = None, **values) -> dict:
    return {
        "kind": kind,
        "edge": key.text,
        "edge_id": edge_id or key.edge_id,
        "source": key.source,
        "relation": key.relation,
        "target": key.target,
        "sab": key.sab,
        "source_name": raw.get("source_name"),
        "target_name": raw.get("target_name"),
        **values,
    }


# ---- concepts
def search(store, text: str, limit: int = 25) -> list[dict]:
    """Concepts by CUI, exact name, or name containing the text (case-insensitive); an item by id."""
    text = text.strip()
    if not text:
        return []
    if CUI.match(text):
        return [{**row, "kind": "concept"} for row in store.run("concept_by_cui", cui=text)]
    rows = [{**row, "kind": "concept"} for row in store.run("concepts_by_name", name=text, limit=limit)]
    seen = {row["cui"] for row in rows}
    if len(rows) < limit:
        for row in store.run("curation_search_concepts", text=text.lower(), limit=limit):
            if row["cui"] not in seen and len(rows) < limit:
                rows.append({**row, "kind": "concept"})
    return rows


def concept_view(store, cui: str, limit: int = 200) -> dict | None:
    found = store.run("concept_by_cui", cui=cui)
    if not found:
        return None
    edges = []
    for row in store.run("curation_concept_edges", cui=cui, limit=limit):
        if row["relation"] == MAPS_TO:
            key = EdgeKey(row["other"], MAPS_TO, cui)
        elif row["outgoing"]:
            key = EdgeKey(cui, row["relation"], row["other"], row["sab"] or "")
        else:
            key = EdgeKey(row["other"], row["relation"], cui, row["sab"] or "")
        edges.append({**row, "edge": key.text, "edge_id": row["edge_id"] or key.edge_id, "key": key})
    return {"concept": found[0], "edges": edges, "limit": limit}
