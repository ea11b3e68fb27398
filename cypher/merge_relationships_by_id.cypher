// One batch of relationships that carry their own identity (edge_id): merged on it, so two
// sources stating the same pair of concepts keep two edges; rerunning a batch changes nothing.
UNWIND $rows AS row
MATCH (a:{{src_label}} { {{src_key}}: row.src })
MATCH (b:{{dst_label}} { {{dst_key}}: row.dst })
MERGE (a)-[r:{{rel_type}} {edge_id: row.properties.edge_id}]->(b)
SET r += row.properties
RETURN count(r) AS merged
