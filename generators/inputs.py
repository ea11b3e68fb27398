"""What a case is made from: EHR-Bench sample rows (docs/interfaces.md §5) and thinking graphs (§8).

Sample rows come from parquet or JSONL files (or directories of them); thinking graphs from JSONL
files of ``ThinkingGraph.to_json`` lines, matched to samples by ``sample_id``. Only the columns a
case needs are read, and a shard's record texts are read only for that shard's samples.

Which target concepts of a graph stand for which gold item: a target whose name is the item, or
(with item links, key -> CUI, as ``graphkit.thinking.store_io.load_item_links`` gives them) the
concepts of the sample's ``target_items`` named like the item. With links, a concept also knows
the names its ``context_items`` carry in the record (a lab concept "Aspartate aminotransferase
measurement" appears there as "Asparate Aminotransferase (AST)").
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphkit.errors import ConfigError, InputError
from graphkit.jsonl import read_jsonl
from graphkit.thinking.model import ThinkingGraph

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = ("id", "task", "split", "input", "instruction", "output", "label", "output_type")
OPTIONAL_SAMPLE_COLUMNS = ("family", "task_version", "subject_id", "hadm_id", "context_items", "target_items")
OUTPUT_TYPES = ("set", "binary", "class")


@dataclass(frozen=True)
class CaseInput:
    """One sample to turn into cases: its row (§5) and its thinking graph (§8) if any."""

    index: int  # position in the sample files; the order cases are written in
    sample: Mapping[str, Any]
    thinking: ThinkingGraph | None = None
    gold_targets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # gold item -> target cuis
    item_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # cui -> names of its context items

    @property
    def id(self) -> str:
        return str(self.sample["id"])

    @property
    def task(self) -> str:
        return str(self.sample["task"])

    @property
    def record(self) -> str:
        return str(self.sample["input"])

    @property
    def instruction(self) -> str:
        return str(self.sample["instruction"])

    @property
    def output_type(self) -> str:
        return str(self.sample["output_type"])

    @property
    def label(self) -> list[str] | str:
        label = self.sample["label"]
        if isinstance(label, str):
            return label
        return [str(item) for item in label]

    @property
    def gold_items(self) -> list[str]:
        """The answer as a list: the set's items, or the one class / yes-no label."""
        label = self.label
        if isinstance(label, str):
            return [label]
        return label

    @property
    def answer(self) -> str:
        """The answer text a model should write after its thinking: one gold item per line."""
        output = self.sample.get("output")
        if isinstance(output, str) and output.strip():
            return output.strip()
        return "\n".join(self.gold_items)

    @property
    def graph_hash(self) -> str:
        return self.thinking.graph_hash if self.thinking is not None else ""


def shard_of_id(sample_id: str, n_shards: int) -> int:
    """Deterministic shard of a sample id (blake2b, so stable across processes and machines)."""
    digest = hashlib.blake2b(sample_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_shards


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/8"`` -> ``(2, 8)``: shard 2 of 8, counted from 0."""
    if text is None:
        return None
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ConfigError("a shard is written i/n", where="option --shard", value=text,
                          fix="pass e.g. --shard 0/4 (shards are counted from 0)") from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError("the shard index must lie in 0..n-1 and n must be >= 1", where="option --shard",
                          value=text, fix=f"pass --shard i/{max(count, 1)} with 0 <= i < {max(count, 1)}")
    return index, count


def _files(paths: Sequence[Path], suffixes: tuple[str, ...], what: str, option: str) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(suffixes)
                           and not p.name.startswith("."))
            if not found:
                raise InputError(f"no {what} files ({', '.join(suffixes)}) in this directory", where=str(path),
                                 fix=f"point {option} at a file or a directory holding them")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError("no such file or directory", where=option, value=str(path),
                             fix=f"pass the {what} file(s) or their directory")
    return files


def sample_files(paths: Sequence[Path]) -> list[Path]:
    return _files(paths, (".parquet", ".jsonl", ".jsonl.gz"), "sample", "--samples")


