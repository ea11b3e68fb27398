// Shortest typed paths from $source to $target over active relationships of the given types,
// every step in its stored direction ("a T b" read forward). The one form both dialects run:
// FalkorDB's shortestPath lives only in WITH/RETURN and cannot filter relationships, while
// allShortestPaths needs both ends bound before it (hence WITH) and filters relationships by
// a property map. Rejected edges ({status: 'rejected'}) are never followed.
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
