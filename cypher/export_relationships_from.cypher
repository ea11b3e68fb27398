// Every outgoing relationship of a page of nodes (export): type, end node keys, properties.
UNWIND $keys AS key
MATCH (a:{{node_label}} { {{node_key}}: key })-[r]->(b)
RETURN key AS src, type(r) AS type, labels(b) AS dst_labels, b.cui AS dst_cui, b.id AS dst_id, properties(r) AS properties
