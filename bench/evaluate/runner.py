"""``ehr-r1 bench eval``: run a model on EHR-Bench samples, one journal line per sample, then score.

The run folder (bench.evaluate.results) is resumable per sample: a sample is done when its line is
in ``predictions.jsonl`` (graphkit.journal: one write per line, a torn last line is cut off on
resume), so a killed run loses at most the samples in flight and never duplicates one. Samples
recorded as failed are asked again on resume. A resumed run must have the same identity (model,
configuration, data) as the one that started the folder; ``overwrite=True`` starts afresh.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.evaluate.backends.base import GENERATE, YES_NO, Backend, Generation, Outcome, Request
from bench.evaluate.data import EvalData, gold_of, iter_rows, load_eval_data
from bench.evaluate.prompts import SYSTEM_PROMPT, messages
from bench.evaluate.results import FORMAT, FORMAT_VERSION, PREDICTIONS, RESULTS_JSON, RUN_JSON, write_json
from bench.evaluate.scoring import score_probability, score_text, summary, task_metrics
from bench.evaluate.spec import ModelSpec
from graphkit import __version__
from graphkit.errors import ConfigError, InputError
from graphkit.hashing import config_hash
from graphkit.journal import Journal
from graphkit.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

ROW_COLUMNS = ("id", "input", "instruction", "label", "candidates")


@dataclass(frozen=True)
class EvalConfig:
    """Everything that decides a run's scores (hashed into its config hash)."""

    split: str = "test"
    tasks: tuple[str, ...] | None = None
    limit: int | None = None  # samples per task (the first by id)
    candidates: bool = False  # candidate-list prompts, for untrained models
    direct: bool = False  # decision tasks answer without thinking (the reference's --direct_answer)
    max_new_tokens: int = 4096
    temperature: float = 0.0
    seed: int = 0
    n_resamples: int = 1000
    system_prompt: str = SYSTEM_PROMPT
    thinking_switch: bool = True  # append /think or /no_think to the user turn, as training does

    def __post_init__(self) -> None:
        for name, value, low in (("--max-new-tokens", self.max_new_tokens, 1), ("--bootstrap", self.n_resamples, 1)):
            if value < low:
                raise ConfigError(f"must be at least {low}", where=f"option {name}", value=value, fix="give a positive number")
        if self.temperature < 0:
            raise ConfigError("must not be negative", where="option --temperature", value=self.temperature,
                              fix="use 0 for greedy decoding")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tasks"] = list(self.tasks) if self.tasks is not None else None
        return data

    def generation(self) -> Generation:
        return Generation(max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed)


@dataclass
class EvalRun:
    out: Path
    results: dict[str, Any]
    asked: int  # samples sent to the model by this call
    resumed: int  # samples already done in the folder
    failed: int  # samples recorded as failed (whole run)


def make_backend(spec: ModelSpec, config: EvalConfig, *, allow_remote: bool = False,
                 concurrency: int | None = None) -> Backend:
    """The backend of a SPEC (nothing heavy happens before its first request)."""
    if concurrency is not None and concurrency < 1:
        raise ConfigError("must be at least 1", where="option --concurrency", value=concurrency,
                          fix="e.g. 32 for an endpoint, 8 for a local model")
    generation = config.generation()
    if spec.kind == "openai":
        from bench.evaluate.backends.openai_compat import OpenAIBackend

        return OpenAIBackend(spec, generation, allow_remote=allow_remote, concurrency=concurrency or 32)
    if spec.kind == "vllm":
        from bench.evaluate.backends.vllm_engine import VLLMBackend

        return VLLMBackend(spec, generation, batch_size=concurrency or 256)
    from bench.evaluate.backends.local import TransformersBackend

    return TransformersBackend(spec, generation, batch_size=concurrency or 8)


