// One batch of new nodes (bulk load into an empty graph: CREATE, no lookup).
UNWIND $rows AS row
CREATE (n:{{node_label}})
SET n = row
