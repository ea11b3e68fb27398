"""The dataset card of a bench build: ``card.json`` (machine-readable) and ``README.md``.

The README's YAML header lists one ``datasets`` config per task (its label column has the task's
type: a list of items, "yes"/"no", or an event table), so ``datasets.load_dataset(DIR, "labevents")``
gives that task's train/val/test splits.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl

from graphkit import __version__
from graphkit.atomic import atomic_write_text

CARD_JSON = "card.json"
README = "README.md"


def task_summary(task, rows: pl.DataFrame) -> dict:
    """Counts per split and what the labels look like (prevalence, gold set sizes, classes)."""
    summary: dict = {
        "family": task.family,
        "output_type": task.output_type,
        "metric": task.metric,
        "version": task.version,
        "counts": {},
        "subjects": {},
        "truncated": {},
        "mean_tokens": {},
    }
    for (split,), part in rows.group_by("split", maintain_order=True):
        summary["counts"][split] = part.height
        summary["subjects"][split] = part["subject_id"].n_unique()
        summary["truncated"][split] = int(part["truncated"].sum())
        summary["mean_tokens"][split] = round(float(part["n_tokens"].mean()), 1)
        if task.output_type == "binary":
            summary.setdefault("label_prevalence", {})[split] = round(
                float((part["label"] == "yes").mean()), 4
            )
        elif task.output_type == "set":
            sizes = part["label"].list.len()
            summary.setdefault("gold_items", {})[split] = {
                "mean": round(float(sizes.mean()), 2),
                "max": int(sizes.max()),
                "distinct": part["label"].explode().n_unique(),
            }
        else:
            counts = Counter(part["label"].to_list())
            summary.setdefault("classes", {})[split] = dict(counts.most_common())
    return summary


def card_dict(plan, markers: list[dict], summaries: dict[str, dict]) -> dict:
    config = plan.config
    tasks = {}
    for key, summary in summaries.items():
        skipped: Counter = Counter()
        eligible: Counter = Counter()
        eligible_labels: dict[str, Counter] = {}
        anchors = 0
        for marker in markers:
            stats = marker["tasks"].get(key, {})
            anchors += stats.get("anchors", 0)
            skipped.update(stats.get("skipped", {}))
            eligible.update(stats.get("eligible", {}))
            for split, labels in stats.get("eligible_labels", {}).items():
                eligible_labels.setdefault(split, Counter()).update(labels)
        not_selected = {s: n - summary["counts"].get(s, 0) for s, n in sorted(eligible.items())}
        entry = {
            **{k: v for k, v in summary.items() if k != "files"},
            "anchors": anchors,
            "eligible": dict(sorted(eligible.items())),
            "skipped": {r: n for r, n in sorted(skipped.items()) if n},
            "not_selected": {s: n for s, n in not_selected.items() if n},
            "files": {s: f["path"] for s, f in summary["files"].items()},
        }
        if eligible_labels:
            entry["eligible_label_prevalence"] = {
                s: round(c.get("yes", 0) / max(sum(c.values()), 1), 4)
                for s, c in sorted(eligible_labels.items())
            }
        tasks[key] = entry
    undated: Counter = Counter()
    for marker in markers:
        undated.update(marker.get("undated", {}))
    totals: Counter = Counter()
    for entry in tasks.values():
        totals.update(entry["counts"])
    return {
        "name": "EHR-Bench / EHR-Ins samples",
        "created_by": "ehr-r1 bench build",
        "package_version": __version__,
        "config_hash": plan.config_hash,
        "config": config.as_dict(),
        "seed": config.seed,
        "source": {
            "path": plan.source_path,
            "kind": plan.source_kind,
            "fingerprint": plan.fingerprint,
            "modules": plan.modules,
        },
        "splits": {
            "ratios": dict(zip(("train", "val", "test"), config.split_ratios, strict=True)),
            "rule": "SHA-256 of 'ehr-r1/split/<subject_id>' (bench.splits); EHR-Bench = test, EHR-Ins = train",
        },
        "task_versions": plan.task_versions,
        "tasks": tasks,
        "skipped_tasks": plan.skipped_tasks,
        "totals": {"samples": sum(totals.values()), **dict(sorted(totals.items()))},
        "units": len(markers),
        "subjects": sum(m["subjects"] for m in markers),
        "events": sum(m["events"] for m in markers),
        "undated_rows": dict(sorted(undated.items())),
        "unit_seconds": round(sum(m["seconds"] for m in markers), 2),
    }


def card_markdown(card: dict) -> str:
    configs = []
    for key, entry in card["tasks"].items():
        configs.append(f"- config_name: {key}\n  data_files:")
        for split, path in entry["files"].items():
            configs.append(f"  - split: {split}\n    path: {path}")
    lines = [
        "---",
        "configs:",
        *configs,
        "---",
        "",
        f"# {card['name']}",
        "",
        f"Built by `ehr-r1 bench build` (ehr-r1 {card['package_version']}), config hash `{card['config_hash']}`, "
        f"seed {card['seed']}, record style `{card['config']['style']}`, "
        f"token budget {card['config']['max_tokens']}.",
        "",
        f"Source: `{card['source']['path']}` ({card['source']['kind']}, modules {', '.join(card['source']['modules'])}, "
        f"fingerprint `{card['source']['fingerprint']}`): {card['subjects']} subjects, {card['events']} events, "
        f"{card['units']} unit(s).",
        "",
        f"Splits by patient ({card['splits']['rule']}): "
        + ", ".join(f"{k} {v:g}" for k, v in card["splits"]["ratios"].items())
        + ". EHR-Bench is the test split; EHR-Ins inputs are the train split.",
        "",
        'Load one task: `datasets.load_dataset("<this folder>", "<task>")`.',
        "",
        "| task | v | family | train | val | test | labels (test) | skipped (reasons) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, entry in card["tasks"].items():
        counts = entry["counts"]
        if "label_prevalence" in entry:
            labels = (
                f"yes {entry['label_prevalence'].get('test', 0):.1%}"
                if "test" in entry["label_prevalence"]
                else ""
            )
        elif "gold_items" in entry and "test" in entry["gold_items"]:
            gold = entry["gold_items"]["test"]
            labels = f"{gold['mean']} items, {gold['distinct']} distinct"
        else:
            labels = (
                f"{len(entry.get('classes', {}).get('test', {}))} classes" if entry.get("classes") else ""
            )
        skipped = "; ".join(f"{r}: {n}" for r, n in entry["skipped"].items())
        lines.append(
            f"| {key} | {entry['version']} | {entry['family']} | {counts.get('train', 0)} | {counts.get('val', 0)} "
            f"| {counts.get('test', 0)} | {labels} | {skipped} |"
        )
    if card["skipped_tasks"]:
        lines += ["", "Tasks not built:", ""]
        lines += [f"- `{key}`: {reason}" for key, reason in card["skipped_tasks"].items()]
    if card["undated_rows"]:
        lines += [
            "",
            "Rows left out of the timelines for lack of a usable time: "
            + ", ".join(f"{t} {n}" for t, n in card["undated_rows"].items())
            + ".",
        ]
    lines += ["", "Every number above is also in `card.json`.", ""]
    return "\n".join(lines)


def write_card(out: Path, card: dict) -> None:
    """README.md first, card.json last: card.json marks a finished build."""
    atomic_write_text(out / README, card_markdown(card))
    atomic_write_text(out / CARD_JSON, json.dumps(card, indent=2, sort_keys=False) + "\n")
