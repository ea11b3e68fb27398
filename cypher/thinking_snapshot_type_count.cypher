// Snapshot export, FalkorDB: how many relationships of one type (sizes the export pages).
MATCH ()-[r:{{rel_type}}]->()
RETURN count(r) AS n
