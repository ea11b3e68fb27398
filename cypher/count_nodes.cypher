// Number of nodes with one label.
MATCH (n:{{node_label}})
RETURN count(n) AS n
