// Concept search for the curation page: names containing $text (lower case), a page of them.
MATCH (c:Concept)
WHERE toLower(c.name) CONTAINS $text
RETURN c.cui AS cui, c.name AS name, c.semantic_group AS semantic_group
LIMIT $limit
