// Curation: the live item -> concept mappings named by their endpoints (one MAPS_TO per pair).
UNWIND $rows AS row
MATCH (a:Item {id: row.src})-[r:MAPS_TO]->(b:Concept {cui: row.dst})
RETURN row.edge_id AS key, r AS edge, a.name AS source_name, b.name AS target_name
