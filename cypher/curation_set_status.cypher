// Curation: set the status ("active" | "rejected") of relationships of one type by stable key.
// Rejected edges stay in the graph (never deleted); traversals skip them.
// toString keeps FalkorDB off its edge_id index here: on the 500k/5M-edge synthetic graphs
// (perf/curation.py) that index scan missed every edge leaving the node with internal id 0
// (FalkorDB 4.16.3); traversing from the bound source finds them, as fast.
UNWIND $rows AS row
MATCH (a:Concept {cui: row.src})-[r:{{rel_type}}]->(b:Concept {cui: row.dst})
WHERE toString(r.edge_id) = row.edge_id
SET r.status = row.status
RETURN row.edge_id AS key
