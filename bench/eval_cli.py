"""``ehr-r1 bench eval | baseline | report``: registered on the bench app by ``register(app)``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from graphkit.cli_common import RichProgress, console, parse_params


def _split_list(values: list[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(item.strip() for value in values for item in value.split(",") if item.strip())


def _number(interval: dict | None) -> str:
    if not interval or interval.get("point") is None or (isinstance(interval["point"], float) and math.isnan(interval["point"])):
        return "n/a"
    low, high = interval.get("low"), interval.get("high")
    if low is None or high is None:
        return f"{interval['point']:.3f}"
    return f"{interval['point']:.3f} [{low:.3f}, {high:.3f}]"


def results_table(results: dict, title: str) -> Table:
    table = Table(title=title)
    for column in ("task", "family", "n", "failed", "no answer", "metric", "value [95% CI]"):
        table.add_column(column)
    for key, task in results["tasks"].items():
        primary = task["primary"]
        table.add_row(key, task["family"], str(task["n"]), str(task["n_failed"]), str(task.get("n_no_answer", "")),
                      primary, _number(task["metrics"].get(primary)))
    return table


TasksOption = Annotated[list[str] | None, typer.Option("--tasks", help="Only these tasks (comma-separated or repeated).")]
SplitOption = Annotated[str, typer.Option("--split", help="Which split to score: test (EHR-Bench), val or train.")]
BootstrapOption = Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples of each 95% confidence interval.")]


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        data: Annotated[Path, typer.Option("--data", help="An `ehr-r1 bench build` output folder.")],
        model: Annotated[str, typer.Option("--model", help="SPEC: a local model folder (or hf:PATH), "
                                           "openai:BASE_URL@MODEL, or vllm:PATH. See README, EHR-Bench evaluation.")],
        out: Annotated[Path, typer.Option("--out", help="Run folder (run.json, predictions.jsonl, results.json); "
                                          "running again resumes it.")],
        tasks: TasksOption = None,
        limit: Annotated[int | None, typer.Option("--limit", help="At most N samples per task (the first by id).")] = None,
        split: SplitOption = "test",
        candidates: Annotated[bool, typer.Option("--candidates", help="Candidate-list prompts (the reference's "
                                                 "mode for untrained models).")] = False,
        direct: Annotated[bool, typer.Option("--direct", help="Decision tasks answer without thinking; the whole "
                                             "answer is scored.")] = False,
        concurrency: Annotated[int | None, typer.Option("--concurrency", help="Requests in flight (endpoint; "
                                                        "default 32) or batch size (local 8, vLLM 256).")] = None,
        allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow an endpoint that is not on this "
                                                   "machine (patient records are sent to it).")] = False,
        model_option: Annotated[list[str] | None, typer.Option("--model-option", help="Backend option key=value "
                                                               "(repeatable), e.g. device=cpu, retries=5, "
                                                               "api_key_env=MY_KEY.")] = None,
        max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Answer budget of decision tasks "
                                                    "(thinking included).")] = 4096,
        temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy.")] = 0.0,
        seed: Annotated[int, typer.Option("--seed", help="Seed of sampling and of the bootstrap.")] = 0,
        bootstrap: BootstrapOption = 1000,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Discard a previous run in --out.")] = False,
    ) -> None:
        """Run a model on EHR-Bench samples and score it (set P/R/F1, accuracy, AUROC/AUPRC with 95% CIs)."""
        from bench.evaluate import EvalConfig, evaluate, parse_model_spec

        spec = parse_model_spec(model, parse_params(model_option))
        config = EvalConfig(split=split, tasks=_split_list(tasks), limit=limit, candidates=candidates, direct=direct,
                            max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, n_resamples=bootstrap)
        with RichProgress() as progress:
            run = evaluate(data, spec, out, config, allow_remote=allow_remote, concurrency=concurrency,
                           overwrite=overwrite, progress=progress)
        console.print(results_table(run.results, f"{spec.text} on {data}"))
        console.print(f"{run.asked} sample(s) asked, {run.resumed} resumed, {run.failed} failed -> {out}")

    @app.command("baseline")
    def baseline_command(
        data: Annotated[Path, typer.Option("--data", help="An `ehr-r1 bench build` output folder (train split "
                                           "included: the baselines are fitted on it).")],
        out: Annotated[Path, typer.Option("--out", help="Folder for one run folder per baseline (OUT/<name>/).")],
        which: Annotated[list[str] | None, typer.Option("--which", help="most-frequent, repeat-last, logreg "
                                                        "(comma-separated or repeated; default all).")] = None,
        tasks: TasksOption = None,
        split: SplitOption = "test",
        seed: Annotated[int, typer.Option("--seed", help="Seed of the fit and of the bootstrap.")] = 0,
        bootstrap: BootstrapOption = 1000,
    ) -> None:
        """Score the baselines without a model (most frequent items, repeat the last event, count-feature logistic regression)."""
        from bench.baselines import BASELINES, run_baselines

        with RichProgress(transient=True) as progress:
            results = run_baselines(data, out, _split_list(which) or BASELINES, split=split, tasks=_split_list(tasks),
                                    n_resamples=bootstrap, seed=seed, progress=progress)
        for name, result in results.items():
            console.print(results_table(result, f"baseline {name} on {data}"))
            if result["skipped_tasks"]:
                console.print(f"{name}: {len(result['skipped_tasks'])} task(s) not scored (see results.json skipped_tasks)")
        console.print(f"-> {out}")

    @app.command("report")
    def report_command(
        runs: Annotated[list[Path], typer.Argument(help="Run folders of `ehr-r1 bench eval` and `ehr-r1 bench baseline`.")],
        out: Annotated[Path, typer.Option("--out", help="Folder for report.md, report.json and the PNG plots.")],
        title: Annotated[str, typer.Option("--title", help="Title of report.md.")] = "EHR-Bench report",
    ) -> None:
        """Compare runs: markdown and JSON tables with 95% CIs, per-task score plots and ROC curves."""
        from bench.report import write_report

        data = write_report(runs, out, title=title)
        for warning in data["warnings"]:
            console.print(f"warning: {warning}", markup=False, highlight=False)
        console.print(f"{len(data['runs'])} run(s), {len(data['tasks'])} task(s) -> {out / 'report.md'}")
