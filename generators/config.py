"""The settings of a generation run, validated, with the hash that pins a dataset to them.

The content hash covers what decides the cases (inputs, verbalizer model and parameters, filters,
tasks, splits, kinds, format) and leaves out how fast they are fetched (concurrency, rate,
retries, timeouts, server URL, engine parallelism), so a resumed or re-sharded run on another
server still matches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from graphkit.errors import ConfigError
from graphkit.hashing import config_hash, file_hash

KINDS = ("reasoning", "direct")
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."  # the reference's system turn for every case
# the reference samples its reasoning at temperature 0.5 (reasoning_generation_new.py)
DEFAULT_PARAMS: dict[str, Any] = {"temperature": 0.5}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VerbalizerSettings(_Strict):
    kind: Literal["template", "openai", "vllm"] = "template"
    model: str | None = None
    n: int = Field(1, ge=1)  # completions per sample; the first that passes the filters is kept
    knowledge: bool = True  # put the thinking graph in the prompt (False: the reference's no-knowledge variant)
    params: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_PARAMS))
    # OpenAI-compatible endpoint
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    allow_remote: bool = False
    concurrency: int = Field(32, ge=1)
    rps: float | None = Field(None, gt=0)
    max_retries: int = Field(5, ge=0)
    timeout: float = Field(600.0, gt=0)
    backoff: float = Field(1.0, ge=0)  # first retry delay in seconds; doubles per attempt, with jitter
    # offline vLLM engine
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_model_len: int | None = Field(None, ge=1)
    dtype: str = "auto"
    batch_size: int = Field(256, ge=1)
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)

    def content(self) -> dict[str, Any]:
        if self.kind == "template":
            return {"kind": "template"}
        content = {"kind": self.kind, "model": self.model, "n": self.n, "knowledge": self.knowledge,
                   "params": self.params}
        if self.chat_template_kwargs:
            content["chat_template_kwargs"] = self.chat_template_kwargs
        return content


class JudgeSettings(_Strict):
    """The answer-blind re-derivation judge (an OpenAI-compatible endpoint)."""

    model: str
    base_url: str
    min_recall: float = Field(0.7, ge=0, le=1)
    params: dict[str, Any] = Field(default_factory=lambda: {"temperature": 0.0})


class FilterSettings(_Strict):
    min_recall: float = Field(0.7, ge=0, le=1)
    extra_leak_patterns: list[str] = Field(default_factory=list)
    judge: JudgeSettings | None = None


class GenerateConfig(_Strict):
    samples: list[Path] = Field(min_length=1)
    thinking: list[Path] = Field(default_factory=list)
    links: list[Path] = Field(default_factory=list)  # item key -> CUI rows: which targets stand for which gold item
    out: Path
    tasks: list[str] | None = None
    splits: list[str] | None = Field(default_factory=lambda: ["train"])  # None: every split
    kinds: list[Literal["reasoning", "direct"]] = Field(default_factory=lambda: list(KINDS))
    limit: int | None = Field(None, ge=1)  # at most this many samples per shard
    format: Literal["jsonl", "parquet"] = "jsonl"
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT
    cache: Path | None = None  # response cache file; None: no cache
    verbalizer: VerbalizerSettings = Field(default_factory=VerbalizerSettings)
    filters: FilterSettings = Field(default_factory=FilterSettings)

    @field_validator("kinds")
    @classmethod
    def _some_kind(cls, kinds: list[str]) -> list[str]:
        if not kinds:
            raise ValueError("at least one of reasoning, direct")
        return list(dict.fromkeys(kinds))

    def content_hash(self, sample_files: list[Path]) -> str:
        """Hash of the settings and the sample files (thinking graphs are tracked apart: see pipeline)."""
        judge = self.filters.judge
        return config_hash({
            "samples": sorted(file_hash(path) for path in sample_files),
            "tasks": sorted(self.tasks) if self.tasks else None,
            "splits": sorted(self.splits) if self.splits else None,
            "kinds": sorted(self.kinds),
            "limit": self.limit,
            "format": self.format,
            "system_prompt": self.system_prompt,
            "verbalizer": self.verbalizer.content(),
            "filters": {"min_recall": self.filters.min_recall, "extra_leak_patterns": self.filters.extra_leak_patterns,
                        "judge": None if judge is None else {"model": judge.model, "min_recall": judge.min_recall,
                                                             "params": judge.params}},
        })

    def public(self) -> dict[str, Any]:
        """The settings as written into the dataset card: paths as given, no secrets (only the key's variable name)."""
        return self.model_dump(mode="json")

    def api_key(self) -> str | None:
        return os.environ.get(self.verbalizer.api_key_env) or None


def load_config(values: dict[str, Any]) -> GenerateConfig:
    try:
        return GenerateConfig.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise ConfigError(error["msg"], where=f"generation setting {field}", value=error.get("input"),
                          fix="see `ehr-r1 generate cases --help`") from None
