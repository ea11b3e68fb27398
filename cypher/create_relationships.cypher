// One batch of new relationships between existing nodes (bulk load into an empty graph).
UNWIND $rows AS row
MATCH (a:{{src_label}} { {{src_key}}: row.src })
MATCH (b:{{dst_label}} { {{dst_key}}: row.dst })
CREATE (a)-[r:{{rel_type}}]->(b)
SET r = row.properties
