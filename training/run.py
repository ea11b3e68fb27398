"""Run one training stage (dapt, sft or grpo) from a loaded recipe.

The output directory holds TRL/transformers checkpoints (``checkpoint-*``, resumed automatically),
``metrics.jsonl`` (one line per logging step, rewritten consistently on resume), the final model
and tokenizer (loadable with plain ``AutoModelForCausalLM`` / ``AutoTokenizer``), and a model card
(``README.md`` + ``training_card.json``) with the data, recipe and graph hashes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from graphkit.errors import ConfigError, ExtraMissingError
from graphkit.extras import available, require
from graphkit.progress import NULL_PROGRESS, Progress
from training.card import write_card
from training.config import Recipe
from training.data import CaseStats, grpo_dataset, sft_dataset

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class TrainResult:
    stage: str
    output_dir: Path
    global_step: int
    resumed_from: str | None
    metrics: dict[str, float]
    data: CaseStats

    @property
    def metrics_path(self) -> Path:
        return self.output_dir / METRICS_FILE


def _callbacks(path: Path, progress: Progress, stage: str):
    transformers = require("transformers", "train", "training")

    class JsonlMetrics(transformers.TrainerCallback):
        """Every log line as JSON; on resume, lines past the checkpoint's step are dropped first."""

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero and path.exists():
                kept = [line for line in path.read_text().splitlines()
                        if line.strip() and json.loads(line).get("step", 0) <= state.global_step]
                path.write_text("".join(line + "\n" for line in kept))

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                record = {"step": state.global_step, "epoch": state.epoch, "time": round(time.time(), 3), **logs}
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record, default=float) + "\n")

    class ReportProgress(transformers.TrainerCallback):
        handle: int | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.handle = progress.start(f"train {stage}", total=state.max_steps)
                if state.global_step:
                    progress.advance(self.handle, state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if self.handle is not None:
                progress.advance(self.handle)

        def on_train_end(self, args, state, control, **kwargs):
            if self.handle is not None:
                progress.finish(self.handle)

    return [JsonlMetrics(), ReportProgress()]


def _check_environment(recipe: Recipe) -> None:
    config = recipe.config
    for integration, module in (("tensorboard", "tensorboard"), ("wandb", "wandb")):
        if integration in (config.report_to or []) and not available(module):
            raise ExtraMissingError(f"report_to includes {integration}, which is not installed",
                                    where=f"{recipe.path}: report_to", fix=f"pip install {module}, or report_to=none")
    if "wandb" in (config.report_to or []):
        # records stay on this machine unless the user opts in by setting WANDB_MODE=online
        os.environ.setdefault("WANDB_MODE", "offline")
    if getattr(config, "use_vllm", False):
        require("vllm", "vllm", "use_vllm")


def _resume_point(recipe: Recipe) -> str | None:
    config = recipe.config
    trainer_utils = require("transformers.trainer_utils", "train", "training")
    if config.resume_from_checkpoint:
        if not Path(config.resume_from_checkpoint).is_dir():
            raise ConfigError("checkpoint directory not found", where=f"{recipe.path}: resume_from_checkpoint",
                              value=config.resume_from_checkpoint, fix="give an existing checkpoint-* directory")
        return config.resume_from_checkpoint
    output_dir = Path(config.output_dir)
    last = trainer_utils.get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if last and not config.resume:
        raise ConfigError("output_dir already holds checkpoints and resume is off", where=f"{recipe.path}: output_dir",
                          value=str(output_dir), fix="pass resume=true to continue, or choose another output_dir")
    return last


def _tokenizer(recipe: Recipe):
    transformers = require("transformers", "train", "training")
    name = recipe.config.model_name_or_path
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load a tokenizer from it ({type(exc).__name__})",
                          where=f"{recipe.path}: model_name_or_path", value=name,
                          fix="give a local model directory (e.g. `ehr-r1 train tiny-model DIR` or the previous "
                              "stage's output), or a model already in the Hugging Face cache") from None
    if not tokenizer.chat_template:
        raise ConfigError("the tokenizer has no chat template", where=f"{recipe.path}: model_name_or_path", value=name,
                          fix="use a chat model such as Qwen3 (its template switches thinking on and off)")
    return tokenizer


