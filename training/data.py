"""EHR-Ins cases (docs/interfaces.md §6) as training datasets for each stage.

Rows: ``id, task, kind, messages, enable_thinking, label, output_type, sample_id, graph_hash``.
``label`` is a list of items for set tasks and a string for risk / next-event tasks; Arrow
needs one type per column, so it is normalized here to a list of strings (a string becomes a
one-item list) and the rewards read it back by ``output_type``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphkit.errors import InputError
from graphkit.extras import require
from graphkit.hashing import file_hash
from graphkit.jsonl import read_jsonl
from training.truncation import Truncator

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("id", "task", "kind", "messages", "enable_thinking", "label", "output_type")
OPTIONAL_COLUMNS = ("sample_id", "graph_hash")
OUTPUT_TYPES = ("set", "binary", "class")
ROLES = ("system", "user", "assistant")
THINK_SWITCHES = ("/think", "/no_think")


@dataclass
class CaseStats:
    """What happened to the cases on the way into a stage (recorded in the model card)."""

    files: dict[str, str] = field(default_factory=dict)  # path -> file hash
    rows: int = 0
    used: int = 0
    skipped_kind: int = 0
    same_sample: int = 0  # GRPO: direct cases of samples that also have a reasoning case
    truncated: int = 0
    dropped_blocks: int = 0
    too_long: int = 0
    tasks: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    graph_hashes: list[str] = field(default_factory=list)


def case_files(path: str | Path) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        if (path / "generation.json").exists() and not (path / "card.json").exists():
            raise InputError("this EHR-Ins generation is not complete (no card.json yet: some shards are unfinished)",
                             where=str(path), fix="finish every shard of `ehr-r1 generate`, or pass one cases file")
        data = sorted(p for p in path.iterdir() if p.suffix in (".jsonl", ".parquet"))
        files = [p for p in data if p.name.startswith("cases")] or [p for p in data if not p.name.startswith("rejected")]
        if files:
            return files
        raise InputError("no case files (*.jsonl or *.parquet) in this directory", where=str(path),
                         fix="point dataset_path at the EHR-Ins output (ehr-r1 generate) or one of its files")
    raise InputError("no such file or directory", where="dataset_path", value=str(path),
                     fix="generate cases with `ehr-r1 generate` or pass dataset_path=PATH")


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix == ".parquet":
        import polars as pl

        yield from pl.read_parquet(path).iter_rows(named=True)
        return
    if path.suffix == ".json":
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        yield from (data if isinstance(data, list) else [data])
        return
    yield from (row for _, row in read_jsonl(path, fix="repair or regenerate the file"))


def _validated(row: dict[str, Any], where: str) -> dict[str, Any]:
    missing = [c for c in REQUIRED_COLUMNS if c not in row]
    if missing:
        raise InputError(f"missing column {missing[0]!r} (EHR-Ins rows need {', '.join(REQUIRED_COLUMNS)})",
                         where=where, fix="regenerate the cases with `ehr-r1 generate`")
    if row["kind"] not in ("reasoning", "direct"):
        raise InputError("kind must be 'reasoning' or 'direct'", where=f"{where} column kind", value=row["kind"],
                         fix="regenerate the cases")
    if row["output_type"] not in OUTPUT_TYPES:
        raise InputError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}", where=f"{where} column output_type",
                         value=row["output_type"], fix="regenerate the cases")
    messages = row["messages"]
    if not isinstance(messages, list) or not messages or any(
        not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str) for m in messages
    ):
        raise InputError("messages must be a non-empty list of {role: system|user|assistant, content: str}",
                         where=f"{where} column messages", fix="regenerate the cases")
    label = row["label"]
    label = [str(item) for item in label] if isinstance(label, list | tuple) else [str(label)]
    return {
        "id": str(row["id"]),
        "task": str(row["task"]),
        "kind": row["kind"],
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "enable_thinking": bool(row["enable_thinking"]),
        "label": label,
        "output_type": row["output_type"],
        "sample_id": str(row.get("sample_id") or ""),
        "graph_hash": str(row.get("graph_hash") or ""),
    }


def read_cases(path: str | Path, kinds: list[str], max_samples: int | None, stats: CaseStats) -> list[dict[str, Any]]:
    """Validated, normalized rows of the wanted kinds, in file order."""
    cases: list[dict[str, Any]] = []
    graph_hashes: set[str] = set()
    for file in case_files(path):
        stats.files[str(file)] = file_hash(file)
        for number, row in enumerate(_rows(file), 1):
            stats.rows += 1
            case = _validated(row, f"{file} row {number}")
            if case["kind"] not in kinds:
                stats.skipped_kind += 1
                continue
            if max_samples is not None and len(cases) >= max_samples:
                continue
            cases.append(case)
            if case["graph_hash"]:
                graph_hashes.add(case["graph_hash"])
    stats.graph_hashes = sorted(graph_hashes)
    if not cases:
        raise InputError(f"no cases of kind {' or '.join(kinds)}", where=str(path), value=stats.rows,
                         fix="check case_kinds in the recipe against the dataset")
    return cases


def with_thinking_switch(messages: list[dict[str, Any]], enable_thinking: bool) -> list[dict[str, Any]]:
    """Append Qwen3's soft switch to the last user turn unless it already ends with one."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index]["role"] == "user":
            content = messages[index]["content"].rstrip()
            if not content.endswith(THINK_SWITCHES):
                content += "\n/think" if enable_thinking else "\n/no_think"
            return [*messages[:index], {**messages[index], "content": content}, *messages[index + 1:]]
    return messages


