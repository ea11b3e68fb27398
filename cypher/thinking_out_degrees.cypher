// Path search, store-backed: how many traversable relationships leave each of these concepts
// (which side of the search to grow), counted in the server instead of fetched.
UNWIND $cuis AS cui
MATCH (a:Concept {cui: cui})
OPTIONAL MATCH (a)-[r]->(b:Concept)
WHERE NOT type(r) IN $excluded AND coalesce(r.status, 'active') <> 'rejected' AND b.cui <> cui
RETURN cui, count(r) AS degree
