"""The one exception root of ehr-r1.

Every error a user can cause says where (file, table, column, field, option), what value was
wrong, and how to fix it. The CLI prints ``str(error)`` on one line and exits with code 2.
"""

from __future__ import annotations

from typing import Any

_UNSET = object()


class EhrR1Error(Exception):
    """Root of all errors raised on purpose by ehr-r1."""

    def __init__(self, problem: str, *, where: str | None = None, value: Any = _UNSET, fix: str | None = None):
        self.problem = problem
        self.where = where
        self.value = None if value is _UNSET else value
        self.has_value = value is not _UNSET
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = f"{self.where}: {self.problem}" if self.where else self.problem
        if self.has_value:
            text += f" (got {_short(self.value)})"
        if self.fix:
            text += f"; fix: {self.fix}"
        return " ".join(text.split())


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ConfigError(EhrR1Error):
    """A bad option, recipe, task definition or configuration value."""


class InputError(EhrR1Error):
    """Bad input data: a missing file, table or column, an unparseable value."""


class SchemaError(InputError):
    """Input data that does not match the published MIMIC-IV schema."""


class ExtraMissingError(EhrR1Error):
    """An optional dependency group is not installed."""


class GraphError(EhrR1Error):
    """Knowledge-graph content or build errors (RRF files, vocabularies, links)."""


class StoreError(GraphError):
    """The graph database cannot be reached, started or queried."""


class CypherError(StoreError):
    """A Cypher query failed to parse or run."""


class TaskError(ConfigError):
    """A benchmark task definition is invalid."""


class EndpointError(EhrR1Error):
    """A model endpoint failed, refused or returned something unusable."""


class RemoteEndpointRefused(EndpointError):
    """A non-loopback endpoint was given without the explicit opt-in."""


class LedgerError(EhrR1Error):
    """The curation ledger is corrupt, truncated or was tampered with."""
