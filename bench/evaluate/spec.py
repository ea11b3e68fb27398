"""Model SPECs of ``ehr-r1 bench eval --model SPEC``: which model answers, and how it is reached.

=================================  ==========================================================
SPEC                               model
=================================  ==========================================================
``PATH`` or ``hf:PATH``            a local transformers model folder (CPU or GPU, in-process)
``openai:BASE_URL@MODEL``          an OpenAI-compatible chat endpoint (vLLM / SGLang / llama.cpp
                                   server, ``transformers serve``, a hosted API); ``@MODEL`` may
                                   be left out when the server serves exactly one model
``vllm:PATH``                      an in-process vLLM engine (extra ``vllm``, needs a GPU)
=================================  ==========================================================

``BASE_URL`` is written with its path (``http://127.0.0.1:8000/v1``); the model name is what
follows the first ``@`` after the host, so served names with slashes (``Qwen/Qwen3-8B``) work.
A URL with credentials in it (``http://user:pass@host``) is refused: keys go in an environment
variable named by the ``api_key_env`` option, so they never reach a result file.

Backend options come from ``--model-option key=value`` (repeatable); `OPTIONS` lists them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphkit.errors import ConfigError

KINDS = ("hf", "openai", "vllm")
# options that change how answers are fetched, never what they are: a run may resume with others
TRANSPORT_OPTIONS = frozenset({"api_key_env", "timeout", "retries", "backoff"})

# option -> (type, default, help); the defaults are what a run uses when the option is not given
OPTIONS: dict[str, dict[str, tuple[type, Any, str]]] = {
    "hf": {
        "device": (str, "auto", "torch device: auto (cuda when there is one, else cpu), cpu, cuda, cuda:1..."),
        "dtype": (str, "auto", "auto (the model's), float32, bfloat16 or float16"),
        "max_length": (int, 0, "longest prompt + answer in tokens (0: the model's max_position_embeddings)"),
    },
    "openai": {
        "api_key_env": (str, "", "environment variable holding the API key (none: no key is sent)"),
        "timeout": (float, 600.0, "seconds per request"),
        "retries": (int, 3, "retries of a failed request before the sample is recorded as failed"),
        "backoff": (float, 1.0, "seconds before the first retry; doubles each time"),
        "top_logprobs": (int, 20, "top log-probabilities requested for the yes/no token of risk tasks"),
        "logit_bias": (str, "auto", "auto: bias yes/no when their token ids are known (tokenizer option or the "
                                    "server's /tokenize), off: never"),
        "tokenizer": (str, "", "local tokenizer folder giving the yes/no token ids for the logit bias"),
        "template_kwargs": (bool, True, "send chat_template_kwargs.enable_thinking (vLLM, SGLang, transformers serve)"),
    },
    "vllm": {
        "tensor_parallel_size": (int, 1, "GPUs per model replica"),
        "gpu_memory_utilization": (float, 0.9, "share of GPU memory vLLM may take"),
        "max_model_len": (int, 0, "context length (0: the model's)"),
        "dtype": (str, "auto", "auto, bfloat16, float16"),
        "logprobs_mode": (str, "processed_logprobs",
                          "vLLM logprobs_mode: processed_logprobs gives yes/no log-probabilities after the "
                          "yes/no restriction; '' leaves vLLM's default"),
    },
}


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # "hf" | "openai" | "vllm"
    target: str  # a path (hf, vllm) or a base URL (openai)
    model: str | None = None  # served model name (openai)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The SPEC as written back (no options)."""
        if self.kind == "openai":
            return f"openai:{self.target}" + (f"@{self.model}" if self.model else "")
        return f"{self.kind}:{self.target}"

    def option(self, name: str) -> Any:
        return self.options.get(name, OPTIONS[self.kind][name][1])

    def describe(self, *, answers_only: bool = False) -> dict[str, Any]:
        """What identifies the model in a result file (never a key).

        ``answers_only`` leaves out what cannot change an answer: `TRANSPORT_OPTIONS` and an
        endpoint's URL (a server restarted on another port serves the same model name).
        """
        options = {k: v for k, v in sorted(self.options.items()) if not (answers_only and k in TRANSPORT_OPTIONS)}
        if answers_only and self.kind == "openai":
            return {"kind": self.kind, "model": self.model, "options": options}
        return {"spec": self.text, "kind": self.kind, "target": self.target, "model": self.model, "options": options}


