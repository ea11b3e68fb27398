"""Shared helpers for the typer sub-apps (only ``*/cli.py`` modules import this)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from graphkit.workspace import Workspace, resolve_workspace

console = Console()
err_console = Console(stderr=True)


@dataclass
class AppState:
    workspace_option: Path | None = None
    verbose: bool = False
    _workspace: Workspace | None = field(default=None, repr=False)

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = resolve_workspace(self.workspace_option)
        return self._workspace


def state(ctx: typer.Context) -> AppState:
    """The root app's state; a sub-app run on its own gets a default one."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def workspace(ctx: typer.Context) -> Workspace:
    return state(ctx).workspace


class RichProgress:
    """graphkit.progress.Progress rendered with rich on stderr."""

    def __init__(self, transient: bool = False):
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=transient,
        )

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def start(self, description: str, total: int | None = None) -> int:
        return self._progress.add_task(description, total=total)

    def advance(self, handle: int, amount: int = 1) -> None:
        self._progress.advance(handle, amount)

    def finish(self, handle: int) -> None:
        task = self._progress.tasks[handle] if handle < len(self._progress.tasks) else None
        if task is not None and task.total is None:
            self._progress.update(handle, total=task.completed)


def parse_params(pairs: list[str] | None) -> dict[str, object]:
    """``key=value`` pairs into a dict; values that parse as JSON numbers/bools/lists are typed."""
    import json

    from graphkit.errors import ConfigError

    result: dict[str, object] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError("expected key=value", where="parameter", value=pair, fix="write it as name=value")
        key, raw = pair.split("=", 1)
        try:
            result[key.strip()] = json.loads(raw)
        except ValueError:
            result[key.strip()] = raw
    return result
