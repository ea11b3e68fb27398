"""`ehr-r1 demo --quick`, the README's first command, end to end in a fresh workspace and process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ehr_r1.demo import EVAL_TASKS


def test_the_quick_demo_runs_every_step_and_leaves_each_product(tmp_path, repo_root):
    ws = tmp_path / "ws"
    env = {**os.environ, "EHR_R1_GRAPH_LINGER": "0", "COLUMNS": "120"}
    env.pop("EHR_R1_WORKSPACE", None)
    done = subprocess.run([sys.executable, "-m", "ehr_r1.cli", "--workspace", str(ws), "demo", "--quick"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    for step in range(1, 10):
        assert f"{step}. " in output, f"step {step} never started"
    assert "Everything is in" in output

    samples = ws / "bench" / "samples"
    built = {p.name for p in (samples / "data").iterdir()}
    assert built == set(EVAL_TASKS)
    thinking = (ws / "thinking" / "kg.jsonl").read_text().splitlines()
    assert thinking and (ws / "thinking" / "kg.links.parquet").is_file()

    cases = [json.loads(line) for line in (ws / "datasets" / "ehr-ins" / "cases.jsonl").read_text().splitlines()]
    kinds = {case["kind"] for case in cases}
    assert kinds == {"reasoning", "direct"}, "the demo made no reasoning case"
    reasoning = next(case for case in cases if case["kind"] == "reasoning")
    assert "<think>" in reasoning["messages"][-1]["content"] and reasoning["id"] in output

    model = ws / "runs" / "demo" / "grpo"
    assert (model / "config.json").is_file()
    report = json.loads((ws / "bench" / "report-with-model" / "report.json").read_text())
    labels = [run.get("label") or run.get("name") for run in report["runs"]]
    assert len(labels) == 4 and any(str(model) in str(label) for label in labels)
    scored = json.loads((ws / "bench" / "runs" / "tiny-sft-grpo" / "results.json").read_text())
    assert set(scored["tasks"]) == set(EVAL_TASKS) and scored["finished"]
