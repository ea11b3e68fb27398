// Ancestors of a concept through is-a and code-hierarchy edges, nearest first.
// params: cui=C0011860
MATCH p = (c:Concept {cui: $cui})-[:ISA|CHILD_OF*1..6 {status: 'active'}]->(a:Concept)
RETURN a.cui AS cui, a.name AS ancestor, min(length(p)) AS depth
ORDER BY depth, cui
