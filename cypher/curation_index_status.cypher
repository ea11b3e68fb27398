// FalkorDB only: the state of every index ("OPERATIONAL" or "UNDER CONSTRUCTION"). Indexes are
// filled in the background after a load or a server start; until then lookups scan.
CALL db.indexes() YIELD label, properties, status
RETURN label, properties, status
