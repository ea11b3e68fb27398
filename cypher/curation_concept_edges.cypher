// A concept's relationships for the curation page: concept relations both ways and the items
// mapped to it (CODE_OF left out), a page of them.
MATCH (a:Concept {cui: $cui})-[r]-(b)
WHERE type(r) <> 'CODE_OF' AND type(r) <> 'USES_EDGE'
RETURN type(r) AS relation, startNode(r) = a AS outgoing, coalesce(b.cui, b.id) AS other, b.name AS other_name,
       r.sab AS sab, r.edge_id AS edge_id, coalesce(r.status, 'active') AS status, r.source AS source,
       r.method AS method, r.score AS score, r.support AS support, r.task AS task
ORDER BY relation, other
LIMIT $limit
