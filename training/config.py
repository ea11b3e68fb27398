"""Training configurations (TRL's SFTConfig / GRPOConfig plus the fields ehr-r1 adds) and recipes.

A recipe is a flat YAML mapping of config fields (the same names TRL and transformers use),
stored as ``training/recipes/<model>/<stage>/config_<variant>.yaml``. ``load_recipe`` reads one,
applies ``key=value`` overrides, checks every key and value, derives the gradient accumulation
from ``global_batch_size`` and the number of processes, and returns a validated config. Every
problem is a one-line ``ConfigError`` naming the recipe file, the key, the value and the fix.

``{workspace}`` inside a path value expands to the workspace root, so the shipped recipes chain
stage outputs (``{workspace}/runs/<model>/dapt`` is the model of the sft stage, and so on).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from graphkit.errors import ConfigError
from graphkit.extras import available, require
from graphkit.hashing import config_hash, file_hash

STAGES = ("dapt", "sft", "grpo")
CASE_KINDS = ("reasoning", "direct")
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
# path-valued fields in which "{workspace}" expands to the workspace root
PATH_FIELDS = ("model_name_or_path", "dataset_path", "eval_dataset_path", "output_dir")


@dataclass
class CaseFields:
    """Fields ehr-r1 adds to every stage's TRL config (documented in each field's ``help``)."""

    stage: str = field(
        default="",
        metadata={"help": "Training stage this recipe is for: 'dapt' (domain adaptation on direct cases), "
                          "'sft' (reasoning SFT, thinking on and off mixed) or 'grpo'. Must match the command."},
    )
    model_name_or_path: str = field(
        default="",
        metadata={"help": "Base model: a local directory (e.g. the previous stage's output) or a model id "
                          "already in the local Hugging Face cache. Nothing is downloaded when HF_HUB_OFFLINE=1."},
    )
    dataset_path: str | None = field(
        default=None,
        metadata={"help": "EHR-Ins cases (docs/interfaces.md §6): a .jsonl/.json/.parquet file, or an "
                          "`ehr-r1 generate` output directory (its cases*.jsonl / cases*.parquet files; in another "
                          "directory every *.jsonl / *.parquet file except rejected*)."},
    )
    eval_dataset_path: str | None = field(
        default=None,
        metadata={"help": "Optional held-out cases in the same format, evaluated every eval_steps."},
    )
    case_kinds: list[str] = field(
        default_factory=lambda: list(CASE_KINDS),
        metadata={"help": "Which case kinds to train on: 'reasoning' (thinking on), 'direct' (empty think "
                          "block). dapt uses direct cases only; sft mixes both so thinking-off keeps working."},
    )
    max_samples: int | None = field(
        default=None,
        metadata={"help": "Use at most this many cases (after filtering by kind), in file order; for smoke runs."},
    )
    global_batch_size: int | None = field(
        default=None,
        metadata={"help": "Sequences (GRPO: completions) per optimizer step over all processes. When set, "
                          "gradient_accumulation_steps is derived as global_batch_size / (per_device_train_"
                          "batch_size x processes), so one recipe serves any number of GPUs."},
    )
    thinking_switch: bool = field(
        default=True,
        metadata={"help": "Append Qwen3's soft switch to the last user turn ('/think' for cases with "
                          "enable_thinking, '/no_think' otherwise), so one model learns both modes."},
    )
    resume: bool = field(
        default=True,
        metadata={"help": "Resume from the latest checkpoint-* in output_dir when there is one. With false, an "
                          "output_dir that already holds checkpoints is an error (nothing is overwritten)."},
    )


@dataclass
class GrpoFields:
    """Fields ehr-r1 adds to TRL's GRPOConfig."""

    max_prompt_length: int = field(
        default=10000,
        metadata={"help": "Token budget of the rendered prompt; longer records are cut from the left on event "
                          "boundaries (the latest events are kept)."},
    )
    rewards: list[str] = field(
        default_factory=lambda: ["set_f1", "accuracy"],
        metadata={"help": "Reward functions by name (training.rewards.REWARDS): 'set_f1' scores decision "
                          "tasks, 'accuracy' risk and next-event tasks; each returns None on the other tasks."},
    )
    prefer_vllm: bool = field(
        default=False,
        metadata={"help": "Generate with vLLM (vllm_mode) when the vllm package and a CUDA device are present, "
                          "otherwise in-process with transformers. use_vllm=true makes vLLM mandatory instead."},
    )


