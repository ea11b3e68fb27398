"""An append-only journal: one JSON line per finished sample, the unit of resume.

Everything a sample produced (generators: its cases, rejected candidates, outcome and cost; the
bench evaluator: its completion and scores) is one line written with one ``write`` call, so a sample is either wholly in the journal or not at all.
A kill can at worst leave a torn last line; opening the journal cuts it off, and that sample is
simply done again. A sample id appears at most once: that is what makes a resume lose nothing
and duplicate nothing.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from graphkit.atomic import atomic_path
from graphkit.errors import InputError

log = logging.getLogger(__name__)


class Journal:
    """Entries are dicts with at least ``id`` (the sample id) and ``i`` (its position in the input).

    ``redo_fix`` is the advice an error gives when the file is damaged (how to redo the work).
    """

    def __init__(self, path: str | Path, *, redo_fix: str = "delete the journal file to redo its samples"):
        self.path = Path(path)
        self.redo_fix = redo_fix
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None

    def load(self) -> dict[str, int]:
        """sample id -> position of every finished sample; repairs a torn last line."""
        done: dict[str, int] = {}
        if not self.path.exists():
            return done
        good_end = 0
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.endswith(b"\n"):
                    break
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    if handle.read(1):
                        raise InputError("a journal line in the middle is not valid JSON", where=f"{self.path} line {number}",
                                         fix=self.redo_fix) from None
                    break
                if entry["id"] in done:
                    raise InputError("a sample occurs twice in the journal", where=str(self.path), value=entry["id"],
                                     fix=self.redo_fix)
                done[entry["id"]] = entry["i"]
                good_end += len(line)
        if good_end < self.path.stat().st_size:
            log.info("cutting a torn last line off %s (the interrupted sample will be redone)", self.path.name)
            os.truncate(self.path, good_end)
        return done

    def append(self, entry: dict[str, Any]) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        data = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        written = os.write(self._fd, data)
        if written != len(data):  # a short write (disk full): leave a torn line for load() to cut
            raise OSError(f"short write to {self.path} ({written} of {len(data)} bytes)")

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry, ordered by sample position, reading one line at a time (records are large)."""
        if not self.path.exists():
            return
        offsets: list[tuple[int, int]] = []
        with open(self.path, "rb") as handle:
            position = 0
            for line in handle:
                entry_index = json.loads(line)["i"]
                offsets.append((entry_index, position))
                position += len(line)
            for _, offset in sorted(offsets):
                handle.seek(offset)
                yield json.loads(handle.readline())

    def forget(self, sample_ids: Iterable[str]) -> int:
        """Drop these samples from the journal (so the next run redoes them); returns how many."""
        forget = set(sample_ids)
        if not self.path.exists() or not forget:
            return 0
        self.close()
        dropped = 0
        with atomic_path(self.path) as tmp, open(self.path, "rb") as source, open(tmp, "wb") as target:
            for line in source:
                if json.loads(line)["id"] in forget:
                    dropped += 1
                else:
                    target.write(line)
        return dropped
