// After a new mining run of a task: delete that task's active associations from other runs.
// Rejected ones stay, so a curator's decision outlives re-mining.
MATCH (:Concept)-[r:ASSOCIATED_WITH]->(:Concept)
WHERE r.task = $task AND coalesce(r.status, 'active') <> 'rejected'
  AND (r.cohort <> $cohort OR r.config <> $config)
DELETE r
RETURN count(*) AS deleted