_OPENAI = re.compile(r"^(?P<base>https?://(?P<authority>[^/]+)(?P<path>/[^@]*)?)(?:@(?P<model>.+))?$")


def parse_model_spec(spec: str, options: dict[str, Any] | None = None) -> ModelSpec:
    """Parse a SPEC (see the module doc) and check its options; raises ConfigError naming --model."""
    spec = (spec or "").strip()
    if not spec:
        raise ConfigError("no model given", where="option --model", fix="pass --model PATH, openai:URL@MODEL or vllm:PATH")
    kind, _, rest = spec.partition(":")
    if kind == "openai":
        match = _OPENAI.match(rest)
        if match is None:
            raise ConfigError("is not openai:BASE_URL[@MODEL]", where="option --model", value=spec,
                              fix="write e.g. openai:http://127.0.0.1:8000/v1@Qwen/Qwen3-8B")
        if "@" in match["authority"]:
            raise ConfigError("a URL with credentials or without a path is ambiguous", where="option --model",
                              value=f"openai:...{match['authority'].split('@')[-1]}",
                              fix="write the base URL with its path (http://HOST:PORT/v1@MODEL) and put an API key "
                                  "in an environment variable named by --model-option api_key_env=NAME")
        target = match["base"].rstrip("/")
        parsed = ModelSpec("openai", target, match["model"] or None)
    elif kind in ("hf", "vllm"):
        if not rest:
            raise ConfigError("names no model", where="option --model", value=spec, fix=f"write {kind}:PATH")
        parsed = ModelSpec(kind, rest)
    elif re.match(r"^[A-Za-z][\w+.-]*://", spec):
        raise ConfigError("a URL needs the openai: prefix", where="option --model", value=spec,
                          fix=f"write openai:{spec}@MODEL")
    else:
        path = Path(spec)
        if not path.exists():
            raise ConfigError("is neither a model folder nor a SPEC", where="option --model", value=spec,
                              fix="pass a local model folder, hf:PATH, openai:http://127.0.0.1:8000/v1@MODEL or vllm:PATH")
        parsed = ModelSpec("hf", spec)
    return ModelSpec(parsed.kind, parsed.target, parsed.model, _check_options(parsed.kind, options or {}))


def _check_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    known = OPTIONS[kind]
    checked: dict[str, Any] = {}
    for name, value in options.items():
        if name not in known:
            raise ConfigError(f"is not an option of {kind} models", where="option --model-option", value=name,
                              fix=f"use one of {', '.join(sorted(known))}")
        kind_type = known[name][0]
        if kind_type is bool and isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if kind_type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind_type is str and not isinstance(value, str):
            value = str(value)
        if not isinstance(value, kind_type) or (kind_type is int and isinstance(value, bool)):
            raise ConfigError(f"must be a {kind_type.__name__}", where=f"--model-option {name}", value=value,
                              fix=f"write {name}=<{kind_type.__name__}> ({known[name][2]})")
        if kind_type in (int, float) and value < 0:
            raise ConfigError("must not be negative", where=f"--model-option {name}", value=value,
                              fix=known[name][2])
        checked[name] = value
    if kind == "openai" and checked.get("logit_bias", "auto") not in ("auto", "off"):
        raise ConfigError("must be auto or off", where="--model-option logit_bias", value=checked["logit_bias"],
                          fix="write logit_bias=auto or logit_bias=off")
    return checked
