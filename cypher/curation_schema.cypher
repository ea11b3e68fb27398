// Indexes of curation's review queue, in the Neo4j 5 syntax of schema.cypher (the store
// translates them for FalkorDB): low-confidence mappings and associations with small support
// are found through these instead of a scan of every item or node.
CREATE INDEX mapping_confidence IF NOT EXISTS FOR ()-[r:MAPS_TO]-() ON (r.score, r.method);
CREATE INDEX association_support IF NOT EXISTS FOR ()-[r:ASSOCIATED_WITH]-() ON (r.support);
