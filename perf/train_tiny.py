"""CPU benchmark: the tiny end-to-end training (what `ehr-r1 demo` runs) and, side by side, each
stage through ehr-r1 against a plain TRL script with the same settings (same tiny model, cases,
steps), every case in its own process.

    python -m perf.train_tiny [--steps 10] [--cases 64] [--events 12] [--repeats 3]

Writes perf/results/train_tiny.{json,md}. The machine is shared while developing: the load
average is recorded with the numbers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perf.train_common import REPO, machine, run_pair, stage_table, write_cases, write_results


def _end_to_end(cases: Path, out: Path) -> dict[str, float]:
    """Build the tiny model, then SFT + GRPO with the demo function, in a fresh process."""
    script = (
        "import json, sys, time\n"
        "t0 = time.perf_counter()\n"
        "from training.tiny import build_tiny_model\n"
        "from training.demo import tiny_sft_grpo\n"
        "t1 = time.perf_counter()\n"
        f"model = build_tiny_model({str(out / 'tiny')!r})\n"
        "t2 = time.perf_counter()\n"
        f"tiny_sft_grpo({str(cases)!r}, {str(out / 'demo')!r}, base_model=model)\n"
        "t3 = time.perf_counter()\n"
        "print(json.dumps({'import_seconds': t1 - t0, 'tiny_model_seconds': t2 - t1,"
        " 'sft_grpo_seconds': t3 - t2, 'total_seconds': t3 - t0}))\n"
    )
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                               env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(out)})
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1]}
    return {**json.loads(completed.stdout.strip().splitlines()[-1]), "process_seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--cases", type=int, default=64)
    parser.add_argument("--events", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3, help="runs per stage and implementation (medians)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cases = write_cases(root / "cases.jsonl", args.cases, args.events)
        end_to_end = _end_to_end(cases, root / "e2e")
        model = root / "e2e" / "tiny"
        common = {"model_name_or_path": str(model), "dataset_path": str(cases), "max_steps": args.steps}
        rows = [row for stage in ("dapt", "sft", "grpo")
                for row in run_pair(stage, f"tiny/{stage}/cpu", common, root, args.repeats)]

    payload = {"benchmark": "train_tiny", "machine": machine(), "args": vars(args), "end_to_end": end_to_end,
               "stages": rows}
    table = [
        "# Tiny training on CPU",
        "",
        f"Machine: {payload['machine']['cpus']} CPUs, load average {payload['machine']['load_average']}, "
        f"git {payload['machine']['git']}; {args.cases} cases of {args.events} events, {args.steps} steps per stage, "
        f"median of {args.repeats} runs per implementation in alternating order.",
        "",
        "End to end (`training.demo.tiny_sft_grpo` after building the tiny model, fresh process): "
        + ", ".join(f"{k} {v:.1f}" for k, v in end_to_end.items() if isinstance(v, float)),
        "",
        *stage_table(rows, ["tokens/s", "s/step", "wall s", "peak RSS MiB"]),
    ]
    print(write_results("train_tiny", payload, table).read_text())


if __name__ == "__main__":
    main()
