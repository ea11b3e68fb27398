// Delete up to $limit nodes with their relationships (clearing a big graph in batches).
MATCH (n)
WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS deleted
