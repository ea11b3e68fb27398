"""Atomic writes: all or nothing, and files get ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from graphkit.atomic import atomic_dir, atomic_path, atomic_write_text


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out" / "card.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["card.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "card.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]


def test_atomic_files_get_the_umask_mode_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "cases.jsonl"
        atomic_write_text(target, "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_dir_swaps_whole_directory(tmp_path):
    target = tmp_path / "shard"
    with atomic_dir(target) as tmp:
        (tmp / "a.parquet").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "b.parquet").write_text("2")
        raise RuntimeError("killed")
    assert sorted(p.name for p in target.iterdir()) == ["a.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard"]
