// Curation: edges a curator added, merged on edge_id. Only a new edge gets the curator's
// provenance (source "curator"); an edge the release already has keeps its own.
UNWIND $rows AS row
MATCH (a:Concept {cui: row.src})
MATCH (b:Concept {cui: row.dst})
MERGE (a)-[r:{{rel_type}} {edge_id: row.edge_id}]->(b)
ON CREATE SET r.sab = row.sab, r.rel = row.rel, r.rela = row.rela, r.source = 'curator', r.status = 'active'
RETURN row.edge_id AS key, r.source AS source
