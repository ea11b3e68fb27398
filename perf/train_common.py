"""Shared pieces of the training benchmarks: synthetic cases, a throughput probe, and a worker
that trains one stage either through ehr-r1 (`training.run.train`) or through a plain TRL script
with the same settings, each in its own process.

    python -m perf.train_common worker --impl ehr-r1|trl --stage sft --model DIR --cases FILE \
        --out result.json [key=value ...]

Run the worker under `accelerate launch` for multi-GPU / DeepSpeed cases; rank 0 writes the result.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "perf" / "results"
TASKS = (("diagnosis", "set", ["hypertension", "sepsis"]), ("readmission_30d", "binary", "yes"),
         ("next_event", "class", "labevents"))


def write_cases(path: Path, n: int, n_events: int, seed: int = 0) -> Path:
    """EHR-Ins-shaped rows (docs/interfaces.md §6) with records of about 40 tokens per event."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for index in range(n):
            task, output_type, label = TASKS[index % len(TASKS)]
            blocks = ["## Patient Demographics\n- Age: 70\n- Gender: Male"]
            for event in range(n_events):
                blocks.append(f"## Laboratory Test Events [2180-{1 + event // 28 % 12:02d}-{1 + event % 28:02d} "
                              f"08:00:00]\n| Item Name | Value |\n| ------ | ------ |\n| Sodium | {rng.randint(120, 150)}"
                              f" |\n| Creatinine | {rng.uniform(0.5, 3):.2f} |")
            answer = "\n".join(label) if isinstance(label, list) else label
            kind = "reasoning" if index % 2 == 0 else "direct"
            think = "## Extraction\n...\n## Reasoning\n...\n## Final Results\n" + answer if kind == "reasoning" else ""
            row = {"id": f"c{index}", "task": task, "kind": kind, "enable_thinking": kind == "reasoning",
                   "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                {"role": "user", "content": "\n\n".join(blocks) + "\nAnswer the question."},
                                {"role": "assistant", "content": f"<think>\n{think}\n</think>\n\n{answer}"}],
                   "label": label, "output_type": output_type, "sample_id": f"s{index}", "graph_hash": "perf"}
            handle.write(json.dumps(row) + "\n")
    return path


def _probe(warmup: int):
    import torch
    from transformers import TrainerCallback

    class Throughput(TrainerCallback):
        """Tokens per second over the steps after ``warmup``, from the running ``num_tokens`` that
        TRL's SFT and GRPO trainers log at every step (logging_steps=1)."""

        def __init__(self):
            self.marks: list[tuple[float, float]] = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "num_tokens" in logs:
                self.marks.append((time.perf_counter(), float(logs["num_tokens"])))

        def summary(self) -> dict[str, float]:
            timed = self.marks[warmup:]
            out: dict[str, float] = {"steps_timed": max(len(timed) - 1, 0)}
            if len(timed) >= 2:
                seconds = timed[-1][0] - timed[0][0]
                out["seconds_per_step"] = seconds / (len(timed) - 1)
                if timed[-1][1] > timed[0][1]:
                    out["tokens_per_second"] = (timed[-1][1] - timed[0][1]) / seconds
            if torch.cuda.is_available():
                out["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            return out

    return Throughput()


def _plain_trl(stage: str, recipe, probe) -> None:
    """The same stage as a plain TRL script: rows straight from the JSONL, no ehr-r1 data pipeline."""
    import trl
    from datasets import Dataset
    from transformers import AutoTokenizer

    from training.rewards import REWARDS

    config = recipe.config
    rows = [json.loads(line) for line in open(config.dataset_path, encoding="utf-8")]
    rows = [r for r in rows if r["kind"] in config.case_kinds]
    tokenizer = AutoTokenizer.from_pretrained(config.model_name_or_path)
    if stage == "grpo":
        data = Dataset.from_list([{"prompt": r["messages"][:-1], "output_type": r["output_type"],
                                   "label": r["label"] if isinstance(r["label"], list) else [r["label"]]} for r in rows])
        trainer = trl.GRPOTrainer(model=config.model_name_or_path, reward_funcs=[REWARDS[n] for n in config.rewards],
                                  args=config, train_dataset=data, processing_class=tokenizer, callbacks=[probe])
    else:
        data = Dataset.from_list([{"messages": r["messages"]} for r in rows])
        trainer = trl.SFTTrainer(model=config.model_name_or_path, args=config, train_dataset=data,
                                 processing_class=tokenizer, callbacks=[probe])
    trainer.train()


def worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="perf.train_common worker")
    parser.add_argument("--impl", choices=("ehr-r1", "trl"), required=True)
    parser.add_argument("--stage", choices=("dapt", "sft", "grpo"), required=True)
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)

    from graphkit.cli_common import parse_params
    from training.config import load_recipe

    overrides = {"logging_steps": 1, "save_strategy": "no", "report_to": "none", **parse_params(args.overrides)}
    recipe = load_recipe(args.recipe, args.stage, overrides)
    probe = _probe(args.warmup)
    started = time.perf_counter()
    if args.impl == "ehr-r1":
        from training.run import train

        train(recipe, callbacks=[probe])
    else:
        _plain_trl(args.stage, recipe, probe)
    if os.environ.get("RANK", "0") == "0":
        result = {"impl": args.impl, "stage": args.stage, "wall_seconds": time.perf_counter() - started,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **probe.summary()}
        args.out.write_text(json.dumps(result, indent=2))


