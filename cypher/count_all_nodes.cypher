// Number of nodes in the graph.
MATCH (n)
RETURN count(n) AS n
