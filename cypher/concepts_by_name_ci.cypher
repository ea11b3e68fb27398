// Concepts whose preferred name equals $name_lower ignoring case (a scan: the fallback).
MATCH (c:Concept)
WHERE toLower(c.name) = $name_lower
RETURN c.cui AS cui, c.name AS name
ORDER BY cui
LIMIT $limit
