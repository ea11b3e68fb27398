// Curation: set the status ("active" | "rejected") of relationships of one type by stable key.
// Rejected edges stay in the graph (never deleted); traversals skip them.
UNWIND $rows AS row
MATCH (a:Concept {cui: row.src})-[r:{{rel_type}}]->(b:Concept {cui: row.dst})
WHERE r.edge_id = row.edge_id
SET r.status = row.status
RETURN row.edge_id AS key
