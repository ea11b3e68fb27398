// Node labels present in the graph.
CALL db.labels() YIELD label
RETURN label