def _training_template(recipe: Recipe, tokenizer) -> str | None:
    """The chat template TRL trains with when the loss is on the assistant turn only."""
    if not recipe.config.assistant_only_loss:
        return None
    templates = require("trl.chat_template_utils", "train", "training")
    try:
        return templates.get_training_chat_template(tokenizer)
    except ValueError:
        raise ConfigError("assistant_only_loss needs a chat template with generation markers, and this model's "
                          "template is not one TRL can patch", where=f"{recipe.path}: assistant_only_loss", value=True,
                          fix="use a Qwen3 model, or assistant_only_loss=false") from None


def _datasets(recipe: Recipe, tokenizer):
    config = recipe.config
    if not config.dataset_path:
        raise ConfigError("no training cases given", where=f"{recipe.path}: dataset_path", value=None,
                          fix="pass dataset_path=PATH (an `ehr-r1 generate` output)")
    paths = [config.dataset_path] + ([config.eval_dataset_path] if config.eval_dataset_path else [])
    built = []
    for index, path in enumerate(paths):
        common = dict(kinds=config.case_kinds, thinking_switch=config.thinking_switch,
                      max_samples=config.max_samples if index == 0 else None)
        if recipe.stage == "grpo":
            built.append(grpo_dataset(path, tokenizer, max_prompt_length=config.max_prompt_length, **common))
        else:
            built.append(sft_dataset(path, tokenizer, max_length=config.max_length,
                                     chat_template=_training_template(recipe, tokenizer), **common))
    train, stats = built[0]
    return train, (built[1][0] if len(built) > 1 else None), stats


def _trainer(recipe: Recipe, tokenizer, train_dataset, eval_dataset, callbacks):
    trl = require("trl", "train", "training")
    config = recipe.config
    if recipe.stage == "grpo":
        from training.rewards import REWARDS

        return trl.GRPOTrainer(
            model=config.model_name_or_path,
            reward_funcs=[REWARDS[name] for name in config.rewards],
            args=config,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            callbacks=callbacks,
        )
    return trl.SFTTrainer(
        model=config.model_name_or_path,
        args=config,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
    )


def train(recipe: Recipe, progress: Progress | None = None, callbacks: list | None = None) -> TrainResult:
    """Train ``recipe.stage``; resume from the latest checkpoint when there is one.

    ``callbacks`` are extra transformers ``TrainerCallback``s (e.g. a profiler), added to ehr-r1's.
    """
    config = recipe.config
    if not recipe.trainable:
        raise ConfigError("this recipe was loaded for checking only (hardware=False)", where=str(recipe.path),
                          fix="load it with hardware=True on the machine that trains")
    _check_environment(recipe)
    resume = _resume_point(recipe)
    tokenizer = _tokenizer(recipe)
    train_dataset, eval_dataset, stats = _datasets(recipe, tokenizer)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        config.disable_tqdm = True
    callbacks = _callbacks(output_dir / METRICS_FILE, progress or NULL_PROGRESS, recipe.stage) + list(callbacks or [])

    log.info("%s: %d cases (%d truncated, %d too long) from %s; resume from %s",
             recipe.stage, stats.used, stats.truncated, stats.too_long, config.dataset_path, resume or "scratch")
    trainer = _trainer(recipe, tokenizer, train_dataset, eval_dataset, callbacks)
    started = time.time()
    outcome = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(output_dir))
    metrics = {key: float(value) for key, value in outcome.metrics.items() if isinstance(value, int | float)}
    result = TrainResult(recipe.stage, output_dir, trainer.state.global_step, resume, metrics, stats)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(output_dir))
        write_card(output_dir, recipe, result_summary={
            "global_step": result.global_step,
            "resumed_from": resume,
            "metrics": metrics,
            "wall_seconds": round(time.time() - started, 3),
            "data": asdict(stats),
        })
    return result
