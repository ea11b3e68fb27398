"""End to end on the open demo graph: a thinking graph uses an edge, a curator rejects it, the
search runs again (live Cypher and the saved CSR snapshot) and the edge is gone from the result."""

from __future__ import annotations

import polars as pl

from graphkit.curation import Curation, Ledger
from graphkit.curation.graph import set_status, snapshot_dir
from graphkit.curation.ledger import EdgeKey
from graphkit.thinking import (
    AssociationIndex,
    MiningOptions,
    SearchOptions,
    Snapshot,
    StoreAdjacency,
    ThinkingGraphBuilder,
    ThinkingOptions,
    mine_associations,
    sample_concepts,
)
from graphkit.thinking.store_io import load_item_links
from graphkit.workspace import Workspace
from tests.curation_data import item


def test_a_rejected_edge_leaves_the_thinking_graphs_of_the_demo_graph(demo_graph, tmp_path):
    store = demo_graph.store
    pair = store.query(
        "MATCH (i:Item)-[:MAPS_TO]->(d:Concept)-[r]->(x:Concept)<-[:MAPS_TO]-(j:Item) "
        "WHERE type(r) IN ['MAY_TREAT', 'PALLIATES'] AND i.table = 'prescriptions' AND j.table = 'diagnoses_icd' "
        "RETURN i.id AS drug, j.id AS dx, x.cui AS dx_cui ORDER BY drug, dx LIMIT 1"
    )[0]
    samples = pl.DataFrame([
        {"id": f"demo-{i:02d}", "task": "diagnoses_icd", "split": "train",
         "context_items": [item(pair["drug"])] if i < 6 else [],
         "target_items": [item(pair["dx"])] if i < 6 else [item("diagnoses_icd:10:NONE")]}
        for i in range(40)  # lift of the pair 40 * 6 / (6 * 6) > 5
    ])
    concepts = sample_concepts(samples, load_item_links(store)).collect()
    associations = AssociationIndex(mine_associations(concepts, MiningOptions(), samples=samples).associations)
    context = sorted(set(concepts.filter(pl.col("role") == "context")["cui"]))
    targets = sorted(set(concepts.filter(pl.col("role") == "target")["cui"]))
    options = ThinkingOptions(search=SearchOptions(max_hops=3, max_expanded=300))  # bounded: the live search is Cypher
    workspace = Workspace(tmp_path / "ws")  # the curation's own files (ledger, snapshot) outside the shared demo
    Snapshot.from_store(store).save(snapshot_dir(workspace, "kg"))

    def search(live: bool):
        adjacency = StoreAdjacency(store, options.search) if live else \
            Snapshot.load(snapshot_dir(workspace, "kg")).adjacency(options.search)
        return ThinkingGraphBuilder(adjacency, associations, options).build("demo-00", "diagnoses_icd", context, targets)

    before = search(live=True)
    assert pair["dx_cui"] in before.paths and before.paths == search(live=False).paths
    used = before.edge(before.paths[pair["dx_cui"]][0][0])
    key = EdgeKey(used.source, used.relation, used.target, used.sab)
    curation = Curation(store, workspace, ledger=Ledger(tmp_path / "ledger.jsonl"))
    try:
        curation.reject(key, curator="demo", reason="the demo edge the thinking graph used")
        for live in (True, False):
            after = search(live=live)
            assert key.edge_id not in after.used_edge_ids()
            assert all(edge.edge_id != key.edge_id for edge in after.edges)
        curation.restore(key, curator="demo", reason="back as it was")
        assert search(live=False).paths == before.paths
    finally:
        set_status(store, {key: "active"})
