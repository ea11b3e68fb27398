// Indexes of the thinking-graph records, in the Neo4j 5 syntax of schema.cypher (the store
// translates them for FalkorDB). Edge usage goes through (:EdgeRef) nodes rather than
// relationship properties: "which cases use edge E" must find E without knowing its type, and
// only node indexes serve that on both backends.
CREATE CONSTRAINT case_id IF NOT EXISTS FOR (n:Case) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT edgeref_edge_id IF NOT EXISTS FOR (n:EdgeRef) REQUIRE n.edge_id IS UNIQUE;
CREATE CONSTRAINT association_run_id IF NOT EXISTS FOR (n:AssociationRun) REQUIRE n.id IS UNIQUE;
CREATE INDEX case_task IF NOT EXISTS FOR (n:Case) ON (n.task);
