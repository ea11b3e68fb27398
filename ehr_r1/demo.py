"""`ehr-r1 demo`: the whole pipeline on the bundled MIMIC-IV demo, step by step.

Each step is the same command a user would type (run in-process, into the chosen workspace), so
the demo doubles as a recipe: what it prints under "$ ehr-r1 ..." can be copied and re-run. Two
steps have no single command and call the library: serializing every admission (a measurement,
not a file a user needs) and the tiny SFT + GRPO run (``training.demo``).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.rule import Rule

from graphkit.cli_common import console
from graphkit.workspace import Workspace

DEMO_DIR = Path(__file__).resolve().parents[1] / "graphkit" / "data" / "mimic-iv-demo"
# the record of the reference example (shared/examples/ehr-r1-format): a stroke admission
SHOW_SUBJECT, SHOW_ADMISSION, SHOW_UNTIL = "10001217", "24597018", "2157-11-20 08:14:00"
# tasks the tiny trained model is evaluated on: seconds on a CPU, both families represented
TRAIN_CASES = 400
EVAL_TASKS = ("labevents", "prescriptions", "Inpatient_Mortality", "LengthOfStay_3day")


@dataclass
class DemoRun:
    workspace: Workspace
    invoke: Callable[[list[str]], None]
    quick: bool = False
    timings: list[tuple[str, float]] = field(default_factory=list)

    @property
    def mimic(self) -> Path:
        return self.workspace.root / "mimic" / DEMO_DIR.name

    @property
    def samples(self) -> Path:
        return self.workspace.root / "bench" / "samples"

    def step(self, title: str, body: Callable[[], None]) -> None:
        console.print(Rule(f"[bold]{len(self.timings) + 1}. {title}"))
        started = time.perf_counter()
        body()
        self.timings.append((title, time.perf_counter() - started))

    def command(self, *args: str) -> None:
        console.print(f"[dim]$ ehr-r1 {shlex.join(args)}[/dim]")
        self.invoke(list(args))


def run_demo(workspace: Workspace, invoke: Callable[[list[str]], None], *, quick: bool = False) -> DemoRun:
    """Run every step; ``invoke`` runs one ehr-r1 command line in-process."""
    demo = DemoRun(workspace, invoke, quick)
    demo.step("Check the MIMIC-IV demo against the official schema", lambda: demo.command("ehr", "check", str(DEMO_DIR)))
    demo.step("Convert it to per-patient parquet shards", lambda: demo.command("ehr", "convert", str(DEMO_DIR)))
    demo.step("Serialize every admission (8k-token budget)", lambda: _serialize_all(demo))
    demo.step("Build the open demo graph and link MIMIC-IV to it", lambda: _graph(demo))
    demo.step("Build EHR-Bench (test patients) and EHR-Ins inputs (train patients)", lambda: _bench(demo))
    demo.step("Baselines on EHR-Bench", lambda: _baselines(demo))
    demo.step("Thinking graphs: mine associations, search typed paths", lambda: _thinking(demo))
    demo.step("EHR-Ins reasoning cases (template verbalizer)", lambda: _cases(demo))
    demo.step("Tiny SFT + GRPO on CPU, then evaluation", lambda: _train_and_eval(demo))
    console.print(Rule("[bold]done"))
    for title, seconds in demo.timings:
        console.print(f"  {seconds:7.1f} s  {title}")
    console.print(f"Everything is in {workspace.root}")
    return demo


def _serialize_all(demo: DemoRun) -> None:
    from graphkit.ehr.serialize import Serializer
    from graphkit.ehr.source import open_source
    from graphkit.ehr.timeline import iter_timelines, load_lookups

    source = open_source(demo.mimic)
    lookups = load_lookups(source)
    started = time.perf_counter()
    records = truncated = tokens = 0
    for timeline in iter_timelines(source, definition="clean", lookups=lookups):
        windows = timeline.admissions.select("subject_id", "hadm_id")
        out = Serializer(timeline, style="clean").serialize_many(windows, max_tokens=8192)
        records += out.height
        truncated += int(out["truncated"].sum())
        tokens += int(out["n_tokens"].sum())
    seconds = time.perf_counter() - started
    console.print(
        f"{records} admission records, {tokens / max(records, 1):,.0f} tokens on average, {truncated} left-truncated "
        f"to 8,192 tokens, in {seconds:.1f} s ({records / seconds:,.0f} records/s)"
    )
    demo.command("ehr", "show", str(demo.mimic), "--subject", SHOW_SUBJECT, "--hadm", SHOW_ADMISSION,
                 "--until", SHOW_UNTIL, "--max-tokens", "600")


def _graph(demo: DemoRun) -> None:
    demo.command("graph", "build", "--demo", "--mimic", str(demo.mimic), "--text", "off")
    demo.command("graph", "link-report", "--top", "3")


def _bench(demo: DemoRun) -> None:
    args = ["bench", "build", "--mimic", str(demo.mimic), "--out", str(demo.samples)]
    if demo.quick:
        args += ["--tasks", ",".join(EVAL_TASKS)]
    demo.command(*args)


def _baselines(demo: DemoRun) -> None:
    runs = demo.workspace.root / "bench" / "runs"
    demo.command("bench", "baseline", "--data", str(demo.samples), "--out", str(runs), "--bootstrap", "200")
    demo.command("bench", "report", *(str(p) for p in sorted(runs.iterdir()) if p.is_dir()),
                 "--out", str(demo.workspace.root / "bench" / "report"), "--title", "EHR-Bench on the MIMIC-IV demo: baselines")
    summary = json.loads((demo.workspace.root / "bench" / "report" / "report.json").read_text())
    _print_summary(summary)


def _print_summary(report: dict) -> None:
    from rich.table import Table

    table = Table("run", "decision tasks (mean F1)", "risk tasks (mean AUROC)", title="EHR-Bench summary")
    for run in report.get("runs", []):
        summary = run.get("summary", {})
        decision = summary.get("decision", {}).get("mean_primary")
        risk = summary.get("risk", {}).get("mean_primary")
        table.add_row(run.get("label") or run.get("name", "?"), _fmt(decision), _fmt(risk))
    console.print(table)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _thinking(demo: DemoRun) -> None:
    demo.command("generate", "mine", "--min-support", "2", "--min-lift", "1.5")
    demo.command("generate", "thinking", "--split", "train")


def _cases(demo: DemoRun) -> None:
    demo.command("generate", "cases", "--split", "train", "--verbalizer", "template", "--overwrite")
    cases = demo.workspace.datasets / "ehr-ins" / "cases.jsonl"
    shown = _first_reasoning_case(cases)
    if shown is None:
        console.print("[yellow]no reasoning case was kept on the demo[/yellow]")
        return
    console.print(Rule(f"one EHR-Ins case: {shown['id']}", style="dim"))
    user = shown["messages"][-2]["content"]
    console.print(f"[bold]user[/bold] ({len(user):,} characters; last lines)\n" + "\n".join(user.splitlines()[-6:]))
    console.print("[bold]assistant[/bold]\n" + shown["messages"][-1]["content"])


def _first_reasoning_case(path: Path) -> dict | None:
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row.get("kind") == "reasoning":
                return row
    return None


def _train_and_eval(demo: DemoRun) -> None:
    import datasets
    import transformers

    from graphkit.cli_common import RichProgress
    from training.demo import tiny_sft_grpo

    # one progress bar per tokenization pass would bury the demo's own output
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    cases = demo.workspace.datasets / "ehr-ins"
    console.print(f"[dim]training.demo.tiny_sft_grpo({cases}, ...)[/dim]")
    with RichProgress(transient=True) as progress:
        # a few steps only: the first cases suffice, and tokenizing all of them would take minutes
        model = tiny_sft_grpo(cases, demo.workspace.runs / "demo", max_samples=TRAIN_CASES, progress=progress)
    console.print(f"tiny model after SFT + GRPO: {model}")
    runs = demo.workspace.root / "bench" / "runs"
    demo.command("bench", "eval", "--data", str(demo.samples), "--model", str(model), "--out", str(runs / "tiny-sft-grpo"),
                 "--tasks", ",".join(EVAL_TASKS), "--limit", "3", "--max-new-tokens", "32", "--bootstrap", "200",
                 "--overwrite")
    report = demo.workspace.root / "bench" / "report-with-model"
    demo.command("bench", "report", *(str(p) for p in sorted(runs.iterdir()) if p.is_dir()), "--out", str(report),
                 "--title", "EHR-Bench on the MIMIC-IV demo: baselines and the tiny model")
    _print_summary(json.loads((report / "report.json").read_text()))
