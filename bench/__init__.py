"""EHR-Bench: task definitions, the sample builder, metrics and evaluation (imports graphkit only)."""
