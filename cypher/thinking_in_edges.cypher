// Path search, store-backed: the traversable relationships arriving at these concepts.
// Excluded types and rejected edges are filtered here, so the search never sees them.
// Written as MATCH + OPTIONAL MATCH: for (a {cui})<-[r]-(b:Concept) FalkorDB's planner scans every
// concept per row (a minute on 50k concepts); this form starts from the indexed CUI.
UNWIND $cuis AS cui
MATCH (a:Concept {cui: cui})
OPTIONAL MATCH (a)<-[r]-(b:Concept)
WHERE NOT type(r) IN $excluded AND coalesce(r.status, 'active') <> 'rejected' AND b.cui <> cui
WITH cui, r, b
WHERE r IS NOT NULL
RETURN cui, b.cui AS other, type(r) AS relation, r.edge_id AS edge_id, r.rela AS rela, r.sab AS sab, r.source AS source