@cache
def config_classes() -> dict[str, type]:
    """Stage -> config class, imported lazily because TRL is an optional dependency."""
    require("trl", "train", "training")
    from training import trl_configs as classes

    return {"dapt": classes.EhrSFTConfig, "sft": classes.EhrSFTConfig, "grpo": classes.EhrGRPOConfig}


@dataclass(frozen=True)
class Recipe:
    """A loaded, validated recipe: where it came from, the values given, and the config built from them."""

    path: Path
    stage: str
    values: dict[str, Any]
    config: Any
    # False when built with hardware=False: then only a check, never something to train with
    trainable: bool = True

    @property
    def values_hash(self) -> str:
        return config_hash(self.values)

    @property
    def file_hash(self) -> str:
        return file_hash(self.path)


def shipped_recipes() -> list[Path]:
    return sorted(RECIPES_DIR.glob("*/*/config_*.yaml"))


def resolve_recipe_path(recipe: str | os.PathLike[str]) -> Path:
    """A recipe file, or a shipped recipe's name ``<model>/<stage>/<variant>``."""
    path = Path(recipe)
    if path.is_file():
        return path
    parts = str(recipe).strip("/").split("/")
    if len(parts) == 3:
        named = RECIPES_DIR / parts[0] / parts[1] / f"config_{parts[2]}.yaml"
        if named.is_file():
            return named
    names = ", ".join(recipe_name(p) for p in shipped_recipes())
    raise ConfigError("no such recipe file or shipped recipe", where="option --recipe", value=str(recipe),
                      fix=f"give a YAML file or one of: {names}")


def recipe_name(path: Path) -> str:
    """``<model>/<stage>/<variant>`` of a shipped recipe file."""
    return f"{path.parent.parent.name}/{path.parent.name}/{path.stem.removeprefix('config_')}"


@cache
def _field_types(cls: type) -> dict[str, tuple[Any, Any]]:
    """Field name -> (type hint, pydantic TypeAdapter) for value checks and coercion."""
    from pydantic import TypeAdapter

    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], TypeAdapter(hints[f.name])) for f in dataclasses.fields(cls) if f.init}


def _check_value(cls: type, key: str, value: Any, where: str) -> Any:
    from pydantic import ValidationError

    hint, adapter = _field_types(cls)[key]
    try:
        return adapter.validate_python(value)
    except ValidationError:
        type_name = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
        raise ConfigError(f"expected a value of type {type_name}", where=where, value=value,
                          fix=f"write {key} as a {type_name}") from None


def _unknown_key(cls: type, key: str, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(_field_types(cls)), n=1)
    fix = f"did you mean '{close[0]}'?" if close else "remove it; recipe keys are the TRL config fields plus the ones listed by `ehr-r1 train recipes --fields`"
    return ConfigError("unknown recipe key", where=where, value=key, fix=fix)


def _expand(value: Any, workspace: Path | None) -> Any:
    if isinstance(value, str) and "{workspace}" in value:
        if workspace is None:
            raise ConfigError("uses {workspace} but no workspace was given", where="recipe path value", value=value,
                              fix="pass --workspace or give an explicit path")
        return value.replace("{workspace}", str(workspace))
    return value


def _cuda() -> bool:
    return require("torch", "train", "training").cuda.is_available()


def _vllm_usable() -> bool:
    return available("vllm") and _cuda()


