// The cases whose thinking graphs use an edge (on a path or as the association behind their
// evidence): the first $limit of them with how they use it. Taking distinct cases before the
// per-case details lets the engine stop early on an edge thousands of cases use.
MATCH (e:EdgeRef {edge_id: $edge_id})<-[:USES_EDGE]-(c:Case)
WITH DISTINCT e, c
LIMIT $limit
MATCH (c)-[u:USES_EDGE]->(e)
RETURN c.id AS case_id, c.task AS task, c.sample_id AS sample_id, collect(DISTINCT u.target_cui) AS target_cuis,
       collect(DISTINCT u.role) AS roles, count(u) AS uses
ORDER BY case_id
