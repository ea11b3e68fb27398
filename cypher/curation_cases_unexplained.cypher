// Cases with an unexplained target among these concepts (an edge a curator added may explain it).
MATCH (c:Case)
WHERE any(cui IN c.unexplained_targets WHERE cui IN $cuis)
RETURN c.id AS case_id, c.task AS task, c.sample_id AS sample_id, c.unexplained_targets AS unexplained
