"""Progress reporting without printing: library code reports, the CLI renders (rich)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")


class Progress(Protocol):
    def start(self, description: str, total: int | None = None) -> int:
        """Open a task and return its handle."""

    def advance(self, handle: int, amount: int = 1) -> None: ...

    def finish(self, handle: int) -> None: ...


class NullProgress:
    def start(self, description: str, total: int | None = None) -> int:
        return 0

    def advance(self, handle: int, amount: int = 1) -> None:
        pass

    def finish(self, handle: int) -> None:
        pass


NULL_PROGRESS = NullProgress()


def track(items: Iterable[T], description: str, progress: Progress | None, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` while advancing one progress task."""
    progress = progress or NULL_PROGRESS
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    handle = progress.start(description, total)
    try:
        for item in items:
            yield item
            progress.advance(handle)
    finally:
        progress.finish(handle)
