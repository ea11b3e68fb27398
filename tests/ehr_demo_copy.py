"""Cheap, editable copies of the bundled MIMIC-IV demo for the ingestion tests.

Untouched files are symlinked (the demo is read-only and ~30 MB); a test replaces only the file it
breaks, so each broken copy costs milliseconds.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path


def demo_copy(demo_dir: Path, target: Path, modules: tuple[str, ...] = ("hosp", "icu")) -> Path:
    for module in modules:
        (target / module).mkdir(parents=True, exist_ok=True)
        for source in sorted((demo_dir / module).iterdir()):
            (target / module / source.name).symlink_to(source)
    return target


def read_csv_gz(path: Path) -> str:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return handle.read()


def write_csv_gz(path: Path, text: str) -> None:
    if path.is_symlink() or path.exists():
        path.unlink()
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write(text)


def replace_in_table(copy: Path, relative: str, old: str, new: str, count: int = 1) -> None:
    """Rewrite one demo table with ``old`` replaced by ``new`` (the first ``count`` times)."""
    path = copy / relative
    text = read_csv_gz(path)
    assert old in text, f"{old!r} not in {relative}"
    write_csv_gz(path, text.replace(old, new, count))


def materialize(path: Path) -> None:
    """Turn a symlinked file into a real copy so a test can change it in place."""
    source = path.resolve()
    path.unlink()
    shutil.copyfile(source, path)