def world_size() -> int:
    """Processes of this run, as exported by accelerate / torchrun (1 outside a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def load_recipe(recipe: str | os.PathLike[str], stage: str, overrides: dict[str, Any] | None = None,
                workspace: Path | None = None, hardware: bool = True) -> Recipe:
    """Read, override, type-check and cross-check a recipe; return it with its built config.

    With ``hardware=False`` the recipe is checked as if on a machine it was written for: a GPU
    recipe validates on a CPU-only machine (its config is then built in CPU mode, not for training).
    """
    if stage not in STAGES:
        raise ConfigError("unknown training stage", where="stage", value=stage, fix=f"use one of {', '.join(STAGES)}")
    path = resolve_recipe_path(recipe)
    cls = config_classes()[stage]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError("not valid YAML", where=f"{path}{line}", fix="fix the YAML syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError("a recipe must be a mapping of config keys to values", where=str(path),
                          value=type(raw).__name__, fix="write one `key: value` per line")

    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{path}: {key}"
        if key not in _field_types(cls):
            raise _unknown_key(cls, str(key), where)
        values[key] = _check_value(cls, key, value, where)
    for key, value in (overrides or {}).items():
        where = f"override {key}={value}"
        if key not in _field_types(cls):
            raise _unknown_key(cls, key, where)
        values[key] = _check_value(cls, key, value, where)
    for key in PATH_FIELDS:
        if key in values:
            values[key] = _expand(values[key], workspace)

    _cross_check(path, stage, values, overridden=set(overrides or {}))
    build = dict(values)
    swapped = False
    if not build.get("use_cpu") and not _cuda():
        if hardware:
            raise ConfigError("this recipe is for CUDA GPUs and none is visible", where=f"{path}: use_cpu",
                              value=build.get("use_cpu", False),
                              fix="run it on a GPU machine, or use a tiny recipe (tiny/<stage>/cpu), "
                                  "or pass use_cpu=true bf16=false")
        build.update(use_cpu=True, bf16=False, fp16=False)
        swapped = True
    if stage == "grpo" and values.get("prefer_vllm"):
        build["use_vllm"] = _vllm_usable()
    if values.get("global_batch_size"):
        build["gradient_accumulation_steps"] = _accumulation(path, values, cls)
    try:
        config = cls(**build)
    except (ValueError, TypeError) as exc:
        # TRL / transformers' own cross-field checks (their messages name the fields involved)
        raise ConfigError(" ".join(str(exc).split()), where=str(path),
                          fix="change the recipe or the override named in the message") from None
    return Recipe(path=path, stage=stage, values=values, config=config, trainable=not swapped)


def _default(cls: type, key: str) -> Any:
    for f in dataclasses.fields(cls):
        if f.name == key:
            return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    raise KeyError(key)


def _cross_check(path: Path, stage: str, values: dict[str, Any], overridden: set[str]) -> None:
    cls = config_classes()[stage]

    def get(key: str) -> Any:
        return values[key] if key in values else _default(cls, key)

    def fail(key: str, problem: str, fix: str) -> ConfigError:
        where = f"override {key}" if key in overridden else f"{path}: {key}"
        return ConfigError(problem, where=where, value=get(key), fix=fix)

    if get("stage") != stage:
        raise fail("stage", f"this recipe is not for the {stage} stage",
                   f"run `ehr-r1 train {get('stage')}` with it, or use a recipe under recipes/<model>/{stage}/"
                   if get("stage") in STAGES else f"set stage: {stage}")
    if not get("model_name_or_path"):
        raise fail("model_name_or_path", "no base model given", "set it in the recipe or pass model_name_or_path=DIR")
    kinds = get("case_kinds")
    if not kinds or set(kinds) - set(CASE_KINDS):
        raise fail("case_kinds", "must be a non-empty subset of reasoning, direct", "e.g. case_kinds: [direct]")
    if get("max_samples") is not None and get("max_samples") < 1:
        raise fail("max_samples", "must be at least 1", "remove it to use every case")
    if get("eval_dataset_path") and get("eval_strategy") == "no":
        raise fail("eval_strategy", "eval_dataset_path is set but evaluation is off",
                   "set eval_strategy: steps and eval_steps: N, or drop eval_dataset_path")
    if get("per_device_train_batch_size") < 1:
        raise fail("per_device_train_batch_size", "must be at least 1", "use 1 or more")
    if "global_batch_size" in values and values["global_batch_size"] is not None:
        if "gradient_accumulation_steps" in values:
            raise fail("gradient_accumulation_steps", "conflicts with global_batch_size, from which it is derived",
                       "remove one of the two keys")
        if values["global_batch_size"] < 1:
            raise fail("global_batch_size", "must be at least 1", "use a positive number of sequences per step")
    if stage in ("dapt", "sft"):
        if not get("max_length") or get("max_length") < 16:
            raise fail("max_length", "the record is truncated to max_length tokens, so it must be set",
                       "use the model's training length, e.g. 8192")
        if get("assistant_only_loss") and get("completion_only_loss"):
            raise fail("completion_only_loss", "cases are conversational; completion_only_loss does not apply",
                       "use assistant_only_loss: true for loss on the assistant turn only")
        if get("packing") and get("packing_strategy") != "wrapped" and get("use_cpu"):
            raise fail("packing_strategy", "bfd packing is padding-free, which needs flash attention on a GPU",
                       "use packing_strategy: wrapped on CPU")
    if stage == "grpo":
        from training.rewards import REWARDS

        unknown = [name for name in get("rewards") if name not in REWARDS]
        if unknown or not get("rewards"):
            raise fail("rewards", f"unknown reward {unknown[0]!r}" if unknown else "no reward function",
                       f"use names from: {', '.join(REWARDS)}")
        weights = get("reward_weights")
        if weights is not None and len(weights) != len(get("rewards")):
            raise fail("reward_weights", f"has {len(weights)} weights for {len(get('rewards'))} rewards",
                       "give one weight per entry of rewards")
        if get("max_prompt_length") < 16:
            raise fail("max_prompt_length", "is too small to hold a prompt", "use the model's prompt budget, e.g. 10000")
        if get("max_completion_length") is None or get("max_completion_length") < 1:
            raise fail("max_completion_length", "must be set", "e.g. max_completion_length: 2048")
        cap = get("vllm_max_model_length")
        if cap is not None and get("max_prompt_length") + get("max_completion_length") > cap:
            raise fail("vllm_max_model_length", "is shorter than max_prompt_length + max_completion_length",
                       f"raise it to at least {get('max_prompt_length') + get('max_completion_length')}")
        if get("use_vllm") and get("prefer_vllm"):
            raise fail("prefer_vllm", "use_vllm already makes vLLM mandatory", "set only one of use_vllm, prefer_vllm")
    if get("bf16") and get("fp16"):
        raise fail("fp16", "bf16 and fp16 are both on", "keep one (bf16 on H100/A100)")


def _accumulation(path: Path, values: dict[str, Any], cls: type) -> int:
    per_device = values.get("per_device_train_batch_size", _default(cls, "per_device_train_batch_size"))
    processes = world_size()
    per_step = per_device * processes
    total = values["global_batch_size"]
    if total % per_step:
        raise ConfigError(
            f"must be a multiple of per_device_train_batch_size x processes ({per_device} x {processes} = {per_step})",
            where=f"{path}: global_batch_size", value=total,
            fix=f"use a multiple of {per_step}, or change per_device_train_batch_size",
        )
    if values.get("stage") == "grpo":
        generations = values.get("num_generations", _default(cls, "num_generations"))
        if total % generations:
            raise ConfigError(f"must be a multiple of num_generations ({generations}): every prompt's group of "
                              "completions falls in one step", where=f"{path}: global_batch_size", value=total,
                              fix=f"use a multiple of {generations}")
    return total // per_step
