// One batch of thinking graphs as (:Case) nodes with one USES_EDGE per use of an edge:
// role "path" (edge `position` of path `path` explaining `target_cui`) or "evidence" (the
// association that chose an evidence concept for `target_cui`; path and position -1).
UNWIND $rows AS row
MERGE (c:Case {id: row.id})
SET c.task = row.task, c.sample_id = row.sample_id, c.graph_hash = row.graph_hash,
    c.config_hash = row.config_hash, c.targets = row.targets, c.unexplained_targets = row.unexplained,
    c.n_paths = row.n_paths, c.thinking_graph = row.thinking_graph
FOREACH (use IN row.uses |
  MERGE (e:EdgeRef {edge_id: use.edge_id})
  SET e.src = use.src, e.dst = use.dst, e.relation = use.relation, e.origin = use.origin
  MERGE (c)-[u:USES_EDGE {target_cui: use.target_cui, role: use.role, path: use.path, position: use.position}]->(e)
  SET u.edge_id = use.edge_id
)
RETURN count(c) AS merged
