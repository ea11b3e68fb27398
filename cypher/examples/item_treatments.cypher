// Drugs that may treat (or palliate) what a diagnosis item stands for, looking up to two
// steps up its hierarchy or GEM mappings first (an ICD leaf code rarely has a drug of its own).
// params: key=diagnoses_icd:10:E119
MATCH (i:Item {id: $key})-[:MAPS_TO]->(c:Concept)
MATCH (c)-[:CHILD_OF|ISA|MAPPED_TO*0..2 {status: 'active'}]->(d:Concept)<-[t:MAY_TREAT|PALLIATES {status: 'active'}]-(drug:Concept)
RETURN DISTINCT drug.name AS drug, type(t) AS relation, d.name AS disease, t.sab AS sab
ORDER BY drug, relation
LIMIT 25
