// MIMIC items present in the data that no concept was linked to (candidates for curation).
// params: table=prescriptions limit=20
MATCH (i:Item {table: $table})
WHERE NOT (i)-[:MAPS_TO]->(:Concept)
RETURN i.id AS key, i.name AS item
ORDER BY key
LIMIT $limit
