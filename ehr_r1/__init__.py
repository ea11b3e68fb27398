"""The ``ehr-r1`` command line: composes the sub-apps of graphkit, bench, generators, training."""

from graphkit import __version__

__all__ = ["__version__"]
