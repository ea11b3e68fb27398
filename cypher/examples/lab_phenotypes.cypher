// What an abnormal result of a MIMIC lab item indicates (LOINC2HPO on the demo graph).
// params: key=labevents:50931
MATCH (i:Item {id: $key})-[:MAPS_TO]->(lab:Concept)-[r:HIGH_RESULT_INDICATES|LOW_RESULT_INDICATES|ABNORMAL_RESULT_INDICATES {status: 'active'}]->(p:Concept)
RETURN lab.name AS test, type(r) AS relation, p.cui AS cui, p.name AS phenotype
ORDER BY relation, phenotype
