// Curation: item -> concept mappings a curator added (method "curator", score 1.0).
UNWIND $rows AS row
MATCH (a:Item {id: row.src})
MATCH (b:Concept {cui: row.dst})
MERGE (a)-[r:MAPS_TO]->(b)
ON CREATE SET r.method = 'curator', r.score = 1.0, r.source = 'curator', r.status = 'active'
RETURN row.edge_id AS key, r.source AS source
