// Curation: which of these concept CUIs and item ids are in the graph (endpoints of an added edge).
UNWIND $cuis AS cui
MATCH (c:Concept {cui: cui})
RETURN c.cui AS key
UNION
UNWIND $items AS id
MATCH (i:Item {id: id})
RETURN i.id AS key
