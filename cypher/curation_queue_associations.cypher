// Review queue: mined associations with small support ($task null: all tasks), smallest first.
// The ends are left unlabeled (ASSOCIATED_WITH only joins concepts): FalkorDB then serves the
// support filter from its index instead of scanning every concept first.
MATCH (a)-[r:ASSOCIATED_WITH]->(b)
WHERE r.support <= $max_support AND ($task IS NULL OR r.task = $task)
RETURN a.cui AS source, a.name AS source_name, b.cui AS target, b.name AS target_name, r.sab AS sab,
       r.edge_id AS edge_id, r.task AS task, r.support AS support, r.lift AS lift, r.confidence AS confidence,
       coalesce(r.status, 'active') AS status
ORDER BY support, lift, edge_id
LIMIT $limit
