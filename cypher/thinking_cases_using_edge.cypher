// Which cases use edge E (on a path or as the association that chose their evidence).
MATCH (e:EdgeRef {edge_id: $edge_id})<-[u:USES_EDGE]-(c:Case)
RETURN c.id AS case_id, c.task AS task, c.sample_id AS sample_id,
       collect(DISTINCT u.target_cui) AS target_cuis, collect(DISTINCT u.role) AS roles, count(u) AS uses
ORDER BY case_id
