// Review queue, FalkorDB: the usage records with the most uses, by in-degree (no scan of every
// use); curation_queue_used_details then counts the cases of these few exactly.
MATCH (e:EdgeRef)
WITH e, indegree(e, 'USES_EDGE') AS uses
ORDER BY uses DESC, e.edge_id
LIMIT $limit
RETURN e.edge_id AS edge_id, uses
