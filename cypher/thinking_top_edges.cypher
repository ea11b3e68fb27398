// Most used edges of a task ($task null: all tasks), by the number of cases whose paths use them.
MATCH (c:Case)-[u:USES_EDGE]->(e:EdgeRef)
WHERE ($task IS NULL OR c.task = $task) AND u.role = 'path'
WITH c.task AS task, e, count(DISTINCT c) AS cases, count(u) AS uses
RETURN task, e.edge_id AS edge_id, e.src AS source, e.relation AS relation, e.dst AS target,
       e.origin AS origin, cases, uses
ORDER BY task, cases DESC, uses DESC, edge_id
LIMIT $limit
