"""A local transformers model as an evaluation backend (extra ``train``: torch + transformers).

Prompts are rendered with the model's chat template (``enable_thinking`` from the request), left
padded into batches of ``--concurrency`` and cut from the left to the model's context minus the
answer budget, as the reference does. Decision requests are generated greedily (or sampled with a
temperature); a yes/no request is one forward pass: P(yes) is the softmax over the logits of the
first token of "yes" and of "no" at the answer position (``p_yes_source`` "logits"), the
reference's restriction of the answer to those two tokens.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
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
)
from bench.evaluate.spec import ModelSpec
from graphkit.errors import ConfigError, InputError
from graphkit.extras import require
from graphkit.hashing import config_hash, file_hash

log = logging.getLogger(__name__)

# small files that identify a model folder without hashing gigabytes of weights
FINGERPRINT_FILES = ("config.json", "generation_config.json", "tokenizer_config.json", "training_card.json",
                     "model.safetensors.index.json")


def model_fingerprint(path: str | Path) -> dict[str, Any]:
    """Hashes of a model folder's small identifying files (and of its single weights file when small)."""
    path = Path(path)
    files = {name: file_hash(path / name) for name in FINGERPRINT_FILES if (path / name).is_file()}
    weights = path / "model.safetensors"
    if weights.is_file() and weights.stat().st_size <= 256 * 2**20:
        files["model.safetensors"] = file_hash(weights)
    card = {}
    if (path / "training_card.json").is_file():
        try:
            raw = json.loads((path / "training_card.json").read_text())
            card = {k: raw[k] for k in ("stage", "kind", "seed") if k in raw}
        except ValueError:
            card = {}
    return {"path": str(path.resolve()), "files": files, "fingerprint": config_hash(files), "card": card}


class TransformersBackend(BatchBackend):
    def __init__(self, spec: ModelSpec, generation: Generation, *, batch_size: int = 8):
        path = Path(spec.target)
        if not (path / "config.json").is_file():
            raise InputError("is not a transformers model folder (no config.json)", where="option --model",
                             value=spec.target, fix="pass a folder written by save_pretrained (or `ehr-r1 train ...`)")
        self.spec = spec
        self.generation = generation
        self.batch_size = batch_size
        self._model = None
        self._tokenizer = None
        self._torch = None
        self._answer_ids: tuple[int, int] | None = None
        self._max_length = 0
        self._fingerprint = model_fingerprint(path)

    def describe(self) -> dict[str, Any]:
        return {**self._fingerprint, "device": str(self._model.device) if self._model is not None else None}

    def _load(self) -> None:
        if self._model is not None:
            return
        torch = require("torch", "train", "a local transformers model")
        transformers = require("transformers", "train", "a local transformers model")
        device = self.spec.option("device")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self.spec.option("dtype")
        if dtype != "auto" and not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ConfigError("is not a torch dtype", where="--model-option dtype", value=dtype,
                              fix="use auto, float32, bfloat16 or float16")
        tokenizer = transformers.AutoTokenizer.from_pretrained(self.spec.target)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = transformers.AutoModelForCausalLM.from_pretrained(
            self.spec.target, dtype="auto" if dtype == "auto" else getattr(torch, dtype))
        model.to(device)
        model.eval()
        limit = int(self.spec.option("max_length")) or int(getattr(model.config, "max_position_embeddings", 0) or 0)
        self._max_length = limit or 32768
        self._torch, self._tokenizer, self._model = torch, tokenizer, model
        log.info("loaded %s on %s", self.spec.target, device)

    def _encode(self, batch: list[Request], answer_tokens: int):
        texts = [self._tokenizer.apply_chat_template(r.messages, add_generation_prompt=True, tokenize=False,
                                                     enable_thinking=r.thinking) for r in batch]
        encoded = self._tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        keep = max(self._max_length - answer_tokens, 1)
        if encoded["input_ids"].shape[1] > keep:
            log.debug("left-truncating %d prompt(s) to %d tokens", len(batch), keep)
        return {k: v[:, -keep:].to(self._model.device) for k, v in encoded.items()}

    def _run(self, batch: list[Request]) -> list[Outcome]:
        self._load()
        torch = self._torch
        with torch.no_grad():
            if batch[0].mode == GENERATE:
                return self._generate(batch)
            return self._yes_no(batch)

    def _generate(self, batch: list[Request]) -> list[Outcome]:
        g = self.generation
        inputs = self._encode(batch, g.max_new_tokens)
        sample = g.temperature > 0
        if sample:
            self._torch.manual_seed(g.seed)
        output = self._model.generate(
            **inputs, max_new_tokens=g.max_new_tokens, do_sample=sample,
            pad_token_id=self._tokenizer.pad_token_id,
            **({"temperature": g.temperature} if sample else {"temperature": None, "top_p": None, "top_k": None}))
        new = output[:, inputs["input_ids"].shape[1]:]
        texts = self._tokenizer.batch_decode(new, skip_special_tokens=True)
        return [Outcome(text=text) for text in texts]

    def _yes_no(self, batch: list[Request]) -> list[Outcome]:
        if self._answer_ids is None:
            self._answer_ids = answer_token_ids(self._tokenizer)
        inputs = self._encode(batch, 1)
        logits = self._model(**inputs).logits[:, -1, list(self._answer_ids)].float()
        p_yes = logits.softmax(-1)[:, 0].tolist()
        return [Outcome(text=YES if p >= 0.5 else NO, p_yes=float(p), p_yes_source="logits") for p in p_yes]
