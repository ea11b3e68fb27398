"""UMLS RRF reading and the open demo graph written in the same RRF shape."""
