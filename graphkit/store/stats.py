"""What `ehr-r1 graph stats` shows: counts by label and type, rejected edges, backend facts."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def collect(store, backend: dict) -> dict:
    labels = sorted(row["label"] for row in store.run("labels"))
    nodes = {}
    for label in labels:
        if label in store.vocab.labels:
            nodes[label] = store.run("count_nodes", slots={"node_label": label})[0]["n"]
        else:
            log.info("label %s is outside the vocabulary; not counted", label)
    present = sorted(row["relationshipType"] for row in store.run("relationship_types"))
    relationships = {
        t: store.run("count_relationships", slots={"rel_type": t})[0]["n"]
        for t in present
        if t in store.vocab.types
    }
    outside = [t for t in present if t not in store.vocab.types]
    rejected = {row["type"]: row["n"] for row in store.run("count_rejected")}
    return {
        **backend,
        "nodes": nodes,
        "relationships": relationships,
        "total_nodes": sum(nodes.values()),
        "total_relationships": sum(relationships.values()),
        "rejected": rejected,
        "outside_vocabulary": outside,
    }
