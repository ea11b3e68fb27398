"""What curators look at: the review queue, one edge with its evidence and users, a concept.

Shared by `ehr-r1 curate queue|show` and the web page; every function returns plain data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from graphkit.curation.graph import ASSOCIATED_WITH, MAPS_TO, fetch_edge
from graphkit.curation.ledger import EdgeKey, Entry, Ledger
from graphkit.errors import ConfigError
from graphkit.store.paths import ConceptPath, Step

QUEUES = ("used", "mappings", "associations")
TEXT_METHODS = ("quickumls", "name_words")  # graphkit.link tiers that match on text, not codes
CUI = re.compile(r"^C\d{7}$")


@dataclass
class EdgeView:
    key: EdgeKey
    live: dict | None  # the graph's relationship properties (None: not in the graph)
    history: list[Entry]
    cases: list[dict]
    n_cases: int
    n_uses: int
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
            "example_paths": self.paths,
        }


def edge_view(store, ledger: Ledger, key: EdgeKey, *, cases: int = 20, paths: int = 3) -> EdgeView:
    ledger.refresh()
    live = fetch_edge(store, key)
    counts = store.run("curation_edge_case_count", edge_id=key.edge_id)
    users = store.run("curation_edge_cases", edge_id=key.edge_id, limit=cases) if cases > 0 else []
    view = EdgeView(key, live, ledger.history(key), users, counts[0]["cases"] if counts else 0,
                    counts[0]["uses"] if counts else 0)
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
def _unreviewed(fetch: Callable[[int], list[dict]], limit: int, reviewed: set[str], include_reviewed: bool) -> list[dict]:
    """The first ``limit`` rows not yet in the ledger, fetching more while reviewed ones crowd them out."""
    wanted = limit
    while True:
        rows = fetch(wanted)
        for row in rows:
            row["reviewed"] = row["edge_id"] in reviewed
        kept = rows if include_reviewed else [row for row in rows if not row["reviewed"]]
        if len(kept) >= limit or len(rows) < wanted:
            return kept[:limit]
        wanted *= 4


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
) -> dict[str, list[dict]]:
    """Edges worth a curator's look, per kind: ``used`` (most cases use them), ``mappings``
    (MAPS_TO below ``max_score`` or text-matched), ``associations`` (support <= ``max_support``).
    Edges already in the ledger are left out unless ``include_reviewed``."""
    ledger.refresh()
    reviewed = ledger.curated_ids()
    result: dict[str, list[dict]] = {}
    for kind in kinds:
        if kind == "used":
            def fetch(n: int) -> list[dict]:
                rows = store.run("curation_queue_used", task=task, limit=n)
                return [_row("used", EdgeKey(r["source"], r["relation"], r["target"], r["sab"] or ""), r,
                             edge_id=r["edge_id"], status=r["status"] or "not in the graph",
                             cases=r["cases"], uses=r["uses"], origin=r["origin"]) for r in rows]
        elif kind == "mappings":
            def fetch(n: int) -> list[dict]:
                rows = store.run("curation_queue_mappings", max_score=float(max_score), methods=list(TEXT_METHODS), limit=n)
                return [_row("mappings", EdgeKey(r["source"], MAPS_TO, r["target"]), r, status=r["status"],
                             method=r["method"], score=r["score"]) for r in rows]
        elif kind == "associations":
            if ASSOCIATED_WITH not in store.vocab.types:
                result[kind] = []
                continue

            def fetch(n: int) -> list[dict]:
                rows = store.run("curation_queue_associations", max_support=int(max_support), task=task, limit=n)
                return [_row("associations", EdgeKey(r["source"], ASSOCIATED_WITH, r["target"], r["sab"] or ""), r,
                             edge_id=r["edge_id"], status=r["status"], task=r["task"], support=r["support"],
                             lift=r["lift"], confidence=r["confidence"]) for r in rows]
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
