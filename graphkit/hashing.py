"""Stable hashes for configs and files, recorded in every dataset card and result file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def stable_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def config_hash(obj: Any, length: int = 16) -> str:
    return hashlib.sha256(stable_json(obj).encode("utf-8")).hexdigest()[:length]


def file_hash(path: str | Path, length: int = 16, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()[:length]
