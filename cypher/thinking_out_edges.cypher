// Path search, store-backed: the traversable relationships leaving these concepts.
// Excluded types and rejected edges are filtered here, so the search never sees them.
UNWIND $cuis AS cui
MATCH (a:Concept {cui: cui})-[r]->(b:Concept)
WHERE NOT type(r) IN $excluded AND coalesce(r.status, 'active') <> 'rejected' AND b.cui <> cui
RETURN cui, b.cui AS other, type(r) AS relation, r.edge_id AS edge_id, r.rela AS rela, r.sab AS sab, r.source AS source
