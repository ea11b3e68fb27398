// The MIMIC-IV items linked to a concept (the reverse of item_concepts).
// params: cui=C0011860
MATCH (i:Item)-[m:MAPS_TO]->(c:Concept {cui: $cui})
RETURN i.id AS key, i.table AS table, i.name AS item, m.method AS method
ORDER BY key
