"""ehr-r1 data and graph layer: MIMIC-IV ingestion, knowledge graph, thinking graphs, curation.

The base layer: it never imports `bench`, `generators`, `training` or `ehr_r1`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ehr-r1")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
