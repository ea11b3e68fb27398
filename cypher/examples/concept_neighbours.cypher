// Neighbours of a concept: every active relationship, its direction ("out": the concept is the
// subject, "a TYPE b" reads concept TYPE neighbour) and the source vocabulary that states it.
// params: cui=C0011860 limit=25
MATCH (c:Concept {cui: $cui})-[r]-(n:Concept)
WHERE r.status = 'active'
RETURN type(r) AS relation,
       CASE WHEN startNode(r) = c THEN 'out' ELSE 'in' END AS direction,
       n.cui AS cui, n.name AS name, r.sab AS sab
ORDER BY relation, cui
LIMIT $limit
