// One batch of nodes merged on their label's key; the row's properties are set on the node.
UNWIND $rows AS row
MERGE (n:{{node_label}} { {{node_key}}: row.key })
SET n += row.properties
RETURN count(n) AS merged