def run_header(kind: str, name: str, model: dict[str, Any], config: dict[str, Any], data: EvalData,
               seed: int) -> dict[str, Any]:
    """The identity fields every result file starts with (model runs and baselines)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "name": name,
        "model": model,
        "config": config,
        "config_hash": config_hash(config),
        "data": data.describe(),
        "task_versions": data.task_versions(),
        "definition_versions": {key: t.task.version for key, t in data.tasks.items()},
        "seed": seed,
        "package_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def run_identity(model: dict[str, Any], config: EvalConfig, data: EvalData) -> str:
    """What must not change for a folder to be resumed: what decides the answers (model, prompts,
    generation settings) and the samples. The bootstrap size and transport options may change."""
    answers = {k: v for k, v in config.as_dict().items() if k != "n_resamples"}
    return config_hash({"model": model, "config": answers, "card_hash": data.card_hash, "split": data.split,
                        "counts": data.describe()["counts"], "task_versions": data.task_versions()})


def _prepare_folder(out: Path, header: dict[str, Any], overwrite: bool) -> None:
    run_path = out / RUN_JSON
    if overwrite:
        for name in (RUN_JSON, RESULTS_JSON, PREDICTIONS):
            (out / name).unlink(missing_ok=True)
    if run_path.exists():
        previous = json.loads(run_path.read_text())
        if previous.get("identity") != header["identity"]:
            raise ConfigError("the output folder holds a run of another model, configuration or data",
                              where="option --out", value=str(out),
                              fix="choose a new --out, or pass --overwrite to discard that run")
        return
    if (out / PREDICTIONS).exists():
        raise InputError("holds predictions without a run.json", where=str(out), fix="choose a new --out or --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    write_json(run_path, header)


def _requests(data: EvalData, config: EvalConfig, done: set[str], ids: dict[int, tuple[str, str, Any]]) -> Iterator[Request]:
    """The samples not done yet, as requests; ``ids`` gets (sample id, task, gold) per request position."""
    position = 0
    for key, samples in data.tasks.items():
        task = samples.task
        binary = task.output_type == "binary"
        thinking = task.thinking and not config.direct and not binary
        for row in iter_rows(samples.frame, ROW_COLUMNS):
            i = position
            position += 1
            if row["id"] in done:
                continue
            candidates = None
            if config.candidates:
                candidates = row.get("candidates")
                if candidates is None:
                    raise InputError("has no candidate list", where=f"{samples.path}: {row['id']}",
                                     fix="rebuild with `ehr-r1 bench build` (it writes candidates), or drop --candidates")
            ids[i] = (row["id"], key, gold_of(row["label"]))
            yield Request(i, messages(row["input"], row["instruction"], thinking=thinking, output_type=task.output_type,
                                      candidates=candidates, switch=config.thinking_switch,
                                      system=config.system_prompt),
                          YES_NO if binary else GENERATE, thinking)


def _entry(request: Request, sample: tuple[str, str, Any], task: Any, outcome: Outcome) -> dict[str, Any]:
    sample_id, key, gold = sample
    entry: dict[str, Any] = {"i": request.i, "id": sample_id, "task": key, "status": "ok" if outcome.ok else "failed",
                             "label": gold, "completion": outcome.text, "answer": None, "scores": {},
                             "error": outcome.error, "attempts": outcome.attempts}
    if not outcome.ok:
        return entry
    if request.mode == YES_NO:
        entry.update(p_yes=outcome.p_yes, p_yes_source=outcome.p_yes_source, **score_probability(gold, outcome.p_yes))
    else:
        entry.update(score_text(task.output_type, request.thinking, gold, outcome.text))
    return entry


def _check_unique(data: EvalData) -> None:
    for samples in data.tasks.values():
        duplicated = samples.frame.filter(samples.frame["id"].is_duplicated())["id"].head(3).to_list()
        if duplicated:
            raise InputError("holds a sample id twice", where=str(samples.path), value=duplicated,
                             fix="rebuild the data with `ehr-r1 bench build`")


def score_run(out: Path, header: dict[str, Any], data: EvalData, config_seed: int, n_resamples: int) -> dict[str, Any]:
    """results.json from the journal (completions are not kept in memory)."""
    journal = Journal(out / PREDICTIONS)
    by_task: dict[str, list[dict[str, Any]]] = {key: [] for key in data.tasks}
    for entry in journal.entries():
        entry.pop("completion", None)
        by_task.setdefault(entry["task"], []).append(entry)
    tasks = {key: task_metrics(data.tasks[key].task, by_task[key], n_resamples=n_resamples, seed=config_seed)
             for key in data.tasks}
    return {**header, "tasks": tasks, "summary": summary(tasks)}


def evaluate(data_dir: str | Path, spec: ModelSpec, out: str | Path, config: EvalConfig = EvalConfig(), *,
             allow_remote: bool = False, concurrency: int | None = None, overwrite: bool = False,
             progress: Progress | None = None) -> EvalRun:
    """Evaluate the model of ``spec`` on the ``config.split`` samples in ``data_dir``; results in ``out``."""
    progress = progress or NULL_PROGRESS
    out = Path(out)
    backend = make_backend(spec, config, allow_remote=allow_remote, concurrency=concurrency)
    data = load_eval_data(data_dir, split=config.split, tasks=config.tasks, limit=config.limit)
    _check_unique(data)
    from bench.evaluate.backends.local import model_fingerprint

    model = spec.describe()
    fingerprint = {}
    if spec.kind in ("hf", "vllm") and Path(spec.target).is_dir():
        fingerprint = {"fingerprint": model_fingerprint(spec.target)["fingerprint"]}
    header = run_header("model", spec.text, {**model, **fingerprint}, config.as_dict(), data, config.seed)
    header["identity"] = run_identity({**spec.describe(answers_only=True), **fingerprint}, config, data)
    _prepare_folder(out, header, overwrite)

    journal = Journal(out / PREDICTIONS, redo_fix="delete predictions.jsonl (or pass --overwrite) to redo the run")
    done = journal.load()
    failed = {e["id"] for e in journal.entries() if e["status"] != "ok"}
    if failed:
        journal.forget(failed)
        log.info("asking %d failed sample(s) again", len(failed))
    resumed = len(done) - len(failed)
    pending = data.n_samples - resumed
    asked = 0
    started = time.monotonic()
    if pending:
        ids: dict[int, tuple[str, str, Any]] = {}
        requests = _requests(data, config, set(done) - failed, ids)
        handle = progress.start(f"bench eval: {spec.text}", total=pending)

        async def run() -> None:
            nonlocal asked
            try:
                async for request, outcome in backend.stream(requests):
                    sample = ids.pop(request.i)
                    journal.append(_entry(request, sample, data.tasks[sample[1]].task, outcome))
                    asked += 1
                    progress.advance(handle)
            finally:
                await backend.aclose()

        try:
            asyncio.run(run())
        finally:
            journal.close()
            progress.finish(handle)
    results = score_run(out, header, data, config.seed, config.n_resamples)
    results["model"] = {**results["model"], "backend": backend.describe()}
    results["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results["seconds_this_call"] = round(time.monotonic() - started, 3)
    write_json(out / RESULTS_JSON, results)
    log.info("bench eval: %d sample(s) asked, %d resumed, %d failed", asked, resumed, results["summary"]["failed"])
    return EvalRun(out, results, asked, resumed, results["summary"]["failed"])
