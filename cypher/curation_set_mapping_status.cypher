// Curation: set the status of item -> concept mappings; rejected ones are left out of the
// item links that mining and thinking graphs read (thinking_item_concepts).
UNWIND $rows AS row
MATCH (a:Item {id: row.src})-[r:MAPS_TO]->(b:Concept {cui: row.dst})
SET r.status = row.status
RETURN row.edge_id AS key
