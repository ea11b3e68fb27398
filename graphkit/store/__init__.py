"""The GraphStore protocol and its backends (embedded FalkorDB, Neo4j)."""
