"""A small benchmark harness: named cases, each run in its own process, results as JSON + markdown.

A benchmark module (``perf/<suite>.py``) defines ``SUITE`` and ``cases(quick: bool) -> list[Case]``
and ends with ``if __name__ == "__main__": main_for(__name__)``. A case names a function
``"package.module:function"`` that takes its ``params`` as keyword arguments and returns a dict of
metrics (numbers or short strings). The harness runs every case in a fresh Python process and
records the function's wall time, CPU time, the process's peak RSS (from ``wait4``), the metrics,
the machine (CPU, memory, load before and after) and the git revision, then writes
``perf/results/<suite>.json`` and ``.md``. A case may name a ``setup`` function, run first in its
own process and not measured (e.g. generating input data); a set-up shared by several cases runs
once per suite run.

    python -m perf.ehr_pipeline [--quick] [--only NAME ...] [--cpus N] [--label L]
    python -m perf.harness run perf.ehr_pipeline [same options]
    python -m perf.harness compare perf/results/a.json perf/results/b.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "perf" / "results"
_TARGET = re.compile(r"^\s*(>=|<=)\s*([-+0-9.eE_]+)\s*$")


@dataclass
class Case:
    name: str
    function: str  # "package.module:function", called with **params, returns a dict of metrics
    params: dict[str, Any] = field(default_factory=dict)
    setup: str | None = None  # "package.module:function", called with **setup_params, not measured
    setup_params: dict[str, Any] = field(default_factory=dict)
    peer_of: str | None = None  # the ehr-r1 case this one is a baseline for (e.g. plain polars)
    targets: dict[str, str] = field(default_factory=dict)  # metric -> ">= 1000000" or "<= 4096"
    note: str = ""


# ---------------------------------------------------------------- one function in a fresh process


def _child(spec_path: str) -> None:
    """The case process: run the function, write its own timing and metrics."""
    spec = json.loads(Path(spec_path).read_text())
    module_name, _, function_name = spec["function"].partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    before = os.times()
    started = time.perf_counter()
    metrics = function(**spec["params"]) or {}
    wall = time.perf_counter() - started
    after = os.times()
    result = {
        "wall_s": wall,
        "peak_rss_self_mb": _own_peak_rss_mb(),
        "cpu_user_s": after.user - before.user,
        "cpu_system_s": after.system - before.system,
        # processes the function started and waited for (the case's own peak comes from wait4)
        "peak_rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "metrics": metrics,
    }
    Path(spec["result"]).write_text(json.dumps(result, default=str))


def _own_peak_rss_mb() -> float | None:
    """VmHWM of this address space. wait4's ru_maxrss is not enough: Linux carries the forking
    parent's high-water mark across exec, so a child of a 2 GiB pytest would report 2 GiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_in_process(function: str, params: dict, cpus: int | None = None, timeout: float = 3600) -> dict:
    """``function(**params)`` in a fresh interpreter, with its peak RSS (MiB) and status."""
    with tempfile.TemporaryDirectory(prefix="ehr-r1-perf-") as tmp:
        spec_path, result_path, log_path = (Path(tmp) / n for n in ("spec.json", "result.json", "stderr.txt"))
        spec_path.write_text(json.dumps({"function": function, "params": params, "result": str(result_path)}))
        env = dict(os.environ)
        preexec = None
        if cpus:
            env["POLARS_MAX_THREADS"] = str(cpus)
            cores = sorted(os.sched_getaffinity(0))[:cpus]

            def preexec() -> None:
                os.sched_setaffinity(0, cores)

        started = time.perf_counter()
        with open(log_path, "w") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "perf.harness", "_child", str(spec_path)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=preexec,
            )
            status, usage = _wait(child, timeout)
        process_wall = time.perf_counter() - started
        if status is None:
            return {
                "status": "timeout",
                "error": f"no result after {timeout:.0f} s",
                "process_wall_s": process_wall,
            }
        peak = usage.ru_maxrss / 1024  # Linux reports KiB
        if status != 0 or not result_path.exists():
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            return {
                "status": "failed",
                "error": " | ".join(tail) or f"exit status {status}",
                "peak_rss_mb": peak,
            }
        result = json.loads(result_path.read_text())
        own_peak = result.pop("peak_rss_self_mb", None)
        result.update(status="ok", process_wall_s=process_wall, peak_rss_mb=own_peak if own_peak is not None else peak)
        return result


