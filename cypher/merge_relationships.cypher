// One batch of relationships identified by their two endpoints (CODE_OF, MAPS_TO).
UNWIND $rows AS row
MATCH (a:{{src_label}} { {{src_key}}: row.src })
MATCH (b:{{dst_label}} { {{dst_key}}: row.dst })
MERGE (a)-[r:{{rel_type}}]->(b)
SET r += row.properties
RETURN count(r) AS merged
