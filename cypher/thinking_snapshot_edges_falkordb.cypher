// Snapshot export, FalkorDB: the relationships of ONE concept relation type whose source node id
// is in [$low, $high), rejected ones included. Typed: FalkorDB reads one relation matrix instead
// of resolving the type of every edge (about 20x faster than an untyped pattern). Both ends are
// concepts for every type exported (the vocabulary's concept relations and ASSOCIATED_WITH), so
// no label test. One row per (status, sab, rela, source) with its relationships as ONE string
// (rows joined by $rs, fields "src node id, dst node id, edge_id" by $fs): the Python client
// parses results cell by cell, which costs more than the query itself.
MATCH (a)-[r:{{rel_type}}]->(b)
WHERE id(a) >= $low AND id(a) < $high
WITH r.status AS status, r.sab AS sab, r.rela AS rela, r.source AS source,
     collect(toString(id(a)) + $fs + toString(id(b)) + $fs + r.edge_id) AS rows
RETURN status, sab, rela, source, string.join(rows, $rs) AS page, size(rows) AS n
