// Snapshot export, FalkorDB: the range of concept node ids to page over, and the concept count.
MATCH (c:Concept)
RETURN min(id(c)) AS low, max(id(c)) AS high, count(c) AS concepts
