"""One sample through the whole path, for `ehr-r1 generate preview`: prompt, text, verdict, cases."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from generators.cache import ResponseCache
from generators.cases import direct_case, reasoning_case
from generators.config import GenerateConfig
from generators.filters import Verdict
from generators.inputs import CaseInput, case_inputs, read_links, read_samples, read_thinking
from generators.pipeline import build_filters
from generators.prompt import has_paths, strip_think
from generators.verbalizers import build_verbalizer
from graphkit.errors import InputError


@dataclass
class Preview:
    case: CaseInput
    messages: list[dict[str, str]]  # the request an LLM verbalizer sends
    verbalizer: dict[str, Any]
    texts: list[str]  # what the verbalizer wrote (empty: nothing to verbalize, see note)
    verdicts: list[Verdict]
    cases: list[dict[str, Any]]  # the rows that would be written
    note: str = ""


def preview(config: GenerateConfig, task: str, sample_id: str | None = None) -> Preview:
    rows = read_samples(config.samples, tasks=[task], splits=config.splits,
                        only={sample_id} if sample_id else None, limit=None if sample_id else 50)
    if not rows:
        where = f"sample {sample_id}" if sample_id else f"task {task}"
        raise InputError("no sample to preview", where=where, value=config.splits or "any split",
                         fix="check --task / --sample-id against the samples, or pass --split")
    graphs = read_thinking(config.thinking, {row["id"] for row in rows}) if config.thinking else {}
    inputs = case_inputs(rows, graphs, read_links(config.links) if config.links and graphs else None)
    # prefer a sample that has a thinking graph, so the preview shows a reasoning case when one can exist
    case = next((c for c in inputs if has_paths(c.thinking)), inputs[0])
    return asyncio.run(_preview(config, case))


async def _preview(config: GenerateConfig, case: CaseInput) -> Preview:
    cache = ResponseCache(config.cache)
    verbalizer = build_verbalizer(config, cache)
    filters, judge = build_filters(config, cache)
    try:
        result = Preview(case, verbalizer.messages(case), verbalizer.describe(), [], [], [direct_case(case, config.system_prompt)])
        if verbalizer.needs_paths and not has_paths(case.thinking):
            result.note = "this sample has no thinking graph with paths: only its direct case is written"
            return result
        async for _, verbalization in verbalizer.stream([case]):
            if verbalization.error:
                result.note = f"the verbalizer failed: {verbalization.error}"
            for raw in verbalization.texts:
                text = strip_think(raw).strip()
                verdict = await filters.check(text, case)
                result.texts.append(text)
                result.verdicts.append(verdict)
                if verdict.keep:
                    result.cases.insert(0, reasoning_case(case, text, config.system_prompt))
                    break
            if not verbalization.texts and not verbalization.error:
                result.note = "the thinking graph's paths explain no gold item: no reasoning case"
        return result
    finally:
        await verbalizer.aclose()
        if judge is not None:
            await judge.aclose()
        cache.close()
