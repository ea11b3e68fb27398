// The active associations of one task: what evidence selection reads.
MATCH (a:Concept)-[r:ASSOCIATED_WITH]->(b:Concept)
WHERE r.task = $task AND coalesce(r.status, 'active') <> 'rejected'
RETURN r.task AS task, a.cui AS source, b.cui AS target, r.support AS support, r.confidence AS confidence,
       r.lift AS lift, r.edge_id AS edge_id, r.sab AS sab, r.cohort AS cohort, r.config AS config
