// Name and semantic types of these concepts (thinking-graph nodes); unknown CUIs give no row.
UNWIND $cuis AS cui
MATCH (c:Concept {cui: cui})
RETURN c.cui AS cui, c.name AS name, c.semantic_types AS semantic_types, c.semantic_group AS semantic_group
