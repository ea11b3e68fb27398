// An edge of one relationship type by its edge_id (served by that type's edge_id index).
MATCH (a:Concept)-[r:{{rel_type}}]->(b:Concept)
WHERE r.edge_id = $edge_id
RETURN a.cui AS source, b.cui AS target, r.sab AS sab
LIMIT 1
