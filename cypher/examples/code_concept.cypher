// A source code (UMLS form: ICD codes dotted) -> its concept and the concept's other codes.
// params: sab=ICD10CM code=E11
MATCH (k:Code {sab: $sab, code: $code})-[:CODE_OF]->(c:Concept)
OPTIONAL MATCH (other:Code)-[:CODE_OF]->(c)
RETURN c.cui AS cui, c.name AS concept, collect(DISTINCT other.id) AS codes
