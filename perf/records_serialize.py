"""Benchmark: serialize every admission of a cohort at an 8k-token budget, per shard, both styles.

    python -m perf.records_serialize [--source DIR] [--patients 1000] [--shards 4] [--max-tokens 8192]

Without ``--source`` it synthesizes a cohort (`ehr-r1 ehr synth`, parquet) and converts it into
``--shards`` shards under ``--work`` (kept for re-runs). Each case runs in its own process (peak RSS
is per case):

- ``all-admissions/<style>``: ``iter_timelines`` + ``Serializer.serialize_many`` over every
  admission (whole admission, newest events kept to fit the budget); records/s counts the
  timeline build too.
- ``lab-24h/<style>``: bench-like windows, the 24 h before every lab event of an admission
  (target excluded), at the same budget.
- ``python-dicts/ehr-r1`` (peer): the reference's way, each admission's events as Python dicts
  formatted one by one with f-strings (the same ehr-r1 text for one-row events), newest first
  until the budget; timeline build excluded, so it flatters the peer.

Writes perf/results/records_serialize.json and .md (machine, load, git revision).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = ("all-admissions/clean", "all-admissions/ehr-r1", "lab-24h/clean", "lab-24h/ehr-r1", "python-dicts/ehr-r1")


def prepare(args) -> Path:
    if args.source:
        return Path(args.source)
    from graphkit.ehr.convert import convert
    from graphkit.ehr.synth import synthesize

    raw = args.work / f"synth-{args.patients}"
    converted = args.work / f"synth-{args.patients}-{args.shards}shards"
    if not raw.exists():
        synthesize(raw, args.patients, seed=0, fmt="parquet")
    if not (converted / "manifest.json").exists():
        convert(raw, converted, n_shards=args.shards)
    return converted


def run_case(case: str, source_path: Path, max_tokens: int) -> dict:
    import polars as pl

    from graphkit.ehr.serialize import Serializer
    from graphkit.ehr.source import open_source
    from graphkit.ehr.timeline import iter_timelines, load_lookups

    kind, style = case.split("/")
    source = open_source(source_path)
    started = time.perf_counter()
    lookups = load_lookups(source)
    timeline_s = serialize_s = 0.0
    records = tokens = events = 0
    definition = "ehr-r1" if kind == "python-dicts" else style
    timelines = iter_timelines(source, definition=definition, lookups=lookups)
    while True:
        t0 = time.perf_counter()
        timeline = next(timelines, None)
        timeline_s += time.perf_counter() - t0
        if timeline is None:
            break
        events += timeline.events.height
        t0 = time.perf_counter()
        if kind == "python-dicts":
            n, t = _python_dicts(timeline, max_tokens)
            records += n
            tokens += t
        else:
            if kind == "all-admissions":
                windows = timeline.admissions.select("subject_id", "hadm_id")
            else:
                labs = timeline.events.filter((pl.col("table") == "labevents") & pl.col("hadm_id").is_not_null())
                windows = labs.select("subject_id", "hadm_id", (pl.col("time") - pl.duration(hours=24)).alias("start"),
                                      pl.col("time").alias("end"))
            out = Serializer(timeline, style=style).serialize_many(windows, max_tokens=max_tokens)
            records += out.height
            tokens += int(out["n_tokens"].sum())
        serialize_s += time.perf_counter() - t0
    total_s = time.perf_counter() - started
    return {
        "case": case,
        "records": records,
        "events": events,
        "mean_tokens": round(tokens / max(records, 1)),
        "timeline_s": round(timeline_s, 2),
        "serialize_s": round(serialize_s, 2),
        "total_s": round(total_s, 2),
        "records_per_s": round(records / total_s, 1),
        "records_per_s_serialize_only": round(records / max(serialize_s, 1e-9), 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def _python_dicts(timeline, max_tokens: int) -> tuple[int, int]:
    """The peer: events as lists of row dicts per admission, printed one by one in Python."""
    import polars as pl

    from graphkit.ehr.events import EVENT_TABLES
    from graphkit.ehr.tokens import ApproxCounter

    counter = ApproxCounter()
    rows_by_event: dict[int, list[dict]] = {}
    for rows in timeline.rows.values():
        for row in rows.sort("event_id", "pos").to_dicts():
            rows_by_event.setdefault(row["event_id"], []).append(row)
    by_admission = timeline.events.filter(pl.col("hadm_id").is_not_null()).partition_by("hadm_id", as_dict=True)
    records = tokens = 0
    for events in by_admission.values():
        blocks, used = [], 0
        for event in reversed(events.to_dicts()):
            spec = EVENT_TABLES[str(event["table"])]
            rows = rows_by_event.get(event["event_id"], [])
            keys = [f.label.title() for f in spec.ehr_r1]
            title = f"## {spec.ehr_r1_name} [{event['time']:%Y-%m-%d %H:%M:%S}]"
            if len(rows) == 1:
                body = "\n".join(f"- {k}: {rows[0].get(f.column, 'nan')}" for k, f in zip(keys, spec.ehr_r1, strict=True))
            else:
                body = "\n".join(["| " + " | ".join(keys) + " |", "| " + " | ".join(["------"] * len(keys)) + " |"]
                                 + ["| " + " | ".join(str(r.get(f.column, "nan")) for f in spec.ehr_r1) + " |"
                                    for r in rows])
            block = f"{title}\n{body}"
            n = counter.count([block])[0]
            if used + n > max_tokens:
                break
            blocks.append(block)
            used += n
        text = "\n\n".join(reversed(blocks))
        records += 1
        tokens += used if text else 0
    return records, tokens


def markdown(result: dict) -> str:
    lines = [
        "# Record serialization",
        "",
        f"`python -m perf.records_serialize` on {result['source']} ({result['patients']} patients, "
        f"{result['shards']} shards), budget {result['max_tokens']} tokens; git {result['git']}; "
        f"{result['machine']['cpus']} CPUs, load before the run {result['machine']['load_1min']} "
        "(a shared machine: other developers' jobs run at the same time, timings are noisy). "
        "Target (issue 3): >= 300 records/s at an 8k-token budget on 2 cores.",
        "",
        "| case | records | mean tokens | timeline s | serialize s | total s | records/s | records/s (serialize only) | peak RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["cases"]:
        lines.append(f"| {r['case']} | {r['records']:,} | {r['mean_tokens']} | {r['timeline_s']} | {r['serialize_s']} | "
                     f"{r['total_s']} | {r['records_per_s']} | {r['records_per_s_serialize_only']} | {r['peak_rss_gib']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", help="a MIMIC-IV folder or ehr convert output (default: synthesize one)")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=8192)
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("EHR_R1_WORKSPACE", "ehr-r1-work")) / "perf")
    parser.add_argument("--out", type=Path, default=REPO / "perf" / "results")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # a worker process
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, Path(args.source), args.max_tokens)))
        return {}
    source = prepare(args)
    load = float(open("/proc/loadavg").read().split()[0])
    cases = []
    for case in CASES:
        done = subprocess.run([sys.executable, "-m", "perf.records_serialize", "--case", case, "--source", str(source),
                               "--max-tokens", str(args.max_tokens)], cwd=REPO, capture_output=True, text=True,
                              check=True)
        cases.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(cases[-1], flush=True)
    result = {
        "benchmark": "records_serialize",
        "source": "synthetic cohort" if not args.source else str(args.source),
        "patients": args.patients if not args.source else None,
        "shards": args.shards if not args.source else None,
        "max_tokens": args.max_tokens,
        "cases": cases,
        "machine": {"cpus": os.cpu_count(), "load_1min": load, "python": platform.python_version(),
                    "platform": platform.platform()},
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True).stdout.strip(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "records_serialize.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "records_serialize.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
