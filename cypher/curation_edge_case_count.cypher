// How many cases use an edge (and how many uses they make), counting at most $cap cases: an edge
// tens of thousands of cases use is shown as "more than $cap - 1" instead of counted in full.
MATCH (e:EdgeRef {edge_id: $edge_id})<-[:USES_EDGE]-(c:Case)
WITH DISTINCT e, c
LIMIT $cap
MATCH (c)-[u:USES_EDGE]->(e)
RETURN count(DISTINCT c) AS cases, count(u) AS uses
