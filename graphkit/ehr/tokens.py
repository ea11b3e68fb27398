"""Token counting for record budgets: a fast approximate counter by default, or any real tokenizer.

``make_counter(None)`` gives ``ApproxCounter``: a linear model over counts that polars computes in
one vectorized pass (digits, letter runs, letters, symbol runs, line breaks). It mirrors how the
byte-level BPE tokenizers of current LLMs split text (Qwen/Llama-3 style pre-tokenization: every
digit alone, words, symbol runs, newlines). Its coefficients were fitted by
``python -m perf.records_tokens`` against a byte-level BPE with that pre-tokenization trained
offline on serialized demo records; the fit, its error and the margin are recorded in
perf/results/records_tokens.md. It is meant to err on the high side, so a record cut to N
approximate tokens rarely exceeds N real ones; pass a real tokenizer where the budget is strict.

``make_counter(tokenizer)`` accepts a Hugging Face tokenizer (anything with ``encode`` or
``__call__`` returning ``input_ids``; transformers is never imported here), a callable
``text -> int`` or ``text -> list of tokens``, or a ``TokenCounter``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import polars as pl

from graphkit.errors import ConfigError


@runtime_checkable
class TokenCounter(Protocol):
    name: str
    exact: bool  # True: counts are those of the model's tokenizer (budgets can be checked on the whole text)

    def count(self, texts: Sequence[str]) -> list[int]: ...


# Fitted by perf/records_tokens.py (see perf/results/records_tokens.md); MARGIN makes it err high.
_COEFFICIENTS = {"digits": 1.0, "words": 1.0, "letters": 0.12, "symbols": 1.0, "breaks": 1.0}
_INTERCEPT = 0.0
MARGIN = 1.05

_FEATURES = {
    "digits": r"\p{N}",
    "words": r"\p{L}+",
    "letters": r"\p{L}",
    "symbols": r"[^\s\p{L}\p{N}]+",
    "breaks": r"\n+",
}


def text_features(texts: pl.Expr) -> list[pl.Expr]:
    """The counts the approximate counter is linear in, as polars expressions over a string column."""
    return [texts.str.count_matches(pattern).alias(name) for name, pattern in _FEATURES.items()]


@dataclass(frozen=True)
class ApproxCounter:
    """``ceil(margin * (intercept + sum(coefficient * feature)))`` per text; 0 for an empty text."""

    coefficients: tuple[tuple[str, float], ...] = tuple(_COEFFICIENTS.items())
    intercept: float = _INTERCEPT
    margin: float = MARGIN
    name: str = "approx"
    exact: bool = False

    def expr(self, texts: pl.Expr) -> pl.Expr:
        """Token estimates of a string column, as one polars expression (Int64)."""
        total = pl.lit(self.intercept)
        for name, weight in self.coefficients:
            total = total + texts.str.count_matches(_FEATURES[name]).cast(pl.Float64) * weight
        estimate = (total * self.margin).ceil().cast(pl.Int64)
        return pl.when(texts.str.len_bytes() == 0).then(0).otherwise(estimate)

    def count_series(self, texts: pl.Series) -> pl.Series:
        return pl.select(self.expr(pl.lit(texts))).to_series()

    def count(self, texts: Sequence[str]) -> list[int]:
        return self.count_series(pl.Series(list(texts), dtype=pl.String)).to_list()


class TokenizerCounter:
    """Counts with a Hugging Face tokenizer (special tokens excluded: the chat template adds them)."""

    exact = True

    def __init__(self, tokenizer: Any, name: str | None = None):
        self.tokenizer = tokenizer
        self.name = name or getattr(tokenizer, "name_or_path", None) or type(tokenizer).__name__

    def count(self, texts: Sequence[str]) -> list[int]:
        texts = list(texts)
        if not texts:
            return []
        if callable(self.tokenizer):
            encoded = self.tokenizer(texts, add_special_tokens=False)
            ids = encoded["input_ids"] if isinstance(encoded, dict) or hasattr(encoded, "keys") else encoded
            return [len(x) for x in ids]
        return [len(self.tokenizer.encode(t, add_special_tokens=False)) for t in texts]


class CallableCounter:
    """Counts with a plain function ``text -> int`` or ``text -> sequence of tokens``."""

    exact = True

    def __init__(self, function: Callable[[str], Any], name: str | None = None):
        self.function = function
        self.name = name or getattr(function, "__name__", "callable")

    def count(self, texts: Sequence[str]) -> list[int]:
        out = []
        for text in texts:
            value = self.function(text)
            out.append(int(value) if isinstance(value, int) else len(value))
        return out


def make_counter(tokenizer: Any = None) -> TokenCounter:
    """The counter for ``tokenizer``: None -> ApproxCounter; HF tokenizer; callable; a TokenCounter."""
    if tokenizer is None:
        return ApproxCounter()
    if isinstance(tokenizer, TokenCounter):
        return tokenizer
    if hasattr(tokenizer, "encode") or hasattr(tokenizer, "batch_encode_plus"):
        return TokenizerCounter(tokenizer)
    if callable(tokenizer):
        return CallableCounter(tokenizer)
    raise ConfigError(
        "cannot count tokens with this object",
        where="tokenizer",
        value=type(tokenizer).__name__,
        fix="pass a Hugging Face tokenizer, a function text -> int, or None for the approximate counter",
    )


def count_series(counter: TokenCounter, texts: pl.Series) -> pl.Series:
    """Token counts of a string Series, vectorized when the counter allows it."""
    if isinstance(counter, ApproxCounter):
        return counter.count_series(texts)
    return pl.Series(counter.count(texts.to_list()), dtype=pl.Int64)
