// Review queue: the edges most cases use on their thinking-graph paths ($task null: all tasks),
// with the live edge's SAB, status and endpoint names (null when the edge is gone).
MATCH (c:Case)-[u:USES_EDGE]->(e:EdgeRef)
WHERE u.role = 'path' AND ($task IS NULL OR c.task = $task)
WITH e, count(DISTINCT c) AS cases, count(u) AS uses
ORDER BY cases DESC, uses DESC, e.edge_id
LIMIT $limit
OPTIONAL MATCH (a:Concept {cui: e.src})-[r]->(b:Concept {cui: e.dst})
WHERE r.edge_id = e.edge_id
RETURN e.edge_id AS edge_id, e.src AS source, e.relation AS relation, e.dst AS target, e.origin AS origin,
       r.sab AS sab, r.status AS status, a.name AS source_name, b.name AS target_name, cases, uses
ORDER BY cases DESC, uses DESC, edge_id
