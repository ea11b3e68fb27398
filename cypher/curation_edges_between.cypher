// The relationships of one type from one concept or item to a concept (to resolve a key given
// without its SAB).
MATCH (a:{{src_label}} { {{src_key}}: $src })-[r:{{rel_type}}]->(b:Concept {cui: $dst})
RETURN r.sab AS sab, r.edge_id AS edge_id
