// Before a case's thinking graph is (re)written: drop its old edge-usage records.
UNWIND $ids AS id
MATCH (c:Case {id: id})-[u:USES_EDGE]->(:EdgeRef)
DELETE u
RETURN count(*) AS deleted
