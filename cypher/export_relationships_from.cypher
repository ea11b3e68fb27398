// Every outgoing relationship of a page of nodes (export): type, end node key, properties.
// The end node's key is one of cui / id / edge_id (vocab.NODE_LABELS): all three are returned.
UNWIND $keys AS key
MATCH (a:{{node_label}} { {{node_key}}: key })-[r]->(b)
RETURN key AS src, type(r) AS type, b.cui AS dst_cui, b.id AS dst_id, b.edge_id AS dst_edge_id,
       properties(r) AS properties
