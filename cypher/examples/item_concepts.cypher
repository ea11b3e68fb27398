// What a MIMIC-IV item maps to: its concepts, how each link was made (method, score) and the
// concepts' semantic group. Item keys as in CONTRACTS.md 4b (labevents:<itemid>,
// diagnoses_icd:<version>:<code>, prescriptions:<drug> ...).
// params: key=labevents:50931
MATCH (i:Item {id: $key})-[m:MAPS_TO]->(c:Concept)
RETURN i.table AS table, i.name AS item, m.method AS method, m.score AS score,
       c.cui AS cui, c.name AS concept, c.semantic_group AS semantic_group
ORDER BY score DESC, cui
