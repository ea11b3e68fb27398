"""UMLS RRF reading and the open demo graph written in the same RRF shape."""

from graphkit.umls.reader import Release, open_release

__all__ = ["Release", "open_release"]
