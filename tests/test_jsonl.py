"""graphkit.jsonl.read_jsonl, the JSONL reader shared by generators and training."""

from __future__ import annotations

import gzip

import pytest

from generators.inputs import read_thinking
from graphkit.errors import InputError
from graphkit.jsonl import read_jsonl


def test_values_with_line_numbers_skipping_blank_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n  \n[1, "x"]\n"text"\n', encoding="utf-8")
    assert list(read_jsonl(path, fix="f")) == [(1, {"a": 1}), (4, [1, "x"]), (5, "text")]


def test_gzip_by_name(tmp_path):
    path = tmp_path / "rows.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write('{"a": "é"}\n{"a": 2}\n')
    assert [value for _, value in read_jsonl(path, fix="f")] == [{"a": "é"}, {"a": 2}]


def test_bad_line_names_file_line_and_fix(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": \n', encoding="utf-8")
    rows = read_jsonl(path, fix="regenerate it")
    assert next(rows) == (1, {"a": 1})
    with pytest.raises(InputError) as caught:
        next(rows)
    assert caught.value.where == f"{path} line 3"
    assert caught.value.fix == "regenerate it"
    assert "not valid JSON" in str(caught.value)


def test_thinking_graph_errors_keep_their_line(tmp_path):
    path = tmp_path / "graphs.jsonl"
    path.write_text('\n["not a graph"]\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"graphs.jsonl line 2") as caught:
        read_thinking([path])
    assert "not a thinking graph" in str(caught.value)
    path.write_text("{oops\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"graphs.jsonl line 1") as caught:
        read_thinking([path])
    assert caught.value.fix == "regenerate the thinking graphs"
