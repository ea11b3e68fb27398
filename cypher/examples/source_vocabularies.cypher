// Edges by source vocabulary: how many concept relationships each SAB states, per type.
// params:
MATCH (:Concept)-[r]->(:Concept)
RETURN r.sab AS sab, type(r) AS relation, count(r) AS edges
ORDER BY edges DESC, sab, relation
