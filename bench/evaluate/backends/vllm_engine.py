"""An in-process vLLM engine as an evaluation backend (extra ``vllm``, needs a GPU).

Requests go to ``LLM.chat`` in batches of ``--concurrency`` (default 256) with
``chat_template_kwargs={"enable_thinking": ...}``; the engine runs in a worker thread so finished
samples reach the journal while the next batch runs. Records never leave the process.

Risk requests: one token, ``allowed_token_ids`` = the first tokens of "yes" and "no", and 20
log-probabilities. The engine is started with ``logprobs_mode="processed_logprobs"`` (option
``logprobs_mode``) so the returned log-probabilities are those after the restriction, i.e. the two
answers; P(yes) is their softmax ("logprobs"). With vLLM's raw log-probabilities one answer may
miss the top 20: it then gets the smallest listed value ("logprobs_bound"), as for endpoints.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from bench.evaluate.backends.base import (
    GENERATE,
    NO,
    YES,
    BatchBackend,
    Generation,
    Outcome,
    Request,
    answer_token_ids,
    p_yes_from_logprobs,
)
from bench.evaluate.backends.local import model_fingerprint
from bench.evaluate.spec import ModelSpec
from graphkit.extras import require

log = logging.getLogger(__name__)

RISK_LOGPROBS = 20


class VLLMBackend(BatchBackend):
    def __init__(self, spec: ModelSpec, generation: Generation, *, batch_size: int = 256):
        self.spec = spec
        self.generation = generation
        self.batch_size = batch_size
        self._llm = None
        self._vllm = None
        self._answer_ids: tuple[int, int] | None = None

    def describe(self) -> dict[str, Any]:
        from pathlib import Path

        if Path(self.spec.target).is_dir():
            return model_fingerprint(self.spec.target)
        return {"path": self.spec.target}

    def _engine(self):
        if self._llm is None:
            vllm = require("vllm", "vllm", "the in-process vLLM evaluator")
            options: dict[str, Any] = {
                "model": self.spec.target,
                "tensor_parallel_size": int(self.spec.option("tensor_parallel_size")) or 1,
                "gpu_memory_utilization": float(self.spec.option("gpu_memory_utilization")),
                "dtype": self.spec.option("dtype"),
                "seed": self.generation.seed,
            }
            if int(self.spec.option("max_model_len")):
                options["max_model_len"] = int(self.spec.option("max_model_len"))
            if self.spec.option("logprobs_mode"):
                options["logprobs_mode"] = self.spec.option("logprobs_mode")
            log.info("starting vLLM on %s", self.spec.target)
            self._vllm = vllm
            self._llm = vllm.LLM(**options)
            self._answer_ids = answer_token_ids(self._llm.get_tokenizer())
        return self._llm

    def _run(self, batch: list[Request]) -> list[Outcome]:
        llm = self._engine()
        g = self.generation
        if batch[0].mode == GENERATE:
            params = self._vllm.SamplingParams(max_tokens=g.max_new_tokens, temperature=g.temperature, seed=g.seed)
        else:
            params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, seed=g.seed, logprobs=RISK_LOGPROBS,
                                               allowed_token_ids=list(self._answer_ids))
        outputs = llm.chat([r.messages for r in batch], sampling_params=params, use_tqdm=False,
                           chat_template_kwargs={"enable_thinking": batch[0].thinking})
        outcomes = []
        for output in outputs:
            completion = output.outputs[0]
            if batch[0].mode == GENERATE:
                outcomes.append(Outcome(text=completion.text))
            else:
                outcomes.append(self._yes_no(completion))
        return outcomes

    def _yes_no(self, completion: Any) -> Outcome:
        yes_id, no_id = self._answer_ids
        first = (completion.logprobs or [{}])[0] or {}
        values = {token_id: getattr(entry, "logprob", entry) for token_id, entry in first.items()}
        values = {k: float(v) for k, v in values.items() if isinstance(v, int | float) and not math.isnan(v)}
        if yes_id not in values and no_id not in values:
            return Outcome(error="no yes/no log-probability in the engine's output")
        source = "logprobs"
        floor = min(values.values())
        if yes_id not in values or no_id not in values:
            source = "logprobs_bound"
        p_yes = p_yes_from_logprobs(values.get(yes_id, floor), values.get(no_id, floor))
        return Outcome(text=YES if p_yes >= 0.5 else NO, p_yes=p_yes, p_yes_source=source)
