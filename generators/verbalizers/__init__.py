"""Verbalizers: ``template`` (offline, deterministic), ``openai`` (any OpenAI-compatible endpoint), ``vllm`` (GPU)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from generators.cache import ResponseCache
from generators.verbalizers.base import Usage, Verbalization, Verbalizer
from graphkit.errors import ConfigError

if TYPE_CHECKING:
    from generators.config import GenerateConfig, JudgeSettings
    from generators.verbalizers.openai_compat import ChatEndpoint

VERBALIZERS = ("template", "openai", "vllm")

__all__ = ["VERBALIZERS", "Usage", "Verbalization", "Verbalizer", "build_verbalizer", "judge_endpoint"]


def build_verbalizer(config: GenerateConfig, cache: ResponseCache) -> Verbalizer:
    settings = config.verbalizer
    if settings.kind == "template":
        from generators.verbalizers.template import TemplateVerbalizer

        return TemplateVerbalizer()
    if not settings.model:
        raise ConfigError(f"the {settings.kind} verbalizer needs a model", where="option --model",
                          fix="pass --model (for a server: the name it serves the model under)")
    if settings.kind == "openai":
        from generators.verbalizers.openai_compat import ChatEndpoint, EndpointConfig, OpenAIVerbalizer

        if not settings.base_url:
            raise ConfigError("the openai verbalizer needs the endpoint's base URL", where="option --base-url",
                              fix="pass e.g. --base-url http://127.0.0.1:8000/v1")
        endpoint = ChatEndpoint(EndpointConfig(
            base_url=settings.base_url, model=settings.model, api_key=config.api_key(),
            allow_remote=settings.allow_remote, concurrency=settings.concurrency, rps=settings.rps,
            max_retries=settings.max_retries, timeout=settings.timeout, backoff=settings.backoff,
            params=dict(settings.params),
        ), cache)
        return OpenAIVerbalizer(endpoint, n=settings.n, knowledge=settings.knowledge)
    from generators.verbalizers.vllm_engine import EngineConfig, VLLMVerbalizer

    return VLLMVerbalizer(EngineConfig(
        model=settings.model, tensor_parallel_size=settings.tensor_parallel_size,
        pipeline_parallel_size=settings.pipeline_parallel_size, gpu_memory_utilization=settings.gpu_memory_utilization,
        max_model_len=settings.max_model_len, dtype=settings.dtype, batch_size=settings.batch_size,
        params=dict(settings.params), chat_template_kwargs=dict(settings.chat_template_kwargs),
    ), cache, n=settings.n, knowledge=settings.knowledge)


def judge_endpoint(judge: JudgeSettings, config: GenerateConfig, cache: ResponseCache) -> ChatEndpoint:
    """The re-derivation judge's endpoint; it shares the verbalizer's remote opt-in, limits and key."""
    from generators.verbalizers.openai_compat import ChatEndpoint, EndpointConfig

    settings = config.verbalizer
    return ChatEndpoint(EndpointConfig(
        base_url=judge.base_url, model=judge.model, api_key=config.api_key(), allow_remote=settings.allow_remote,
        concurrency=settings.concurrency, rps=settings.rps, max_retries=settings.max_retries, timeout=settings.timeout,
        backoff=settings.backoff, params=dict(judge.params),
    ), cache, purpose="the re-derivation judge")
