// Which paths support case X: every edge its thinking graph uses, path by path, in walking
// order, with the edge's current status in the live graph (null when the edge is gone).
MATCH (c:Case {id: $case_id})-[u:USES_EDGE]->(e:EdgeRef)
OPTIONAL MATCH (a:Concept {cui: e.src})-[r]->(b:Concept {cui: e.dst})
WHERE r.edge_id = e.edge_id
RETURN c.id AS case_id, c.task AS task, u.target_cui AS target_cui, u.role AS role, u.path AS path,
       u.position AS position, e.edge_id AS edge_id, e.src AS source, e.relation AS relation, e.dst AS target,
       e.origin AS origin, r.status AS status
ORDER BY target_cui, role DESC, path, position, edge_id
