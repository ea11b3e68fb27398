// Directed variant of typed_paths: every step goes from $source towards $target.
// Same form as typed_paths (allShortestPaths after WITH, property-map filter on status).
MATCH (a:Concept {cui: $source}), (b:Concept {cui: $target})
WITH a, b
MATCH p = allShortestPaths((a)-[:{{rel_types}}*1..{{max_hops}} {status: 'active'}]->(b))
RETURN [n IN nodes(p) | n.cui] AS cuis,
       [n IN nodes(p) | n.name] AS names,
       [r IN relationships(p) | type(r)] AS types,
       [r IN relationships(p) | startNode(r).cui] AS starts,
       [r IN relationships(p) | r.edge_id] AS edge_ids,
       [r IN relationships(p) | r.sab] AS sabs
LIMIT $limit
