// Variant of typed_paths where each step may follow a relationship either way (startNode tells
// which). Much more expensive on graphs with hub concepts: a breadth-first search in both
// directions at once, and every shortest path is enumerated before LIMIT applies.
MATCH (a:Concept {cui: $source}), (b:Concept {cui: $target})
WITH a, b
MATCH p = allShortestPaths((a)-[:{{rel_types}}*1..{{max_hops}} {status: 'active'}]-(b))
RETURN [n IN nodes(p) | n.cui] AS cuis,
       [n IN nodes(p) | n.name] AS names,
       [r IN relationships(p) | type(r)] AS types,
       [r IN relationships(p) | startNode(r).cui] AS starts,
       [r IN relationships(p) | r.edge_id] AS edge_ids,
       [r IN relationships(p) | r.sab] AS sabs
LIMIT $limit
