"""MIMIC-IV ingestion: schema checks, lazy reads, conversion, timelines and the record serializer."""
