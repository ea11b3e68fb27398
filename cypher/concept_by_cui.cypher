// One concept by its CUI.
MATCH (c:Concept {cui: $cui})
RETURN c.cui AS cui, c.name AS name, c.semantic_types AS semantic_types, c.semantic_group AS semantic_group
