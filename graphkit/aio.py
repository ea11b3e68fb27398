"""Bounded concurrency over an iterator, for clients of model endpoints.

``bounded_map(fn, items, window)`` runs ``fn(item)`` for up to ``window`` items at a time and
yields ``(item, result)`` as each finishes. Only ``window`` tasks exist at once, so a million
samples never become a million tasks, and the items are drawn lazily from the iterator.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def bounded_map(fn: Callable[[T], Awaitable[R]], items: Iterable[T], window: int) -> AsyncIterator[tuple[T, R]]:
    if window < 1:
        raise ValueError("window must be at least 1")
    remaining = iter(items)
    pending: dict[asyncio.Task, T] = {}

    def fill() -> None:
        while len(pending) < window:
            item = next(remaining, _END)
            if item is _END:
                return
            pending[asyncio.ensure_future(fn(item))] = item

    fill()
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                item = pending.pop(task)
                yield item, task.result()
            fill()
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


_END = object()
