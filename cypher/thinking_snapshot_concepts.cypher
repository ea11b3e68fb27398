// Snapshot export: one page of concepts in CUI order, after the last CUI of the previous page.
MATCH (c:Concept)
WHERE c.cui > $after
WITH c ORDER BY c.cui LIMIT $limit
RETURN c.cui AS cui, c.name AS name, c.semantic_types AS semantic_types, c.semantic_group AS semantic_group
