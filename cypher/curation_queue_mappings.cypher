// Review queue: low-confidence item -> concept mappings (score below $max_score, or made by a
// text method), weakest first. The ends are left unlabeled (MAPS_TO only joins an item to a
// concept) so that FalkorDB serves the filter from the index of curation_schema.
MATCH (i)-[m:MAPS_TO]->(c)
WHERE m.score < $max_score OR m.method IN $methods
RETURN i.id AS source, i.name AS source_name, c.cui AS target, c.name AS target_name, m.method AS method,
       m.score AS score, coalesce(m.status, 'active') AS status
ORDER BY score, source, target
LIMIT $limit
