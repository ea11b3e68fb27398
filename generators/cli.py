"""`ehr-r1 generate ...`: EHR-Ins reasoning and direct cases from EHR-Bench samples and thinking graphs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from graphkit.cli_common import RichProgress, console, parse_params, workspace

app = typer.Typer(help="EHR-Ins: verbalize thinking graphs into reasoning cases; direct cases for every task.",
                  no_args_is_help=True)

Samples = Annotated[list[Path], typer.Option(
    "--samples", "-s", help="EHR-Bench sample rows: parquet/JSONL files or directories (default <workspace>/bench/samples).",
    show_default=False)]
Thinking = Annotated[list[Path], typer.Option(
    "--thinking", help="Thinking graphs: JSONL files or directories, one graph (docs/interfaces.md §8) per line "
    "(default: what `generate thinking` wrote in <workspace>/thinking).",
    show_default=False)]
Links = Annotated[list[Path], typer.Option(
    "--links", help="Item links (parquet/JSONL rows key, cui): which graph targets stand for which gold item.",
    show_default=False)]
Splits = Annotated[list[str], typer.Option("--split", help="Sample splits to use (repeatable).", show_default=False)]
VerbalizerKind = Annotated[str, typer.Option(
    "--verbalizer", help="template (offline, deterministic), openai (any OpenAI-compatible endpoint) or vllm (GPU).")]
Model = Annotated[str, typer.Option("--model", help="Model: the name the endpoint serves it under, or a path for vllm.",
                                    show_default=False)]
BaseUrl = Annotated[str, typer.Option("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1.",
                                      show_default=False)]
AllowRemote = Annotated[bool, typer.Option(
    "--allow-remote", help="Allow an endpoint that is not on this machine (records leave it; the opt-in is logged).")]
ApiKeyEnv = Annotated[str, typer.Option("--api-key-env", help="Environment variable holding the API key (never a flag).")]
Params = Annotated[list[str], typer.Option(
    "--param", "-p", help="Generation parameter key=value (repeatable): temperature=0.5, max_tokens=4096, top_k=20...",
    show_default=False)]
NoKnowledge = Annotated[bool, typer.Option(
    "--no-knowledge", help="Leave the thinking graph out of the prompt (the reference's no-knowledge variant).")]
Cache = Annotated[Path, typer.Option("--cache", help="Response cache file (default <workspace>/cache/generate/responses.sqlite).",
                                     show_default=False)]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the response cache.")]


def _verbalizer(kind: str, model: str | None, base_url: str | None, allow_remote: bool, api_key_env: str,
                params: list[str] | None, no_knowledge: bool, **more) -> dict:
    from generators.config import DEFAULT_PARAMS

    return {"kind": kind, "model": model, "base_url": base_url, "allow_remote": allow_remote, "api_key_env": api_key_env,
            "knowledge": not no_knowledge, "params": {**DEFAULT_PARAMS, **parse_params(params)}, **more}


def _config(ctx: typer.Context, *, samples: list[Path] | None, thinking: list[Path] | None, links: list[Path] | None,
            out: Path | None, cache: Path | None, no_cache: bool, verbalizer: dict, **values):
    from generators.config import load_config

    ws = workspace(ctx)
    use_cache = not no_cache and verbalizer["kind"] != "template"
    thinking = thinking or _workspace_thinking(ws)
    return load_config({
        "samples": samples or [ws.bench / "samples"],
        "thinking": thinking,
        "links": links or _links_beside(thinking),
        "out": out or ws.datasets / "ehr-ins",
        "cache": (cache or ws.cache / "generate" / "responses.sqlite") if use_cache else None,
        "verbalizer": verbalizer,
        **values,
    })


def _workspace_thinking(ws) -> list[Path]:
    """What `generate thinking` wrote into this workspace, if anything."""
    folder = ws.root / "thinking"
    return [folder] if folder.is_dir() and any(folder.glob("*.jsonl")) else []


def _links_beside(thinking: list[Path]) -> list[Path]:
    """The item links `generate thinking` saved beside each thinking-graph file it wrote."""
    from generators.inputs import thinking_files
    from graphkit.thinking.run import links_sidecar

    found = [links_sidecar(file) for file in thinking_files(thinking)] if thinking else []
    return [file for file in found if file.exists()]


@app.command("cases")
def cases(
    ctx: typer.Context,
    samples: Samples = None,
    thinking: Thinking = None,
    links: Links = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (default <workspace>/datasets/ehr-ins).",
                                      show_default=False)] = None,
    tasks: Annotated[list[str], typer.Option("--task", "-t", help="Only these tasks (repeatable).", show_default=False)] = None,
    splits: Splits = ["train"],  # noqa: B006 - typer reads the default, never mutates it
    kinds: Annotated[list[str], typer.Option("--kind", help="Case kinds: reasoning, direct (repeatable).")] = ["reasoning", "direct"],  # noqa: B006
    limit: Annotated[int, typer.Option("--limit", help="At most this many samples per shard.", show_default=False)] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or parquet.")] = "jsonl",
    shard: Annotated[str, typer.Option("--shard", help="Run only shard i of n (i/n, from 0); shards are independent jobs.",
                                       show_default=False)] = None,
    only_samples: Annotated[Path, typer.Option(
        "--only-samples", help="Regenerate just these sample ids (a file, one id per line) in an existing output.",
        show_default=False)] = None,
    only_affected: Annotated[bool, typer.Option(
        "--only-affected", help="Regenerate just the samples whose cases used edges curators changed since the last "
        "--only-affected run on this output (all changes the first time; see `ehr-r1 curate affected`).")] = False,
    affected_since: Annotated[str, typer.Option(
        "--affected-since", help="With --only-affected: changes after this ledger entry number, hash prefix or ISO time.",
        show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Discard an existing output made with other settings.")] = False,
    system_prompt: Annotated[str, typer.Option("--system-prompt", help="System turn of every case ('' for none).")] = "You are a helpful assistant.",
    verbalizer: VerbalizerKind = "template",
    model: Model = None,
    base_url: BaseUrl = None,
    allow_remote: AllowRemote = False,
    api_key_env: ApiKeyEnv = "OPENAI_API_KEY",
    params: Params = None,
    no_knowledge: NoKnowledge = False,
    n: Annotated[int, typer.Option("--n", help="Completions per sample; the first that passes the filters is kept.")] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Requests in flight (openai).")] = 32,
    rps: Annotated[float, typer.Option("--rps", help="At most this many requests per second (openai).", show_default=False)] = None,
    max_retries: Annotated[int, typer.Option("--max-retries", help="Retries of a failed request (openai).")] = 5,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request (openai).")] = 600.0,
    backoff: Annotated[float, typer.Option("--backoff", help="First retry delay in seconds, doubled per attempt (openai).")] = 1.0,
    tensor_parallel_size: Annotated[int, typer.Option("--tensor-parallel-size", help="GPUs per model (vllm).")] = 1,
    gpu_memory_utilization: Annotated[float, typer.Option("--gpu-memory-utilization", help="GPU memory share (vllm).")] = 0.9,
    max_model_len: Annotated[int, typer.Option("--max-model-len", help="Context length (vllm).", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Prompts per engine call (vllm).")] = 256,
    chat_template_kwargs: Annotated[list[str], typer.Option(
        "--chat-template-kwarg", help="key=value for the chat template (vllm), e.g. enable_thinking=false.",
        show_default=False)] = None,
    min_recall: Annotated[float, typer.Option("--min-recall", help="Share of gold items the Final Results must recover.")] = 0.7,
    leak_patterns: Annotated[list[str], typer.Option("--leak-pattern", help="Extra regex that marks a leaked answer (repeatable).",
                                                     show_default=False)] = None,
    judge_model: Annotated[str, typer.Option("--judge-model", help="Enable answer-blind re-derivation with this judge model.",
                                             show_default=False)] = None,
    judge_base_url: Annotated[str, typer.Option("--judge-base-url", help="The judge's endpoint (default: --base-url).",
                                                show_default=False)] = None,
    cache: Cache = None,
    no_cache: NoCache = False,
) -> None:
    """Generate EHR-Ins cases (reasoning + direct) for all tasks; resumable, shardable, filtered."""
    from generators.inputs import parse_shard
    from generators.pipeline import generate_cases
    from graphkit.errors import ConfigError

    judge = None
    if judge_model:
        judge_url = judge_base_url or base_url
        if not judge_url:
            raise ConfigError("the judge needs an endpoint", where="option --judge-base-url",
                              fix="pass --judge-base-url (or --base-url) with the judge's OpenAI-compatible URL")
        judge = {"model": judge_model, "base_url": judge_url}
    settings = _verbalizer(
        verbalizer, model, base_url, allow_remote, api_key_env, params, no_knowledge, n=n, concurrency=concurrency,
        rps=rps, max_retries=max_retries, timeout=timeout, backoff=backoff, tensor_parallel_size=tensor_parallel_size,
        gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len, batch_size=batch_size,
        chat_template_kwargs=parse_params(chat_template_kwargs))
    config = _config(ctx, samples=samples, thinking=thinking, links=links, out=out, cache=cache, no_cache=no_cache,
                     verbalizer=settings, splits=splits, tasks=tasks, kinds=kinds, limit=limit, format=fmt,
                     system_prompt=system_prompt or None,
                     filters={"min_recall": min_recall, "extra_leak_patterns": leak_patterns or [], "judge": judge})
    only = _read_ids(only_samples) if only_samples else None
    if only_affected:
        from graphkit.curation.affected import affected_for_generation

        if only_samples:
            raise ConfigError("choose one", where="--only-samples / --only-affected", fix="pass one of them")
        only, record_regenerated = affected_for_generation(workspace(ctx), config.out, config.samples, affected_since)
        console.print(f"{len(only)} samples affected by curation changes", markup=False)
    selected = parse_shard(shard)
    with RichProgress() as progress:
        report = generate_cases(config, shard=selected, only=only, overwrite=overwrite, progress=progress)
    if only_affected and report.card is not None:
        record_regenerated()
    for part in report.shards:
        state = "already complete" if part.skipped_complete else ("complete" if part.complete else "incomplete")
        resumed = f", {part.resumed} resumed from the journal" if part.resumed and not part.skipped_complete else ""
        console.print(f"shard {part.index}/{part.count}: {part.samples} samples{resumed}, {state}", markup=False)
    if report.card is None:
        console.print(f"{report.out}: waiting for the other shards before writing the dataset card", markup=False)
        return
    table = Table("task", "samples", "reasoning", "direct", "rejected", "no graph", title=f"EHR-Ins cases in {report.out}")
    for name, counts in report.card["tasks"].items():
        table.add_row(name, str(counts["samples"]), str(counts["reasoning"]), str(counts["direct"]),
                      str(sum(counts["rejected"].values())), str(counts["outcomes"].get("no_thinking_graph", 0)))
    console.print(table)
    totals = report.card["totals"]
    console.print(f"{totals['reasoning']} reasoning + {totals['direct']} direct cases; rejections by reason: "
                  f"{json.dumps(totals['rejected'])}; card: {report.out / 'README.md'}", markup=False)


def _read_ids(path: Path) -> set[str]:
    from graphkit.errors import InputError

    if not path.is_file():
        raise InputError("no such file", where="option --only-samples", value=str(path),
                         fix="pass a file with one sample id per line (e.g. from `ehr-r1 curate affected`)")
    text = path.read_text(encoding="utf-8")
    ids = json.loads(text) if text.lstrip().startswith("[") else text.split()
    return {str(sample_id).strip() for sample_id in ids if str(sample_id).strip()}


@app.command("preview")
def preview(
    ctx: typer.Context,
    task: Annotated[str, typer.Option("--task", "-t", help="The task to preview (e.g. diagnoses_ccs).")],
    samples: Samples = None,
    thinking: Thinking = None,
    links: Links = None,
    sample_id: Annotated[str, typer.Option("--sample-id", help="This sample (default: the first with a thinking graph).",
                                           show_default=False)] = None,
    splits: Splits = None,
    verbalizer: VerbalizerKind = "template",
    model: Model = None,
    base_url: BaseUrl = None,
    allow_remote: AllowRemote = False,
    api_key_env: ApiKeyEnv = "OPENAI_API_KEY",
    params: Params = None,
    no_knowledge: NoKnowledge = False,
    cache: Cache = None,
    no_cache: NoCache = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Print one sample's rendered prompt, its verbalized reasoning, the filters' verdicts and its cases."""
    from generators.preview import preview as run_preview

    settings = _verbalizer(verbalizer, model, base_url, allow_remote, api_key_env, params, no_knowledge)
    config = _config(ctx, samples=samples, thinking=thinking, links=links, out=None, cache=cache, no_cache=no_cache,
                     verbalizer=settings, splits=splits or None)
    result = run_preview(config, task, sample_id)
    verdicts = [{"keep": v.keep, "reason": v.reason, "detail": v.detail} for v in result.verdicts]
    if as_json:
        typer.echo(json.dumps({"sample_id": result.case.id, "task": result.case.task, "verbalizer": result.verbalizer,
                               "prompt": result.messages, "texts": result.texts, "verdicts": verdicts,
                               "cases": result.cases, "note": result.note}, ensure_ascii=False, indent=2))
        return
    rule = "=" * 100
    typer.echo(f"{rule}\nsample {result.case.id} (task {result.case.task}), verbalizer {json.dumps(result.verbalizer)}")
    for message in result.messages:
        typer.echo(f"{rule}\nPROMPT [{message['role']}]\n{message['content']}")
    for number, (text, verdict) in enumerate(zip(result.texts, verdicts, strict=True)):
        typer.echo(f"{rule}\nVERBALIZATION {number}: {'kept' if verdict['keep'] else 'rejected'} "
                   f"({verdict['reason']}{': ' + verdict['detail'] if verdict['detail'] else ''})\n{text}")
    if result.note:
        typer.echo(f"{rule}\nNOTE: {result.note}")
    for row in result.cases:
        typer.echo(f"{rule}\nCASE {row['id']} (kind {row['kind']}, enable_thinking {row['enable_thinking']})")
        for message in row["messages"]:
            content = message["content"]
            shown = content if message["role"] != "user" else _shorten(content)
            typer.echo(f"--- {message['role']}\n{shown}")


def _shorten(text: str, keep: int = 600) -> str:
    """The user turn repeats the record already shown in the prompt: show its ends only."""
    if len(text) <= 2 * keep:
        return text
    return f"{text[:keep]}\n[... {len(text) - 2 * keep} characters of the record ...]\n{text[-keep:]}"
