// The provenance of one mining run of one task (cohort = hash of its train sample ids).
MERGE (m:AssociationRun {id: $id})
SET m.task = $task, m.cohort = $cohort, m.cohort_label = $cohort_label, m.n_samples = $n_samples,
    m.config = $config, m.options = $options, m.associations = $associations, m.version = $version
RETURN m.id AS id
