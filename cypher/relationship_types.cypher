// Relationship types present in the graph (the data part of the vocabulary).
CALL db.relationshipTypes() YIELD relationshipType
RETURN relationshipType
