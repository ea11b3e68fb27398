"""EHR-Ins: verbalizers, filters and dataset writers (imports graphkit and bench)."""
