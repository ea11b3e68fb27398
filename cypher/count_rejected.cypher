// Relationships a curator rejected (kept in the graph, never traversed), by type.
MATCH ()-[r]->()
WHERE r.status = 'rejected'
RETURN type(r) AS type, count(r) AS n
