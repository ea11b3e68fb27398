// How many edge uses the thinking-graph records hold (a count FalkorDB keeps: no scan); the
// curation page recomputes its review queue when it changes.
MATCH ()-[u:USES_EDGE]->()
RETURN count(u) AS uses
