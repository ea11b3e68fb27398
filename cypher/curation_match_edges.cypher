// Curation: the live relationships of one type named by stable key (concept relations and
// associations carry their edge_id). A row without a result is an edge the graph lacks.
UNWIND $rows AS row
MATCH (a:Concept {cui: row.src})-[r:{{rel_type}}]->(b:Concept {cui: row.dst})
WHERE r.edge_id = row.edge_id
RETURN row.edge_id AS key, r AS edge, a.name AS source_name, b.name AS target_name