def thinking_files(paths: Sequence[Path]) -> list[Path]:
    return _files(paths, (".jsonl", ".jsonl.gz"), "thinking-graph", "--thinking")


def link_files(paths: Sequence[Path]) -> list[Path]:
    return _files(paths, (".parquet", ".jsonl"), "item-link", "--links")


def _missing_columns(path: Path, names: Iterable[str]) -> None:
    missing = [column for column in SAMPLE_COLUMNS if column not in set(names)]
    if missing:
        raise InputError(f"sample rows lack column {missing[0]!r}", where=str(path),
                         fix="use EHR-Bench sample rows (docs/interfaces.md §5, written by the bench builder)")


def _file_rows(path: Path, keep: Callable[[str, str, str], bool]) -> Iterator[dict[str, Any]]:
    """The rows of one sample file whose (id, task, split) ``keep`` accepts, in file order.

    ``keep`` sees every row once, in order. Parquet is read in two passes so that only the
    kept rows' record texts are loaded.
    """
    import polars as pl

    if not path.name.endswith(".parquet"):
        # JSONL rows as Python values, not a polars frame: a column may mix types (``label`` is a list or a string)
        for index, (_, row) in enumerate(read_jsonl(path, fix="rebuild the samples")):
            if index == 0:
                _missing_columns(path, row)
            if keep(str(row["id"]), row["task"], row["split"]):
                yield row
        return
    frame = pl.scan_parquet(path)
    names = frame.collect_schema().names()
    _missing_columns(path, names)
    wanted = [str(i) for i, task, split in frame.select("id", "task", "split").collect().iter_rows()
              if keep(str(i), task, split)]
    if not wanted:
        return
    columns = [c for c in (*SAMPLE_COLUMNS, *OPTIONAL_SAMPLE_COLUMNS) if c in names]
    selected = frame.select(columns).with_columns(pl.col("id").cast(pl.String)).filter(pl.col("id").is_in(wanted))
    by_id = {row["id"]: row for row in selected.collect().iter_rows(named=True)}
    for sample_id in wanted:
        yield by_id[sample_id]


def read_samples(paths: Sequence[Path], *, tasks: Iterable[str] | None = None, splits: Iterable[str] | None = None,
                 shard: tuple[int, int] | None = None, only: set[str] | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:
    """Sample rows in file order, filtered by task, split, shard and id; each gets its ``_index``.

    The index counts the rows that pass the task and split filters, so it does not depend on the
    shard: every shard orders its cases the same way a single job would.
    """
    task_set = set(tasks) if tasks else None
    split_set = set(splits) if splits else None
    seen: set[str] = set()
    positions: dict[str, int] = {}
    kept = 0

    def keep(sample_id: str, task: str, split: str) -> bool:
        nonlocal kept
        if (task_set is not None and task not in task_set) or (split_set is not None and split not in split_set):
            return False
        if sample_id in seen:
            raise InputError("a sample id occurs twice", where="column id", value=sample_id,
                             fix="give every sample a unique id (or pass each sample file once)")
        seen.add(sample_id)
        position = len(seen) - 1
        if shard is not None and shard_of_id(sample_id, shard[1]) != shard[0]:
            return False
        if (only is not None and sample_id not in only) or (limit is not None and kept >= limit):
            return False
        kept += 1
        positions[sample_id] = position
        return True

    rows = []
    for file in sample_files(paths):
        for row in _file_rows(file, keep):
            row = {column: row.get(column) for column in (*SAMPLE_COLUMNS, *OPTIONAL_SAMPLE_COLUMNS) if column in row}
            row["id"] = str(row["id"])
            _check_sample(row)
            rows.append({"_index": positions[row["id"]], **row})
    return rows


def _check_sample(row: Mapping[str, Any]) -> None:
    where = f"sample {row['id']}"
    if row["output_type"] not in OUTPUT_TYPES:
        raise InputError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}", where=f"{where} column output_type",
                         value=row["output_type"], fix="rebuild the samples with the bench builder")
    if not isinstance(row["input"], str) or not row["input"].strip():
        raise InputError("the serialized record is empty", where=f"{where} column input",
                         fix="rebuild the samples with the bench builder")
    label = row["label"]
    if label is None or (not isinstance(label, str) and not isinstance(label, list | tuple)):
        raise InputError("label must be a list of items or a string", where=f"{where} column label", value=label,
                         fix="rebuild the samples with the bench builder")