def run_worker(impl: str, stage: str, recipe: str, out: Path, overrides: dict[str, Any],
               launch: list[str] | None = None, warmup: int = 2) -> dict[str, Any]:
    """One worker in its own process (optionally under ``accelerate launch`` + ``launch`` args)."""
    command = [sys.executable, "-m", "perf.train_common", "worker", "--impl", impl, "--stage", stage,
               "--recipe", recipe, "--out", str(out), "--warmup", str(warmup),
               *(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in overrides.items())]
    if launch:
        command = [sys.executable, "-m", "accelerate.commands.launch", *launch, "-m", *command[2:]]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        return {"impl": impl, "stage": stage, "error": completed.stderr.strip().splitlines()[-1:]}
    return json.loads(out.read_text())


def run_pair(stage: str, recipe: str, overrides: dict[str, Any], root: Path, repeats: int = 1) -> list[dict[str, Any]]:
    """ehr-r1 and plain TRL on one stage, ``repeats`` times each in alternating order (so a
    shared machine's load drifts evenly over both); the median run of each, one row per impl."""
    runs: dict[str, list[dict[str, Any]]] = {"ehr-r1": [], "trl": []}
    for repeat in range(repeats):
        for impl in ("ehr-r1", "trl") if repeat % 2 == 0 else ("trl", "ehr-r1"):
            out = root / f"{stage}-{impl}-{repeat}"
            runs[impl].append(run_worker(impl, stage, recipe, out.with_suffix(".json"),
                                         {**overrides, "output_dir": str(out)}))
    return [_median(impl, stage, results) for impl, results in runs.items()]


def _median(impl: str, stage: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median tokens/s, whole (its other numbers belong to the same run)."""
    good = sorted((r for r in results if "error" not in r), key=lambda r: r.get("tokens_per_second", 0.0))
    if not good:
        return results[0]
    return {**good[(len(good) - 1) // 2], "impl": impl, "stage": stage, "runs": len(good),
            "tokens_per_second_runs": [r.get("tokens_per_second") for r in good]}


def machine() -> dict[str, Any]:
    import platform

    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                            "load_average": os.getloadavg()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpus"] = torch.cuda.device_count()
    try:
        info["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                     text=True).stdout.strip()
    except OSError:
        info["git"] = None
    return info


STAGE_COLUMNS = {  # column title -> (result key, format)
    "tokens/s": ("tokens_per_second", "{:.0f}"),
    "s/step": ("seconds_per_step", "{:.3f}"),
    "wall s": ("wall_seconds", "{:.1f}"),
    "peak RSS MiB": ("peak_rss_mib", "{:.0f}"),
    "peak GPU GiB": ("peak_gpu_memory_gib", "{:.1f}"),
}


def stage_table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """Markdown rows: each stage through ehr-r1 and plain TRL, with ehr-r1's tokens/s ratio to TRL."""
    lines = ["| stage | impl | " + " | ".join(columns) + " | ratio vs TRL |", "|---" * (len(columns) + 3) + "|"]
    for stage in ("dapt", "sft", "grpo"):
        ours, plain = (next(r for r in rows if r["stage"] == stage and r["impl"] == impl) for impl in ("ehr-r1", "trl"))
        for row in (ours, plain):
            if "error" in row:
                lines.append(f"| {stage} | {row['impl']} | error: {row['error']} |" + " |" * len(columns))
                continue
            cells = [fmt.format(row.get(key, float("nan"))) for key, fmt in (STAGE_COLUMNS[c] for c in columns)]
            ratio = ""
            if row is ours and "tokens_per_second" in ours and "tokens_per_second" in plain:
                ratio = f"{ours['tokens_per_second'] / plain['tokens_per_second']:.2f}x"
            lines.append(f"| {stage} | {row['impl']} | " + " | ".join(cells) + f" | {ratio} |")
    return lines


def write_results(name: str, payload: dict[str, Any], table: list[str]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    (RESULTS / f"{name}.md").write_text("\n".join(table) + "\n")
    return RESULTS / f"{name}.md"


if __name__ == "__main__":
    if sys.argv[1:2] != ["worker"]:
        raise SystemExit(__doc__)
    worker(sys.argv[2:])
