// Number of relationships of one type.
MATCH ()-[r:{{rel_type}}]->()
RETURN count(r) AS n
