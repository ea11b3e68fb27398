"""Post-build hooks: code that must run on every freshly (re)built graph.

``ehr-r1 graph build`` calls every hook after each load, with the open store, before it records
the build as finished (a hook that fails is run again by the next build). The curation ledger
replay (issue 8) belongs here: a rebuild replaces the graph, and the ledger's rejections,
restorations and additions must be applied again. Two ways in:

- ``register_post_build(fn)`` at import time of the module that owns the hook, or
- a ``"module:function"`` entry in ``HOOK_ENTRY_POINTS`` (resolved when a build runs, so the
  hook's module is imported even when the CLI never imported it).

A hook is ``fn(store, *, workspace, graph_hash) -> dict | None``; what it returns is recorded in
the build state under ``post_build.hooks``. Hooks must be idempotent.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from graphkit.errors import ConfigError

log = logging.getLogger(__name__)

PostBuildHook = Callable[..., "dict | None"]

# "module:function" hooks resolved at build time; curation's ledger replay is added here (issue 8)
HOOK_ENTRY_POINTS: list[str] = ["graphkit.curation.replay:replay_after_build"]
_REGISTERED: list[PostBuildHook] = []


def register_post_build(hook: PostBuildHook) -> PostBuildHook:
    """Add a hook (usable as a decorator); registering the same function twice adds it once."""
    if hook not in _REGISTERED:
        _REGISTERED.append(hook)
    return hook


def unregister_post_build(hook: PostBuildHook) -> None:
    if hook in _REGISTERED:
        _REGISTERED.remove(hook)


def post_build_hooks() -> list[PostBuildHook]:
    hooks = list(_REGISTERED)
    for entry in HOOK_ENTRY_POINTS:
        module, _, name = entry.partition(":")
        try:
            hook = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                "a post-build hook cannot be loaded", where="graphkit.kg.hooks", value=entry
            ) from exc
        if hook not in hooks:
            hooks.append(hook)
    return hooks


def run_post_build(store, *, workspace, graph_hash: str) -> dict[str, Any]:
    reports: dict[str, Any] = {}
    for hook in post_build_hooks():
        name = f"{hook.__module__}.{getattr(hook, '__qualname__', hook.__name__)}"
        log.info("post-build hook %s", name)
        reports[name] = hook(store, workspace=workspace, graph_hash=graph_hash)
    return reports
