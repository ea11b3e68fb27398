// Snapshot export, FalkorDB: the concepts whose node id is in [$low, $high) as ONE string (rows
// joined by $rs, fields "node id, cui, name, semantic type, group" by $fs; the separators are replaced in names).
MATCH (c:Concept)
WHERE id(c) >= $low AND id(c) < $high
RETURN string.join(collect(
  toString(id(c)) + $fs + c.cui + $fs + replace(replace(coalesce(c.name, ''), $rs, ' '), $fs, ' ') + $fs +
  coalesce(c.semantic_types[0], '') + $fs + coalesce(c.semantic_group, '')), $rs) AS page, count(c) AS n
