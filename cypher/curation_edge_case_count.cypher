// How many cases use an edge, and how many uses that makes.
MATCH (e:EdgeRef {edge_id: $edge_id})<-[u:USES_EDGE]-(c:Case)
RETURN count(DISTINCT c) AS cases, count(u) AS uses
