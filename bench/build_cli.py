"""``ehr-r1 bench build``: registered on the bench app by ``register(app)``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from graphkit.cli_common import RichProgress, console


def register(app: typer.Typer) -> None:
    @app.command("build")
    def build_command(
        mimic: Annotated[
            Path,
            typer.Option(
                "--mimic", help="A MIMIC-IV folder (PhysioNet layout or `ehr-r1 ehr convert` output)."
            ),
        ],
        out: Annotated[Path, typer.Option("--out", help="Output folder; running again resumes it.")],
        tasks: Annotated[
            list[str] | None, typer.Option("--tasks", help="Only these tasks (comma-separated or repeated).")
        ] = None,
        per_task: Annotated[
            str | None,
            typer.Option(
                "--per-task",
                help="Samples per task and split: N, or 'reference' "
                "(the reference's EHR-Bench / EHR-Ins counts). Default: all.",
            ),
        ] = None,
        balance: Annotated[
            bool,
            typer.Option(
                "--balance",
                help="Risk tasks: N // 2 samples per label (without "
                "--per-task: as many as the rarer label has).",
            ),
        ] = False,
        shard: Annotated[
            str | None,
            typer.Option(
                "--shard",
                help="Run job i of n (i/n, 0-based): units i, i+n, ... "
                "Jobs share --out; the last to finish writes the dataset.",
            ),
        ] = None,
        split_ratios: Annotated[
            str, typer.Option("--split-ratios", help="Patient split train,val,test.")
        ] = "0.8,0.1,0.1",
        seed: Annotated[int, typer.Option("--seed", help="Seed of the sampling.")] = 0,
        style: Annotated[
            str,
            typer.Option(
                "--style", help="Record style: clean, or ehr-r1 (the reference's text and event definition)."
            ),
        ] = "clean",
        max_tokens: Annotated[
            int,
            typer.Option(
                "--max-tokens", help="Token budget of a record (left-truncated to fit); 0 = no budget."
            ),
        ] = 8192,
        atc: Annotated[
            Path | None,
            typer.Option(
                "--atc",
                help="NDC->ATC table for prescriptions_atc / medrecon_atc "
                "(see `ehr-r1 bench atc-from-umls`).",
            ),
        ] = None,
        subjects_per_unit: Annotated[
            int, typer.Option("--subjects-per-unit", help="Subjects per unit of work (memory grows with it).")
        ] = 500,
        fmt: Annotated[str, typer.Option("--format", help="parquet or jsonl.")] = "parquet",
        force: Annotated[
            bool, typer.Option("--force", help="Replace a build in --out made with other options.")
        ] = False,
    ) -> None:
        """Build EHR-Bench / EHR-Ins samples (all tasks, patient-level splits) with a dataset card."""
        from bench.builder import BuildConfig, build, parse_per_task, parse_shard
        from bench.splits import parse_ratios
        from graphkit.hashing import file_hash

        chosen = tuple(t.strip() for v in tasks or [] for t in v.split(",") if t.strip()) or None
        config = BuildConfig(
            tasks=chosen,
            per_task=parse_per_task(per_task),
            balance=balance,
            split_ratios=parse_ratios(split_ratios),
            seed=seed,
            style=style,
            max_tokens=max_tokens or None,
            atc=str(atc.resolve()) if atc else None,
            atc_hash=file_hash(atc) if atc and atc.is_file() else None,
            subjects_per_unit=subjects_per_unit,
            format=fmt,
        )
        with RichProgress(transient=True) as progress:
            result = build(mimic, out, config, shard=parse_shard(shard), force=force, progress=progress)
        if not result.finalized:
            console.print(
                f"ran {result.units_run} unit(s); {result.units_done}/{result.units_total} done in {result.out}. "
                "The dataset is written by the job that finishes the last unit (or run this command again).",
                highlight=False,
            )
            return
        card = result.card
        table = Table(title=f"EHR-Bench samples in {result.out}", title_justify="left")
        for column in ("task", "family", "train", "val", "test", "skipped"):
            table.add_column(column, justify="left" if column in ("task", "family") else "right")
        for key, entry in card["tasks"].items():
            counts = entry["counts"]
            table.add_row(
                key,
                entry["family"],
                str(counts.get("train", 0)),
                str(counts.get("val", 0)),
                str(counts.get("test", 0)),
                str(sum(entry["skipped"].values())),
            )
        console.print(table)
        skipped = card["skipped_tasks"]
        note = f"; {len(skipped)} task(s) not built (see the card)" if skipped else ""
        console.print(
            f"OK: {card['totals']['samples']} samples of {len(card['tasks'])} tasks{note}; card: {result.out / 'README.md'}",
            highlight=False,
            soft_wrap=True,
        )
