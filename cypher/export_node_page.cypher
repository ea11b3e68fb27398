// One page of nodes of a label, in key order after $after (export; keyset paging).
MATCH (n:{{node_label}})
WHERE n.{{node_key}} > $after
RETURN n.{{node_key}} AS key, properties(n) AS properties
ORDER BY key
LIMIT $limit