def _wait(child: subprocess.Popen, timeout: float):
    """Reap ``child`` with wait4, which returns the rusage of that process alone."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            return child.returncode, usage
        if time.monotonic() > deadline:
            child.kill()
            os.wait4(child.pid, 0)
            child.returncode = -9
            return None, None
        time.sleep(0.02)


# ---------------------------------------------------------------- a suite


def machine_info() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _first_match(Path("/proc/cpuinfo"), r"model name\s*:\s*(.+)"),
        "memory_gib": _meminfo_gib(),
        "loadavg": list(os.getloadavg()),
    }
    for package in ("polars", "isal"):
        try:
            info[package] = importlib.import_module(package).__version__
        except ImportError:
            info[package] = None
    try:
        from graphkit import __version__

        info["ehr_r1"] = __version__
    except ImportError:
        info["ehr_r1"] = None
    return info


def _first_match(path: Path, pattern: str) -> str | None:
    try:
        match = re.search(pattern, path.read_text())
    except OSError:
        return None
    return match.group(1).strip() if match else None


def _meminfo_gib() -> float | None:
    kib = _first_match(Path("/proc/meminfo"), r"MemTotal:\s*(\d+) kB")
    return round(int(kib) / 1024**2, 1) if kib else None


def git_info() -> dict:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    changed = [line for line in git("status", "--porcelain").splitlines() if line.strip()]
    return {
        "revision": git("rev-parse", "HEAD") or None,
        "subject": git("log", "-1", "--format=%s"),
        "changed_files": len(changed),
    }


def run_suite(
    suite: str,
    cases: list[Case],
    only: list[str] | None = None,
    cpus: int | None = None,
    label: str | None = None,
    out: Path = RESULTS,
    timeout: float = 3600,
    echo=print,
) -> Path:
    """Run the cases (each in its own process), write ``<suite>[-label].json`` and ``.md``."""
    selected = [c for c in cases if not only or c.name in only]
    unknown = sorted(set(only or []) - {c.name for c in cases})
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; this suite has {[c.name for c in cases]}")
    started = dt.datetime.now(dt.UTC)
    machine = machine_info()
    setups_done: dict[str, dict] = {}
    results = []
    for case in selected:
        record = {"case": asdict(case)}
        if case.setup:
            key = json.dumps([case.setup, case.setup_params], sort_keys=True)
            if key not in setups_done:
                echo(f"[{suite}] set-up for {case.name}: {case.setup}")
                setups_done[key] = run_in_process(case.setup, case.setup_params, timeout=timeout)
            record["setup"] = setups_done[key]
            if setups_done[key]["status"] != "ok":
                record["result"] = {
                    "status": "skipped",
                    "error": "set-up failed: " + setups_done[key].get("error", ""),
                }
                results.append(record)
                echo(f"[{suite}] {case.name}: skipped (set-up failed)")
                continue
        echo(f"[{suite}] {case.name} ...")
        record["result"] = run_in_process(case.function, case.params, cpus=cpus, timeout=timeout)
        record["targets"] = _check_targets(case, record["result"])
        results.append(record)
        echo(f"[{suite}] {case.name}: {_one_line(record['result'])}")
    machine["loadavg_after"] = list(os.getloadavg())
    document = {
        "suite": suite,
        "label": label,
        "started": started.isoformat(timespec="seconds"),
        "cpus": cpus,
        "git": git_info(),
        "machine": machine,
        "results": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{suite}-{label}" if label else suite
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    (out / f"{stem}.md").write_text(to_markdown(document))
    echo(f"[{suite}] wrote {json_path} and {json_path.with_suffix('.md')}")
    return json_path


def _check_targets(case: Case, result: dict) -> dict[str, bool | None]:
    verdicts = {}
    for metric, rule in case.targets.items():
        match = _TARGET.match(rule)
        if not match:
            raise ValueError(f"case {case.name}: target {metric!r} must read '>= N' or '<= N', got {rule!r}")
        value = _value(result, metric)
        if not isinstance(value, (int, float)):
            verdicts[metric] = None
            continue
        bound = float(match.group(2))
        verdicts[metric] = value >= bound if match.group(1) == ">=" else value <= bound
    return verdicts


def _value(result: dict, metric: str):
    return result.get("metrics", {}).get(metric, result.get(metric))


def _one_line(result: dict) -> str:
    if result.get("status") != "ok":
        return f"{result.get('status')}: {result.get('error', '')}"
    metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in result.get("metrics", {}).items())
    return f"{result['wall_s']:.2f} s, peak {result['peak_rss_mb']:.0f} MiB" + (
        f", {metrics}" if metrics else ""
    )


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# ---------------------------------------------------------------- markdown and compare


def to_markdown(document: dict) -> str:
    machine, git = document["machine"], document["git"]
    lines = [
        f"# {document['suite']}" + (f" ({document['label']})" if document.get("label") else ""),
        "",
        f"- run {document['started']} at git {str(git.get('revision'))[:10]} ({git.get('subject')}; "
        f"{git.get('changed_files')} uncommitted files in the tree)",
        f"- machine: {machine.get('cpu_model')}, {machine.get('cpus_usable')} usable of {machine.get('cpu_count')} "
        f"CPUs, {machine.get('memory_gib')} GiB; {machine.get('platform')}; Python {machine.get('python')}, "
        f"polars {machine.get('polars')}, isal {machine.get('isal')}, ehr-r1 {machine.get('ehr_r1')}",
        f"- load average (1, 5, 15 min) before {_load(machine.get('loadavg'))}, after "
        f"{_load(machine.get('loadavg_after'))}"
        + (f"; cases pinned to {document['cpus']} CPUs" if document.get("cpus") else ""),
        "",
        "| case | peer of | wall s | CPU s | peak RSS MiB | metrics | targets |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for record in document["results"]:
        case, result = record["case"], record["result"]
        if result.get("status") != "ok":
            lines.append(
                f"| {case['name']} | {case.get('peer_of') or ''} | | | | {result.get('status')}: "
                f"{result.get('error', '')} | |"
            )
            continue
        metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in result.get("metrics", {}).items())
        targets = ", ".join(
            f"{metric} {case['targets'][metric]}: " + {True: "met", False: "MISSED", None: "n/a"}[ok]
            for metric, ok in record.get("targets", {}).items()
        )
        cpu = result["cpu_user_s"] + result["cpu_system_s"]
        lines.append(
            f"| {case['name']} | {case.get('peer_of') or ''} | {result['wall_s']:.2f} | {cpu:.2f} | "
            f"{result['peak_rss_mb']:.0f} | {metrics} | {targets} |"
        )
    notes = [
        f"- {r['case']['name']}: {r['case']['note']}" for r in document["results"] if r["case"].get("note")
    ]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _load(values) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else "?"


def compare(old_path: Path, new_path: Path) -> str:
    """A markdown table of the cases two result files share: wall time, peak RSS and metrics."""
    old, new = (json.loads(Path(p).read_text()) for p in (old_path, new_path))
    by_name = {r["case"]["name"]: r["result"] for r in old["results"]}
    lines = [
        f"# {old['suite']}: {old_path} vs {new_path}",
        "",
        f"- old: git {str(old['git'].get('revision'))[:10]}, {old['started']}, load {_load(old['machine'].get('loadavg'))}",
        f"- new: git {str(new['git'].get('revision'))[:10]}, {new['started']}, load {_load(new['machine'].get('loadavg'))}",
        "",
        "| case | measure | old | new | new/old |",
        "|---|---|---:|---:|---:|",
    ]
    for record in new["results"]:
        name, after = record["case"]["name"], record["result"]
        before = by_name.get(name)
        if before is None or before.get("status") != "ok" or after.get("status") != "ok":
            lines.append(f"| {name} | status | {before and before.get('status')} | {after.get('status')} | |")
            continue
        measures = ["wall_s", "peak_rss_mb"] + [
            m for m in after.get("metrics", {}) if m in before.get("metrics", {})
        ]
        for measure in measures:
            a, b = _value(before, measure), _value(after, measure)
            ratio = (
                f"{b / a:.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a else ""
            )
            lines.append(f"| {name} | {measure} | {_fmt(a)} | {_fmt(b)} | {ratio} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- command line


def _parser(prog: str, with_module: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Run a benchmark suite (each case in its own process)."
    )
    if with_module:
        parser.add_argument("module", help="the suite's module, e.g. perf.ehr_pipeline")
    parser.add_argument("--quick", action="store_true", help="the suite's small variant (smoke run)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these cases")
    parser.add_argument("--cpus", type=int, help="pin every case to this many CPUs (and POLARS_MAX_THREADS)")
    parser.add_argument("--label", help="suffix of the result files: <suite>-<label>.json/.md")
    parser.add_argument("--out", type=Path, default=RESULTS, help="result folder (default perf/results)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per case")
    return parser


def _run_module(module_name: str, args: argparse.Namespace) -> None:
    module = importlib.import_module(module_name)
    run_suite(
        module.SUITE,
        module.cases(quick=args.quick),
        only=args.only,
        cpus=args.cpus,
        label=args.label or ("quick" if args.quick else None),
        out=args.out,
        timeout=args.timeout,
    )


def main_for(module_name: str, argv: list[str] | None = None) -> None:
    """``python -m perf.<suite>``: the suite module's own entry point."""
    if module_name == "__main__":
        module_name = "perf." + Path(sys.argv[0]).stem
    _run_module(module_name, _parser(f"python -m {module_name}", with_module=False).parse_args(argv))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        _child(argv[1])
        return
    if argv[:1] == ["compare"]:
        parser = argparse.ArgumentParser(prog="python -m perf.harness compare")
        parser.add_argument("old", type=Path)
        parser.add_argument("new", type=Path)
        args = parser.parse_args(argv[1:])
        print(compare(args.old, args.new), end="")
        return
    if argv[:1] == ["run"]:
        args = _parser("python -m perf.harness run", with_module=True).parse_args(argv[1:])
        _run_module(args.module, args)
        return
    raise SystemExit("usage: python -m perf.harness run MODULE [...] | compare OLD.json NEW.json")


if __name__ == "__main__":
    main()
