"""Every Cypher query of ehr-r1, one named ``.cypher`` file each, loaded by name.

Values always travel as ``$params``. Labels and relationship types are never interpolated from
user input; where a query needs a type it comes from the validated vocabulary of
``graphkit.store`` and is substituted into a ``{{placeholder}}`` by the store itself.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from graphkit.errors import ConfigError

_NAME = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)?$")


def _root():
    return resources.files(__name__)


def names(folder: str | None = None) -> list[str]:
    """Query names (without ``.cypher``), optionally of a sub-folder such as ``examples``."""
    base = _root() / folder if folder else _root()
    prefix = f"{folder}/" if folder else ""
    return sorted(prefix + entry.name[: -len(".cypher")] for entry in base.iterdir() if entry.name.endswith(".cypher"))


@cache
def load(name: str) -> str:
    """The text of ``cypher/<name>.cypher`` (``name`` may be ``examples/<name>``)."""
    if not _NAME.match(name):
        raise ConfigError("not a valid query name", where="cypher query", value=name, fix="use lower_snake_case names")
    path = _root().joinpath(*f"{name}.cypher".split("/"))
    if not path.is_file():
        raise ConfigError(
            "no such query file", where="cypher query", value=name, fix=f"choose one of {', '.join(names())}"
        )
    return path.read_text(encoding="utf-8")


def statements(name: str) -> list[str]:
    """A multi-statement file (such as ``schema``) split on ``;``, comments and blanks dropped."""
    body = "\n".join(line for line in load(name).splitlines() if not line.strip().startswith("//"))
    return [part.strip() for part in body.split(";") if part.strip()]
