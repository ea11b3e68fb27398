// Snapshot export: every concept-to-concept relationship whose source CUI is in [$low, $high),
// rejected ones included (the snapshot flags them; the search never traverses them).
MATCH (a:Concept)-[r]->(b:Concept)
WHERE a.cui >= $low AND a.cui < $high
RETURN a.cui AS src, b.cui AS dst, type(r) AS type, r.edge_id AS edge_id, r.status AS status,
       r.sab AS sab, r.rela AS rela, r.source AS source
