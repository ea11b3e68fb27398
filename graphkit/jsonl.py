"""Reading JSON Lines files (plain or gzip) with errors that name the file and line."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphkit.errors import InputError


def read_jsonl(path: Path, *, fix: str) -> Iterator[tuple[int, Any]]:
    """(line number from 1, parsed value) for each non-blank line; ``*.gz`` is decompressed.

    A line that is not JSON raises InputError at ``<path> line <n>`` with ``fix`` (what the
    caller's user should do: regenerate the file, repair it...).
    """
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"not valid JSON ({exc.msg})", where=f"{path} line {number}", fix=fix) from None
                yield number, value
