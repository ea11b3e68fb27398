// The edges one source vocabulary states (here PharmacotherapyDB's indications), with their
// stable edge ids (the ids curation and thinking graphs refer to).
// params: sab=PHARMDB limit=20
MATCH (a:Concept)-[r]->(b:Concept)
WHERE r.sab = $sab
RETURN a.name AS source, type(r) AS relation, b.name AS target, r.rela AS rela, r.edge_id AS edge_id
ORDER BY edge_id
LIMIT $limit
