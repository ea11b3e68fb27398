// Concepts whose preferred name is exactly $name (indexed).
MATCH (c:Concept {name: $name})
RETURN c.cui AS cui, c.name AS name
ORDER BY cui
LIMIT $limit
