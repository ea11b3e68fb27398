// The usage record of an edge id: its stored endpoints and type (the key of an edge some case used).
MATCH (e:EdgeRef {edge_id: $edge_id})
RETURN e.src AS source, e.relation AS relation, e.dst AS target, e.origin AS origin
