// Constraints and indexes of the ehr-r1 graph, written in Neo4j 5 syntax and applied as written
// on Neo4j (IF NOT EXISTS makes them idempotent). FalkorDB has neither IF NOT EXISTS nor index
// names, and makes unique constraints with the GRAPH.CONSTRAINT command over a range index:
// graphkit/store/schema.py translates each statement and skips what already exists.
// A statement with {{rel_type}} is applied once per relationship type in the graph whose
// relationships carry an edge_id (concept relations, ASSOCIATED_WITH).
CREATE CONSTRAINT concept_cui IF NOT EXISTS FOR (n:Concept) REQUIRE n.cui IS UNIQUE;
CREATE CONSTRAINT code_id IF NOT EXISTS FOR (n:Code) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT item_id IF NOT EXISTS FOR (n:Item) REQUIRE n.id IS UNIQUE;
CREATE INDEX concept_name IF NOT EXISTS FOR (n:Concept) ON (n.name);
CREATE INDEX code_sab_code IF NOT EXISTS FOR (n:Code) ON (n.sab, n.code);
CREATE INDEX item_table_code IF NOT EXISTS FOR (n:Item) ON (n.table, n.code);
CREATE INDEX edge_id_{{rel_type}} IF NOT EXISTS FOR ()-[r:{{rel_type}}]-() ON (r.edge_id);
