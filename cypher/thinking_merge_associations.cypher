// One batch of mined associations (context concept -> target concept), merged on edge_id.
// A new edge starts active; an edge a curator rejected keeps its status, only its numbers change.
UNWIND $rows AS row
MATCH (a:Concept {cui: row.source})
MATCH (b:Concept {cui: row.target})
MERGE (a)-[r:ASSOCIATED_WITH {edge_id: row.edge_id}]->(b)
ON CREATE SET r.status = 'active'
SET r.task = row.task, r.support = row.support, r.confidence = row.confidence, r.lift = row.lift,
    r.source_count = row.source_count, r.target_count = row.target_count, r.n_samples = row.n_samples,
    r.rank = row.rank, r.sab = row.sab, r.cohort = row.cohort, r.config = row.config, r.source = 'association'
RETURN count(r) AS merged
