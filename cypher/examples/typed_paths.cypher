// Typed paths between two concepts: the shortest paths over the relation types listed in the
// pattern (edit the list), each step in either direction; rejected edges are never used.
// `starts` says which end each step points from. (`ehr-r1 graph paths` does the same by name.)
// params: source=C9008217 target=C0020456
MATCH (a:Concept {cui: $source}), (b:Concept {cui: $target})
WITH a, b
MATCH p = allShortestPaths((a)-[:MAY_TREAT|PALLIATES|ISA|CHILD_OF|MAPPED_TO|HAS_SYMPTOM*1..4 {status: 'active'}]-(b))
RETURN [n IN nodes(p) | n.name] AS names,
       [r IN relationships(p) | type(r)] AS relations,
       [r IN relationships(p) | startNode(r).cui] AS starts
LIMIT 10
