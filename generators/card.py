"""Per-shard statistics and the dataset card (``card.json`` + ``README.md``) of an EHR-Ins dataset."""

from __future__ import annotations

import json
import platform
from collections import Counter
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from generators.verbalizers.base import Usage
from graphkit import __version__
from graphkit.atomic import atomic_write_text

# what happened to a sample, as recorded in its journal entry
OUTCOMES = (
    "reasoning",  # a reasoning case passed the filters
    "rejected",  # every candidate was rejected by a filter (see rejected.jsonl)
    "no_thinking_graph",  # the task reasons but the sample has no thinking graph with paths
    "no_path_to_gold",  # the graph's paths explain no gold item (template verbalizer)
    "direct_only",  # the task does not reason (risk tasks) or reasoning cases were not asked for
)


def _counts() -> dict[str, Any]:
    return {"samples": 0, "reasoning": 0, "direct": 0, "outcomes": Counter(), "rejected": Counter()}


def _plain(counts: Mapping[str, Any]) -> dict[str, Any]:
    return {**counts, "outcomes": dict(sorted(counts["outcomes"].items())),
            "rejected": dict(sorted(counts["rejected"].items()))}


def shard_stats(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts per task, outcome and rejection reason, token usage and graph hashes of a shard's journal."""
    tasks: dict[str, dict[str, Any]] = {}
    usage = Usage()
    graph_hashes: set[str] = set()
    task_versions: dict[str, set[Any]] = {}
    for entry in entries:
        counts = tasks.setdefault(entry["task"], _counts())
        counts["samples"] += 1
        counts["outcomes"][entry["outcome"]] += 1
        for case in entry["cases"]:
            counts[case["kind"]] += 1
            if case["graph_hash"]:
                graph_hashes.add(case["graph_hash"])
        counts["rejected"].update(rejected["reason"] for rejected in entry["rejected"])
        usage.add(entry.get("usage") or {})
        if entry.get("task_version") is not None:
            task_versions.setdefault(entry["task"], set()).add(entry["task_version"])
    return {
        "tasks": {name: _plain(counts) for name, counts in sorted(tasks.items())},
        "usage": usage.as_dict(),
        "graph_hashes": sorted(graph_hashes),
        "task_versions": {name: sorted(versions, key=str) for name, versions in sorted(task_versions.items())},
    }


def merge_stats(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The shards' statistics together, with totals over tasks."""
    tasks: dict[str, dict[str, Any]] = {}
    totals = _counts()
    usage = Usage()
    graph_hashes: set[str] = set()
    task_versions: dict[str, set[Any]] = {}
    for part in parts:
        for name, counts in part["tasks"].items():
            for merged in (tasks.setdefault(name, _counts()), totals):
                for key in ("samples", "reasoning", "direct"):
                    merged[key] += counts[key]
                merged["outcomes"].update(counts["outcomes"])
                merged["rejected"].update(counts["rejected"])
        usage.add(part["usage"])
        graph_hashes.update(part["graph_hashes"])
        for name, versions in part.get("task_versions", {}).items():
            task_versions.setdefault(name, set()).update(versions)
    return {
        "totals": _plain(totals),
        "tasks": {name: _plain(counts) for name, counts in sorted(tasks.items())},
        "usage": usage.as_dict(),
        "graph_hashes": sorted(graph_hashes),
        "task_versions": {name: sorted(versions, key=str) for name, versions in sorted(task_versions.items())},
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def versions(verbalizer_kind: str) -> dict[str, str | None]:
    found = {"ehr-r1": __version__, "python": platform.python_version(), "polars": _version("polars")}
    if verbalizer_kind == "openai":
        found["openai"] = _version("openai")
    if verbalizer_kind == "vllm":
        found["vllm"] = _version("vllm")
    return found


def write_card(out: Path, manifest: Mapping[str, Any], stats: Mapping[str, Any], files: Mapping[str, list[str]]) -> dict[str, Any]:
    card = {
        "name": out.name,
        "format": "ehr-ins cases (docs/interfaces.md §6)",
        "config_hash": manifest["config_hash"],
        "thinking_hash": manifest.get("thinking_hash"),
        "n_shards": manifest["n_shards"],
        "verbalizer": manifest["verbalizer"],
        "filters": manifest["filters"],
        "config": manifest["config"],
        "versions": manifest["versions"],
        "files": dict(files),
        **stats,
    }
    atomic_write_text(out / "card.json", json.dumps(card, indent=2, sort_keys=False, ensure_ascii=False) + "\n")
    atomic_write_text(out / "README.md", _readme(card))
    return card


def _readme(card: Mapping[str, Any]) -> str:
    totals = card["totals"]
    reasons = sorted({reason for counts in card["tasks"].values() for reason in counts["rejected"]})
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        f"    path: \"{card['files']['pattern']}\"",
        "tags: [ehr, mimic-iv, clinical-reasoning, ehr-r1]",
        "---",
        "",
        f"# EHR-Ins cases: {card['name']}",
        "",
        "Reasoning cases (thinking on) and direct cases (thinking off) in chat format, made by ehr-r1 "
        f"{card['versions']['ehr-r1']} from EHR-Bench samples and thinking graphs. Derived from MIMIC-IV: "
        "credentialed data, share only under its data use agreement.",
        "",
        f"- verbalizer: `{json.dumps(card['verbalizer'], sort_keys=True)}`",
        f"- config hash `{card['config_hash']}`, thinking-graph files hash `{card['thinking_hash']}`, "
        f"graph hashes {', '.join(f'`{h}`' for h in card['graph_hashes']) or 'none'}",
        f"- samples {totals['samples']}, reasoning cases {totals['reasoning']}, direct cases {totals['direct']}, "
        f"rejected candidates {sum(totals['rejected'].values())} (in `rejected*.jsonl`)",
        f"- tokens: {card['usage']['prompt_tokens']} prompt, {card['usage']['completion_tokens']} completion; "
        f"{card['usage']['requests']} requests, {card['usage']['retries']} retries, {card['usage']['cache_hits']} cache hits",
        "",
        "| " + " | ".join(["task", "samples", "reasoning", "direct", *OUTCOMES[1:], *(f"rejected: {r}" for r in reasons)])
        + " |",
        "|" + "---|" * (4 + len(OUTCOMES) - 1 + len(reasons)),
    ]
    for name, counts in card["tasks"].items():
        cells = [name, counts["samples"], counts["reasoning"], counts["direct"]]
        cells += [counts["outcomes"].get(outcome, 0) for outcome in OUTCOMES[1:]]
        cells += [counts["rejected"].get(reason, 0) for reason in reasons]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "Load with `datasets.load_dataset(\"json\" or \"parquet\", data_files=...)` or train with "
              "`ehr-r1 train sft dataset_path=<this directory>`.", ""]
    return "\n".join(lines)