def _fit(cases: list[dict[str, Any]], truncator: Truncator, stats: CaseStats, chunk: int = 256) -> list[dict[str, Any]]:
    kept = []
    results = [r for start in range(0, len(cases), chunk)
               for r in truncator.fit_many([c["messages"] for c in cases[start:start + chunk]])]
    for case, result in zip(cases, results, strict=True):
        if not result.fits:
            stats.too_long += 1
            continue
        if result.dropped_blocks:
            stats.truncated += 1
            stats.dropped_blocks += result.dropped_blocks
        kept.append({**case, "messages": result.messages})
    if stats.too_long:
        log.warning("%d case(s) do not fit %d tokens even with only their latest event and were left out",
                    stats.too_long, truncator.budget)
    if stats.truncated:
        log.info("%d case(s) had their oldest events dropped to fit %d tokens", stats.truncated, truncator.budget)
    stats.used = len(kept)
    stats.tasks = dict(Counter(c["task"] for c in kept))
    stats.kinds = dict(Counter(c["kind"] for c in kept))
    return kept


def _one_per_sample(cases: list[dict[str, Any]], stats: CaseStats) -> list[dict[str, Any]]:
    reasoning = {c["sample_id"] for c in cases if c["kind"] == "reasoning" and c["sample_id"]}
    kept = [c for c in cases if c["kind"] == "reasoning" or not c["sample_id"] or c["sample_id"] not in reasoning]
    stats.same_sample = len(cases) - len(kept)
    return kept


def _dataset(rows: list[dict[str, Any]], where: str):
    datasets = require("datasets", "train", "training")
    if not rows:
        raise InputError("no case fits the token budget", where=where,
                         fix="raise max_length / max_prompt_length or use shorter records")
    return datasets.Dataset.from_list(rows)


def sft_dataset(path: str | Path, tokenizer: Any, *, kinds: list[str], max_length: int, thinking_switch: bool,
                max_samples: int | None = None, chat_template: str | None = None):
    """Conversational rows (``messages``) for SFTTrainer, each fitting ``max_length`` tokens."""
    stats = CaseStats()
    cases = read_cases(path, kinds, max_samples, stats)
    for case in cases:
        if case["messages"][-1]["role"] != "assistant":
            raise InputError("the last message is not the assistant's answer, so there is nothing to learn",
                             where=f"{path} case {case['id']}", fix="use cases written by `ehr-r1 generate`")
        if thinking_switch:
            case["messages"] = with_thinking_switch(case["messages"], case["enable_thinking"])
    truncator = Truncator(tokenizer, max_length, add_generation_prompt=False, chat_template=chat_template)
    kept = _fit(cases, truncator, stats)
    return _dataset([{"messages": c["messages"], "task": c["task"], "id": c["id"]} for c in kept], str(path)), stats


def grpo_dataset(path: str | Path, tokenizer: Any, *, kinds: list[str], max_prompt_length: int,
                 thinking_switch: bool, max_samples: int | None = None):
    """Prompt rows for GRPOTrainer: the case without its answer, plus what the rewards read.

    One prompt per sample: a sample with both a reasoning and a direct case (a thinking task)
    is prompted once, thinking on; the others (risk tasks) thinking off, as the reference does.
    """
    stats = CaseStats()
    cases = _one_per_sample(read_cases(path, kinds, max_samples, stats), stats)
    for case in cases:
        messages = case["messages"]
        if messages[-1]["role"] == "assistant":
            messages = messages[:-1]
        case["messages"] = with_thinking_switch(messages, case["enable_thinking"]) if thinking_switch else messages
    truncator = Truncator(tokenizer, max_prompt_length, add_generation_prompt=True)
    kept = _fit(cases, truncator, stats)
    rows = [
        {"prompt": c["messages"], "label": c["label"], "output_type": c["output_type"], "task": c["task"],
         "id": c["id"], "enable_thinking": c["enable_thinking"]}
        for c in kept
    ]
    return _dataset(rows, str(path)), stats
