// Curation: the live relationships of one type named by stable key (concept relations and
// associations carry their edge_id). A row without a result is an edge the graph lacks.
// toString keeps FalkorDB off its edge_id index here: on the 500k/5M-edge synthetic graphs
// (perf/curation.py) that index scan missed every edge leaving the node with internal id 0
// (FalkorDB 4.16.3); traversing from the bound source finds them, as fast.
UNWIND $rows AS row
MATCH (a:Concept {cui: row.src})-[r:{{rel_type}}]->(b:Concept {cui: row.dst})
WHERE toString(r.edge_id) = row.edge_id
RETURN row.edge_id AS key, r AS edge, a.name AS source_name, b.name AS target_name
