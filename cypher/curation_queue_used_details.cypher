// Review queue: for these edge ids, the cases that use each on a path, its uses, and the live
// edge's SAB, status and endpoint names (null when the edge is gone).
UNWIND $ids AS id
MATCH (e:EdgeRef {edge_id: id})<-[u:USES_EDGE]-(c:Case)
WHERE u.role = 'path'
WITH e, count(DISTINCT c) AS cases, count(u) AS uses
OPTIONAL MATCH (a:Concept {cui: e.src})-[r]->(b:Concept {cui: e.dst})
WHERE r.edge_id = e.edge_id
RETURN e.edge_id AS edge_id, e.src AS source, e.relation AS relation, e.dst AS target, e.origin AS origin,
       r.sab AS sab, r.status AS status, a.name AS source_name, b.name AS target_name, cases, uses
