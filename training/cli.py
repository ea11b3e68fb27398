"""`ehr-r1 train ...`: domain adaptation, reasoning SFT and GRPO from recipes; the tiny model."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import typer

from graphkit.cli_common import RichProgress, console, parse_params, workspace

app = typer.Typer(help="Train models: domain adaptation, reasoning SFT and GRPO (TRL), from YAML recipes.",
                  no_args_is_help=True)

RECIPE_HELP = ("Recipe YAML file, or a shipped recipe by name <model>/<stage>/<variant> "
               "(see `ehr-r1 train recipes`).")
OVERRIDES_HELP = "Recipe overrides as key=value (values parse as JSON: 8, 2e-5, true, [\"direct\"])."
CHECK_HELP = "Only validate the recipe (GPU recipes validate on a CPU machine too) and print its values."


def _main_process() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def _run_stage(ctx: typer.Context, stage: str, recipe: str, overrides: list[str] | None, check: bool) -> None:
    from training.config import load_recipe

    ws = workspace(ctx)
    loaded = load_recipe(recipe, stage, parse_params(overrides), workspace=ws.root, hardware=not check)
    if check:
        console.print(f"[green]ok[/green] {loaded.path} ({stage}, values hash {loaded.values_hash})")
        console.print_json(json.dumps(loaded.values, default=str))
        return
    from training.run import train

    if _main_process():
        with RichProgress() as progress:
            result = train(loaded, progress=progress)
        loss = result.metrics.get("train_loss")
        console.print(f"{stage}: {result.global_step} steps"
                      + (f", train loss {loss:.4f}" if loss is not None else "")
                      + (f", resumed from {result.resumed_from}" if result.resumed_from else ""))
        console.print(f"model: {result.output_dir}  (card: {result.output_dir / 'README.md'}, "
                      f"metrics: {result.metrics_path})")
    else:
        train(loaded)


@app.command("dapt")
def dapt(
    ctx: typer.Context,
    recipe: str = typer.Option(..., "--recipe", "-r", help=RECIPE_HELP),
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    check: bool = typer.Option(False, "--check", help=CHECK_HELP),
) -> None:
    """Stage 1, domain adaptation: train on direct (non-reasoning) EHR-Ins cases."""
    _run_stage(ctx, "dapt", recipe, overrides, check)


@app.command("sft")
def sft(
    ctx: typer.Context,
    recipe: str = typer.Option(..., "--recipe", "-r", help=RECIPE_HELP),
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    check: bool = typer.Option(False, "--check", help=CHECK_HELP),
) -> None:
    """Stage 2, reasoning SFT: reasoning cases (thinking on) mixed with direct ones (thinking off)."""
    _run_stage(ctx, "sft", recipe, overrides, check)


@app.command("grpo")
def grpo(
    ctx: typer.Context,
    recipe: str = typer.Option(..., "--recipe", "-r", help=RECIPE_HELP),
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    check: bool = typer.Option(False, "--check", help=CHECK_HELP),
) -> None:
    """Stage 3, GRPO: reinforcement learning with set-F1 and accuracy rewards from EHR-Bench's metrics."""
    _run_stage(ctx, "grpo", recipe, overrides, check)


@app.command("tiny-model")
def tiny_model(
    out: Path = typer.Argument(..., help="Directory to write the model and tokenizer to (replaced if it exists)."),
    vocab_size: int = typer.Option(2048, help="BPE vocabulary size of the tokenizer."),
    hidden_size: int = typer.Option(64, help="Hidden size of the model."),
    layers: int = typer.Option(2, help="Number of transformer layers."),
    seed: int = typer.Option(0, help="Seed of the random weights."),
) -> None:
    """Write a tiny random-init Qwen3-architecture model and a tokenizer trained on local text."""
    from training.tiny import TinyModelSpec, build_tiny_model

    spec = TinyModelSpec(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=layers, seed=seed)
    path = build_tiny_model(out, spec)
    console.print(f"tiny model: {path}")


@app.command("recipes")
def recipes(
    fields: bool = typer.Option(False, "--fields", help="Also list the fields ehr-r1 adds to TRL's configs."),
) -> None:
    """List the shipped recipes (each validated) and, with --fields, the fields ehr-r1 adds."""
    from rich.table import Table

    from graphkit.errors import EhrR1Error
    from training.config import CaseFields, GrpoFields, load_recipe, recipe_name, shipped_recipes

    table = Table("recipe", "stage", "base model", "status")
    for path in shipped_recipes():
        stage = path.parent.name
        try:
            loaded = load_recipe(path, stage, workspace=Path("{workspace}"), hardware=False)
            status, model = "[green]valid[/green]", loaded.values.get("model_name_or_path", "")
        except EhrR1Error as exc:
            status, model = f"[red]{exc.one_line()}[/red]", ""
        table.add_row(recipe_name(path), stage, model, status)
    console.print(table)
    if fields:
        added = Table("stages", "field", "default", "meaning")
        for stages, group in (("all", CaseFields), ("grpo", GrpoFields)):
            for item in dataclasses.fields(group):
                default = item.default if item.default_factory is dataclasses.MISSING else item.default_factory()
                added.add_row(stages, item.name, repr(default), item.metadata["help"])
        console.print(added)
