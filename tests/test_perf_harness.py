"""perf/harness.py: each case in its own process, peak RSS per case, targets, set-ups, compare."""

from __future__ import annotations

import json
from pathlib import Path

from perf.harness import Case, compare, run_in_process, run_suite, to_markdown

HERE = "tests.test_perf_harness"


# functions the harness runs in child processes ------------------------------------------------


def hold_megabytes(megabytes: int) -> dict:
    block = bytearray(megabytes << 20)
    for i in range(0, len(block), 4096):  # touch every page so it is resident
        block[i] = 1
    return {"megabytes": megabytes, "rows_per_s": 2_000_000.0}


def fail_loudly() -> dict:
    raise RuntimeError("the disk is full")


def count_setups(marker: str) -> dict:
    with open(marker, "a") as handle:
        handle.write("x")
    return {}


# tests --------------------------------------------------------------------------------------------


def test_peak_rss_is_measured_per_process():
    large = run_in_process(f"{HERE}:hold_megabytes", {"megabytes": 300})
    small = run_in_process(f"{HERE}:hold_megabytes", {"megabytes": 1})  # after: not a running max
    assert small["status"] == large["status"] == "ok"
    # the margin leaves room for pages a loaded machine may have swapped out
    assert large["peak_rss_mb"] > small["peak_rss_mb"] + 150
    assert large["metrics"] == {"megabytes": 300, "rows_per_s": 2_000_000.0}
    assert large["wall_s"] > 0 and large["cpu_user_s"] + large["cpu_system_s"] > 0


def test_failure_is_recorded_not_raised():
    result = run_in_process(f"{HERE}:fail_loudly", {})
    assert result["status"] == "failed" and "RuntimeError: the disk is full" in result["error"]


def test_suite_writes_json_and_markdown_with_targets_and_shared_setup(tmp_path):
    marker = tmp_path / "setups"
    setup = {"setup": f"{HERE}:count_setups", "setup_params": {"marker": str(marker)}}
    cases = [
        Case(
            "ours", f"{HERE}:hold_megabytes", {"megabytes": 8}, targets={"rows_per_s": ">= 1000000"}, **setup
        ),
        Case("strict", f"{HERE}:hold_megabytes", {"megabytes": 8}, targets={"peak_rss_mb": "<= 1"}, **setup),
        Case("peer", f"{HERE}:hold_megabytes", {"megabytes": 4}, peer_of="ours", note="a plain baseline"),
        Case("broken", f"{HERE}:fail_loudly"),
    ]
    path = run_suite("toy", cases, out=tmp_path, echo=lambda _: None)
    assert marker.read_text() == "x"  # the shared set-up ran once
    document = json.loads(path.read_text())
    assert document["suite"] == "toy" and document["git"]["revision"]
    assert document["machine"]["cpu_count"] >= 1 and len(document["machine"]["loadavg_after"]) == 3
    by_name = {r["case"]["name"]: r for r in document["results"]}
    assert by_name["ours"]["targets"] == {"rows_per_s": True}
    assert by_name["strict"]["targets"] == {"peak_rss_mb": False}
    assert by_name["broken"]["result"]["status"] == "failed"
    markdown = (tmp_path / "toy.md").read_text()
    assert markdown == to_markdown(document)
    assert "| ours |  |" in markdown and "rows_per_s >= 1000000: met" in markdown
    assert "peak_rss_mb <= 1: MISSED" in markdown and "| peer | ours |" in markdown
    assert "failed: " in markdown and "- peer: a plain baseline" in markdown


def test_compare_lists_shared_cases_with_ratios(tmp_path):
    old = run_suite(
        "toy",
        [Case("a", f"{HERE}:hold_megabytes", {"megabytes": 2})],
        out=tmp_path,
        label="old",
        echo=lambda _: None,
    )
    new = run_suite(
        "toy",
        [Case("a", f"{HERE}:hold_megabytes", {"megabytes": 200})],
        out=tmp_path,
        label="new",
        echo=lambda _: None,
    )
    table = compare(Path(old), Path(new))
    rows = [line for line in table.splitlines() if line.startswith("| a |")]
    assert [row.split("|")[2].strip() for row in rows] == ["wall_s", "peak_rss_mb", "megabytes", "rows_per_s"]
    megabytes = rows[2].split("|")
    assert megabytes[3].strip() == "2" and megabytes[4].strip() == "200" and megabytes[5].strip() == "100.00"
