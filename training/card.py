"""The model card of a training run: what data, which recipe, which graph, which versions.

``training_card.json`` is the machine-readable record; ``README.md`` is the Hugging Face model
card built from it. A stage whose base model is an earlier stage's output records that card's
hash and stage under ``base_model``, so the whole dapt -> sft -> grpo lineage is traceable.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from graphkit import __version__
from graphkit.atomic import atomic_write_text
from graphkit.hashing import config_hash
from training.config import Recipe

CARD_FILE = "training_card.json"


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _base_model(name: str) -> dict[str, Any]:
    card_path = Path(name) / CARD_FILE
    if not card_path.is_file():
        return {"name": name}
    parent = json.loads(card_path.read_text(encoding="utf-8"))
    return {
        "name": name,
        "card_hash": config_hash(parent),
        "stage": parent.get("stage") or parent.get("kind"),
        "recipe_hash": (parent.get("recipe") or {}).get("values_hash"),
        "graph_hashes": (parent.get("data") or {}).get("graph_hashes", []),
    }


def build_card(recipe: Recipe, result_summary: dict[str, Any]) -> dict[str, Any]:
    config = recipe.config
    data = result_summary["data"]
    return {
        "stage": recipe.stage,
        "base_model": _base_model(config.model_name_or_path),
        "recipe": {
            "path": str(recipe.path),
            "file_hash": recipe.file_hash,
            "values": recipe.values,
            "values_hash": recipe.values_hash,
        },
        "data": {
            "path": config.dataset_path,
            "files": data["files"],
            "data_hash": config_hash(data["files"]),
            "graph_hashes": data["graph_hashes"],
            "rows": data["rows"],
            "used": data["used"],
            "skipped_kind": data["skipped_kind"],
            "same_sample": data["same_sample"],
            "truncated": data["truncated"],
            "too_long": data["too_long"],
            "tasks": data["tasks"],
            "kinds": data["kinds"],
        },
        "seed": config.seed,
        "result": {key: result_summary[key] for key in ("global_step", "resumed_from", "metrics", "wall_seconds")},
        "versions": {
            "ehr_r1": __version__,
            **{name: _package_version(name) for name in ("torch", "transformers", "trl", "accelerate", "datasets")},
        },
    }


def _readme(card: dict[str, Any]) -> str:
    base = card["base_model"]["name"]
    tasks = ", ".join(f"{task} ({n})" for task, n in sorted(card["data"]["tasks"].items()))
    metrics = card["result"]["metrics"]
    lines = [
        "---",
        "library_name: transformers",
        f"base_model: {json.dumps(base)}",
        "tags: [ehr-r1, ehr, " + card["stage"] + "]",
        "---",
        "",
        f"# ehr-r1 {card['stage']} model",
        "",
        f"Trained by ehr-r1 {card['versions']['ehr_r1']} from `{base}` with recipe "
        f"`{card['recipe']['path']}` (values hash `{card['recipe']['values_hash']}`).",
        "",
        "| | |",
        "|---|---|",
        f"| data hash | `{card['data']['data_hash']}` |",
        f"| graph hash(es) | {', '.join(f'`{h}`' for h in card['data']['graph_hashes']) or 'none recorded'} |",
        f"| cases used | {card['data']['used']} of {card['data']['rows']} "
        f"({card['data']['truncated']} truncated on the left, {card['data']['too_long']} too long) |",
        f"| tasks | {tasks} |",
        f"| steps | {card['result']['global_step']} |",
        f"| train loss | {metrics.get('train_loss', float('nan')):.4f} |",
        f"| seed | {card['seed']} |",
        "",
        "Load it with `AutoModelForCausalLM.from_pretrained(path)` and `AutoTokenizer.from_pretrained(path)`;",
        "the full record is in `training_card.json`.",
        "",
    ]
    return "\n".join(lines)


def write_card(output_dir: Path, recipe: Recipe, result_summary: dict[str, Any]) -> Path:
    card = build_card(recipe, result_summary)
    atomic_write_text(output_dir / CARD_FILE, json.dumps(card, indent=2, default=str) + "\n")
    atomic_write_text(output_dir / "README.md", _readme(card))
    return output_dir / CARD_FILE
