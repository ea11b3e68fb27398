// Which of these keys name an existing node (to report the missing endpoints of a batch).
UNWIND $keys AS key
MATCH (n:{{node_label}} { {{node_key}}: key })
RETURN DISTINCT key
