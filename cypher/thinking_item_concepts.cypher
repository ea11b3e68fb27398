// Item keys and their concepts, for turning sample items into concepts (mining, thinking graphs).
// Mappings a curator rejected are left out.
MATCH (i:Item)-[m:MAPS_TO]->(c:Concept)
WHERE coalesce(m.status, 'active') <> 'rejected'
RETURN i.id AS key, c.cui AS cui
