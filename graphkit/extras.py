"""Lazy imports of optional dependency groups, with an error that names the pip command."""

from __future__ import annotations

import importlib
from types import ModuleType

from graphkit.errors import ExtraMissingError


def require(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise an error telling which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f"{purpose} needs" if purpose else "this needs"
        raise ExtraMissingError(
            f"{what} the Python package '{module.split('.')[0]}', which is not installed",
            where=f"extra '{extra}'",
            fix=f"pip install 'ehr-r1[{extra}]'",
        ) from exc


def available(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
