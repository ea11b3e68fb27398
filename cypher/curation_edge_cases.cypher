// The cases whose thinking graphs use an edge (on a path or as the association behind their
// evidence), a page of them, with how they use it.
MATCH (e:EdgeRef {edge_id: $edge_id})<-[u:USES_EDGE]-(c:Case)
WITH c, collect(DISTINCT u.target_cui) AS target_cuis, collect(DISTINCT u.role) AS roles, count(u) AS uses
RETURN c.id AS case_id, c.task AS task, c.sample_id AS sample_id, target_cuis, roles, uses
ORDER BY case_id
LIMIT $limit