def read_thinking(paths: Sequence[Path], sample_ids: set[str] | None = None) -> dict[str, ThinkingGraph]:
    """sample_id -> thinking graph, validated, for the wanted samples (all when ``sample_ids`` is None)."""
    graphs: dict[str, ThinkingGraph] = {}
    for file in thinking_files(paths):
        for number, data in read_jsonl(file, fix="regenerate the thinking graphs"):
            if not isinstance(data, dict) or "sample_id" not in data:
                raise InputError("not a thinking graph", where=f"{file} line {number}",
                                 fix="write thinking graphs with ThinkingGraph.to_json (docs/interfaces.md §8)")
            if sample_ids is None or str(data["sample_id"]) in sample_ids:
                graphs[str(data["sample_id"])] = ThinkingGraph.from_dict(data)
    return graphs


def read_links(paths: Sequence[Path]) -> dict[str, set[str]]:
    """Item key -> concepts, from parquet or JSONL rows with columns ``key`` and ``cui``."""
    from graphkit.thinking.samples import read_links as read_link_rows

    links: dict[str, set[str]] = {}
    for file in link_files(paths):
        for key, cui in read_link_rows(file).iter_rows():
            links.setdefault(key, set()).add(cui)
    return links


def _norm(text: str) -> str:
    return " ".join(str(text).lower().split())


def gold_targets(sample: Mapping[str, Any], graph: ThinkingGraph, links: Mapping[str, set[str]] | None = None
                 ) -> dict[str, tuple[str, ...]]:
    """gold item -> the graph's target concepts that stand for it (see the module docstring)."""
    targets = {node.cui: _norm(node.name) for node in graph.nodes if node.role == "target"}
    items = sample.get("target_items") or []
    label = sample["label"]
    found = {}
    for item in ([label] if isinstance(label, str) else [str(x) for x in label]):
        wanted = _norm(item)
        cuis = {cui for cui, name in targets.items() if name == wanted}
        if links:
            for target_item in items:
                if _norm(target_item.get("name") or "") == wanted:
                    cuis |= links.get(str(target_item.get("key")), set()) & targets.keys()
        found[item] = tuple(sorted(cuis))
    return found


def item_names(sample: Mapping[str, Any], graph: ThinkingGraph, links: Mapping[str, set[str]]) -> dict[str, tuple[str, ...]]:
    """cui -> the names of the sample's context items linked to it."""
    cuis = {node.cui for node in graph.nodes}
    names: dict[str, dict[str, None]] = {}
    for item in sample.get("context_items") or []:
        for cui in links.get(str(item.get("key")), set()) & cuis:
            if item.get("name"):
                names.setdefault(cui, {})[str(item["name"])] = None
    return {cui: tuple(found) for cui, found in names.items()}


def case_inputs(rows: Sequence[Mapping[str, Any]], graphs: Mapping[str, ThinkingGraph],
                links: Mapping[str, set[str]] | None = None) -> list[CaseInput]:
    inputs = []
    for row in rows:
        graph = graphs.get(row["id"])
        sample = {k: v for k, v in row.items() if k != "_index"}
        if graph is None:
            inputs.append(CaseInput(row["_index"], sample))
            continue
        inputs.append(CaseInput(row["_index"], sample, graph, gold_targets(sample, graph, links),
                                item_names(sample, graph, links) if links else {}))
    return inputs
