"""``generate cases``: samples + thinking graphs -> verbalized, filtered EHR-Ins cases, by shard.

Output directory::

    generation.json                  settings, config hash, number of shards (fixed per directory)
    cases.jsonl | cases-00000-of-00004.jsonl ...    (or .parquet) the cases, sample order
    rejected.jsonl | rejected-00000-of-00004.jsonl  rejected candidates with reason and detail
    card.json, README.md             the dataset card, written when every shard is complete
    .shards/shard-00000-of-00004.json  completion marker with the shard's statistics
    .work/shard-00000-of-00004/journal.jsonl   resume state (one line per finished sample)

Shards are independent jobs (``--shard i/n``; a sample's shard is a hash of its id). A killed
job resumes from its journal; responses it had already received come from the response cache.
``only`` regenerates just the given samples (e.g. the cases built on edges a curator changed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generators.cache import ResponseCache
from generators.card import merge_stats, shard_stats, versions, write_card
from generators.cases import DIRECT, REASONING, direct_case, reasoning_case
from generators.config import GenerateConfig
from generators.filters import FilterChain, RederiveFilter, Verdict
from generators.inputs import (
    CaseInput,
    case_inputs,
    link_files,
    read_links,
    read_samples,
    read_thinking,
    sample_files,
    thinking_files,
)
from generators.prompt import has_paths, strip_think
from generators.verbalizers import build_verbalizer, judge_endpoint
from generators.verbalizers.base import Usage, Verbalization, Verbalizer
from graphkit.atomic import atomic_path, atomic_write_text
from graphkit.errors import ConfigError, EndpointError, InputError
from graphkit.hashing import config_hash, file_hash
from graphkit.journal import Journal
from graphkit.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

MANIFEST = "generation.json"
ENDPOINT_REJECTED = "endpoint_rejected"


def shard_name(index: int, count: int) -> str:
    return f"{index:05d}-of-{count:05d}"


def data_file(out: Path, stem: str, index: int, count: int, suffix: str) -> Path:
    return out / (f"{stem}.{suffix}" if count == 1 else f"{stem}-{shard_name(index, count)}.{suffix}")


@dataclass
class ShardReport:
    index: int
    count: int
    samples: int = 0
    skipped_complete: bool = False
    resumed: int = 0  # samples found finished in the journal
    failed: int = 0  # samples whose requests failed after all retries (left for the next run)
    complete: bool = False
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunReport:
    out: Path
    shards: list[ShardReport]
    card: dict[str, Any] | None  # set when every shard is complete

    @property
    def failed(self) -> int:
        return sum(shard.failed for shard in self.shards)


def _thinking_hash(config: GenerateConfig) -> str | None:
    """Hash of what comes from the graph (thinking graphs, item links): it may change under curation."""
    if not config.thinking:
        return None
    files = thinking_files(config.thinking) + (link_files(config.links) if config.links else [])
    return config_hash(sorted(file_hash(path) for path in files))


def _manifest(config: GenerateConfig, n_shards: int, verbalizer: Verbalizer, filters: FilterChain) -> dict[str, Any]:
    return {
        "config_hash": config.content_hash(sample_files(config.samples)),
        "thinking_hash": _thinking_hash(config),
        "n_shards": n_shards,
        "verbalizer": verbalizer.describe(),
        "filters": filters.describe(),
        "config": config.public(),
        "versions": versions(config.verbalizer.kind),
    }


def _clear(out: Path) -> None:
    """Remove what a generation run writes (and nothing else the user may keep there)."""
    for pattern in (MANIFEST, "cases*.jsonl", "cases*.parquet", "rejected*.jsonl", "card.json", "README.md"):
        for path in out.glob(pattern):
            path.unlink()
    for directory in (".work", ".shards"):
        shutil.rmtree(out / directory, ignore_errors=True)


def _open_output(out: Path, manifest: dict[str, Any], shard: tuple[int, int] | None, overwrite: bool,
                 regenerating: bool) -> dict[str, Any]:
    """Check (or start) the output directory; returns the manifest in force (with its shard count)."""
    path = out / MANIFEST
    if path.exists() and overwrite:
        _clear(out)
    if path.exists():
        existing = json.loads(path.read_text())
        if existing["config_hash"] != manifest["config_hash"]:
            raise ConfigError("this directory holds cases made with other settings or other samples",
                              where=str(out), value=existing["config_hash"],
                              fix="pass --overwrite to start over, or write to another --out")
        if shard is not None and shard[1] != existing["n_shards"]:
            raise ConfigError(f"this directory is split into {existing['n_shards']} shards", where="option --shard",
                              value=f"{shard[0]}/{shard[1]}", fix=f"pass --shard i/{existing['n_shards']}")
        if existing.get("thinking_hash") != manifest["thinking_hash"]:
            if not regenerating:
                raise ConfigError("the thinking graphs changed since these cases were made", where="option --thinking",
                                  fix="regenerate the affected samples with --only-samples, or start over with --overwrite")
            existing["thinking_hash"] = manifest["thinking_hash"]
            atomic_write_text(path, json.dumps(existing, indent=2) + "\n")
        return existing
    if regenerating:
        raise InputError("there are no cases here to regenerate", where=str(out),
                         fix="run `ehr-r1 generate cases` without --only-samples first")
    manifest = {**manifest, "n_shards": shard[1] if shard else 1}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
    return manifest


def _reasoning_tasks(inputs: Iterable[CaseInput]) -> dict[str, bool]:
    """task -> whether it gets reasoning cases (the task file's ``thinking`` switch)."""
    from bench.taskdef import load_tasks

    tasks = load_tasks()
    wanted = {}
    for case in inputs:
        if case.task not in wanted:
            if case.task not in tasks:
                raise InputError("a sample names an unknown task", where=f"sample {case.id} column task", value=case.task,
                                 fix="build samples with `ehr-r1 bench` task definitions (see `ehr-r1 bench list`)")
            wanted[case.task] = tasks[case.task].thinking
    return wanted


class _ShardRun:
    def __init__(self, config: GenerateConfig, verbalizer: Verbalizer, filters: FilterChain, journal: Journal,
                 reasoning_tasks: dict[str, bool], progress: Progress, handle: int):
        self.config = config
        self.verbalizer = verbalizer
        self.filters = filters
        self.journal = journal
        self.reasoning_tasks = reasoning_tasks
        self.progress = progress
        self.handle = handle
        self.failed = 0

    def _entry(self, case: CaseInput, outcome: str, cases: list[dict], rejected: list[dict], usage: Usage) -> dict:
        if DIRECT in self.config.kinds:
            cases = [*cases, direct_case(case, self.config.system_prompt)]
        return {"i": case.index, "id": case.id, "task": case.task, "task_version": case.sample.get("task_version"),
                "outcome": outcome, "cases": cases, "rejected": rejected, "usage": usage.as_dict()}

    def _finish(self, entry: dict) -> None:
        self.journal.append(entry)
        self.progress.advance(self.handle)

    def _rejection(self, case: CaseInput, number: int, text: str, verdict: Verdict) -> dict:
        return {"id": f"{case.id}:reasoning:{number}", "sample_id": case.id, "task": case.task, "reason": verdict.reason,
                "detail": verdict.detail, "text": text, "verbalizer": self.verbalizer.kind, "graph_hash": case.graph_hash}

    async def _handle(self, case: CaseInput, verbalization: Verbalization) -> None:
        if verbalization.error and not verbalization.permanent:
            self.failed += 1
            return
        if verbalization.permanent:
            verdict = Verdict(False, ENDPOINT_REJECTED, verbalization.error or "")
            self._finish(self._entry(case, "rejected", [], [self._rejection(case, 0, "", verdict)], verbalization.usage))
            return
        if not verbalization.texts:
            self._finish(self._entry(case, "no_path_to_gold", [], [], verbalization.usage))
            return
        rejected = []
        for number, raw in enumerate(verbalization.texts):
            text = strip_think(raw).strip()
            verdict = await self.filters.check(text, case)
            if verdict.keep:
                kept = reasoning_case(case, text, self.config.system_prompt)
                self._finish(self._entry(case, "reasoning", [kept], rejected, verbalization.usage))
                return
            rejected.append(self._rejection(case, number, text, verdict))
        self._finish(self._entry(case, "rejected", [], rejected, verbalization.usage))

    async def run(self, todo: list[CaseInput]) -> None:
        to_verbalize = []
        for case in todo:
            if REASONING not in self.config.kinds or not self.reasoning_tasks[case.task]:
                self._finish(self._entry(case, "direct_only", [], [], Usage()))
            elif self.verbalizer.needs_paths and not has_paths(case.thinking):
                self._finish(self._entry(case, "no_thinking_graph", [], [], Usage()))
            else:
                to_verbalize.append(case)
        if not to_verbalize:
            return
        # the judge is a second model call per candidate: run judgements concurrently, bounded
        judging = self.filters.rederive is not None
        limit = asyncio.Semaphore(max(self.config.verbalizer.concurrency, 1))
        tasks: set[asyncio.Task] = set()

        async def judged(case: CaseInput, verbalization: Verbalization) -> None:
            async with limit:
                await self._handle(case, verbalization)

        try:
            async for case, verbalization in self.verbalizer.stream(to_verbalize):
                if judging:
                    task = asyncio.ensure_future(judged(case, verbalization))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                else:
                    await self._handle(case, verbalization)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()


def _write_outputs(out: Path, journal: Journal, index: int, count: int, fmt: str) -> dict[str, Any]:
    """The shard's case and rejected files from its journal (atomically), and its statistics."""
    cases_path = data_file(out, "cases", index, count, fmt)
    rejected_path = data_file(out, "rejected", index, count, "jsonl")
    entries_for_stats = []
    with atomic_path(rejected_path) as rejected_tmp, open(rejected_tmp, "w", encoding="utf-8") as rejected_out:
        if fmt == "jsonl":
            with atomic_path(cases_path) as cases_tmp, open(cases_tmp, "w", encoding="utf-8") as cases_out:
                for entry in journal.entries():
                    for row in entry["cases"]:
                        cases_out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    for row in entry["rejected"]:
                        rejected_out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    entries_for_stats.append(_light(entry))
        else:
            rows = []
            for entry in journal.entries():
                rows.extend(entry["cases"])
                for row in entry["rejected"]:
                    rejected_out.write(json.dumps(row, ensure_ascii=False) + "\n")
                entries_for_stats.append(_light(entry))
            _write_parquet(cases_path, rows)
    return shard_stats(entries_for_stats)


def _light(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry without its texts, for statistics."""
    return {**entry, "cases": [{"kind": c["kind"], "graph_hash": c["graph_hash"]} for c in entry["cases"]],
            "rejected": [{"reason": r["reason"]} for r in entry["rejected"]]}


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    """Parquet needs one type per column: ``label`` is always a list of strings there (["yes"] for risk)."""
    import polars as pl

    schema = {
        "id": pl.String, "task": pl.String, "kind": pl.String,
        "messages": pl.List(pl.Struct({"role": pl.String, "content": pl.String})),
        "enable_thinking": pl.Boolean, "label": pl.List(pl.String), "output_type": pl.String,
        "sample_id": pl.String, "graph_hash": pl.String,
    }
    normalized = [{**row, "label": row["label"] if isinstance(row["label"], list) else [row["label"]]} for row in rows]
    frame = pl.DataFrame(normalized, schema=schema)
    with atomic_path(path, suffix=".parquet") as tmp:
        frame.write_parquet(tmp)


def _marker(out: Path, index: int, count: int) -> Path:
    return out / ".shards" / f"shard-{shard_name(index, count)}.json"


def _all_markers(out: Path, count: int) -> list[dict[str, Any]] | None:
    found = []
    for index in range(count):
        marker = _marker(out, index, count)
        if not marker.exists():
            return None
        found.append(json.loads(marker.read_text()))
    return found


def build_filters(config: GenerateConfig, cache: ResponseCache) -> tuple[FilterChain, Any]:
    judge = config.filters.judge
    endpoint = judge_endpoint(judge, config, cache) if judge is not None else None
    rederive = None
    if endpoint is not None:
        from generators.verbalizers.openai_compat import judge_asker

        rederive = RederiveFilter(judge_asker(endpoint), judge.min_recall)
    chain = FilterChain(config.filters.min_recall, tuple(config.filters.extra_leak_patterns), rederive)
    return chain, endpoint


def generate_cases(config: GenerateConfig, *, shard: tuple[int, int] | None = None, only: set[str] | None = None,
                   overwrite: bool = False, progress: Progress | None = None) -> RunReport:
    """Generate (or resume, or partly regenerate) the cases of ``config.out``; see the module docstring."""
    report = asyncio.run(_generate(config, shard, only, overwrite, progress or NULL_PROGRESS))
    if report.failed:
        raise EndpointError(f"{report.failed} sample(s) could not be verbalized after all retries; every other "
                            "sample is saved", where=str(config.out),
                            fix="rerun the same command: it resumes and retries only those")
    return report


async def _generate(config: GenerateConfig, shard: tuple[int, int] | None, only: set[str] | None, overwrite: bool,
                    progress: Progress) -> RunReport:
    cache = ResponseCache(config.cache)
    verbalizer = build_verbalizer(config, cache)
    judge = None
    try:
        filters, judge = build_filters(config, cache)
        manifest = _open_output(config.out, _manifest(config, shard[1] if shard else 1, verbalizer, filters), shard,
                                overwrite, only is not None)
        count = manifest["n_shards"]
        indices = [shard[0]] if shard else list(range(count))
        reports = [await _run_shard(config, verbalizer, filters, index, count, only, progress) for index in indices]
    finally:
        await verbalizer.aclose()
        if judge is not None:
            await judge.aclose()
        cache.close()
    card = None
    parts = _all_markers(config.out, count)
    if parts is not None:
        files = {"cases": [data_file(config.out, "cases", i, count, config.format).name for i in range(count)],
                 "rejected": [data_file(config.out, "rejected", i, count, "jsonl").name for i in range(count)],
                 "pattern": "cases.jsonl" if count == 1 and config.format == "jsonl" else f"cases*.{config.format}"}
        card = write_card(config.out, manifest, merge_stats(part["stats"] for part in parts), files)
    return RunReport(config.out, reports, card)


async def _run_shard(config: GenerateConfig, verbalizer: Verbalizer, filters: FilterChain, index: int, count: int,
                     only: set[str] | None, progress: Progress) -> ShardReport:
    out = config.out
    report = ShardReport(index, count)
    marker = _marker(out, index, count)
    journal = Journal(out / ".work" / f"shard-{shard_name(index, count)}" / "journal.jsonl",
                      redo_fix="delete the shard's .work directory to redo it (the response cache keeps paid-for answers)")
    if only is not None:
        dropped = journal.forget(only)
        if dropped:
            marker.unlink(missing_ok=True)
    if marker.exists():
        report.skipped_complete = report.complete = True
        report.stats = json.loads(marker.read_text())["stats"]
        log.info("shard %d/%d is already complete", index, count)
        return report
    rows = read_samples(config.samples, tasks=config.tasks, splits=config.splits, shard=(index, count), limit=config.limit)
    report.samples = len(rows)
    done = journal.load()
    report.resumed = len(done)
    todo_rows = [row for row in rows if row["id"] not in done]
    ids = {row["id"] for row in todo_rows}
    graphs = read_thinking(config.thinking, ids) if config.thinking and ids else {}
    todo = case_inputs(todo_rows, graphs, read_links(config.links) if config.links and graphs else None)
    if not config.thinking and REASONING in config.kinds and verbalizer.needs_paths:
        log.warning("no thinking graphs given (--thinking): reasoning tasks get direct cases only")
    handle = progress.start(f"shard {index}/{count}", len(rows))
    progress.advance(handle, len(rows) - len(todo))
    run = _ShardRun(config, verbalizer, filters, journal, _reasoning_tasks(todo), progress, handle)
    try:
        await run.run(todo)
    finally:
        journal.close()
        progress.finish(handle)
    report.failed = run.failed
    if run.failed:
        return report
    report.stats = _write_outputs(out, journal, index, count, config.format)
    atomic_write_text(marker, json.dumps({"shard": index, "n_shards": count, "samples": len(rows),
                                          "stats": report.stats}, indent=2) + "\n")
    report.complete = True
    return report
