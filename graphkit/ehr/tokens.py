"""Token counting for record budgets: a fast approximate counter by default, or any real tokenizer.

``make_counter(None)`` gives ``ApproxCounter``: a linear model over four counts that polars
computes vectorized (digits, letter runs, symbol runs, line breaks), the pieces into which the
byte-level BPE tokenizers of current LLMs pre-split text (Qwen/Llama-3 style: every digit alone,
words, symbol runs, newlines). Its coefficients were fitted by ``python -m perf.records_tokens``
against a byte-level BPE with that pre-tokenization and a 3,000-token vocabulary, trained offline
on serialized records of half the demo's patients and evaluated on the other half (no model can
be downloaded here); the fit, its errors and the margin are in perf/results/records_tokens.md.
The margin makes it err on the high side. A general-purpose vocabulary (Qwen3's) splits medical
words differently: where the budget must hold, pass the model's tokenizer, or fit the counter to
it once with ``fit_approx_counter`` (a sample of records and their real counts) and count fast.

``make_counter(tokenizer)`` accepts a Hugging Face tokenizer (transformers or a bare
``tokenizers.Tokenizer``; neither is imported here), a callable ``text -> int`` or
``text -> list of tokens``, or a ``TokenCounter``.
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


# Fitted by `python -m perf.records_tokens` (perf/results/records_tokens.md); MARGIN makes it err high.
_COEFFICIENTS = {"digits": 0.843, "words": 1.172, "symbols": 1.284, "breaks": -0.247}
_INTERCEPT = 0.0
MARGIN = 1.05

# Pieces of a Qwen/Llama-3 style pre-tokenizer: each digit alone, letter runs, symbol runs, line breaks.
FEATURES = {
    "digits": r"\p{N}",
    "words": r"\p{L}+",
    "symbols": r"[^\s\p{L}\p{N}]+",
    "breaks": r"\n+",
}


@dataclass(frozen=True)
class ApproxCounter:
    """``ceil(margin * (intercept + sum(coefficient * feature)))`` per text, at least 1; 0 for ""."""

    coefficients: tuple[tuple[str, float], ...] = tuple(_COEFFICIENTS.items())
    intercept: float = _INTERCEPT
    margin: float = MARGIN
    name: str = "approx"
    exact: bool = False

    def expr(self, texts: pl.Expr) -> pl.Expr:
        """Token estimates of a string column, as one polars expression (Int64)."""
        total = pl.lit(self.intercept)
        for name, weight in self.coefficients:
            total = total + texts.str.count_matches(FEATURES[name]).cast(pl.Float64) * weight
        estimate = (total * self.margin).ceil().cast(pl.Int64).clip(lower_bound=1)
        return pl.when(texts.str.len_bytes() == 0).then(0).otherwise(estimate)

    def count_series(self, texts: pl.Series) -> pl.Series:
        return pl.select(self.expr(pl.lit(texts))).to_series()

    def count(self, texts: Sequence[str]) -> list[int]:
        return self.count_series(pl.Series(list(texts), dtype=pl.String)).to_list()


def fit_approx_counter(texts: Sequence[str], counts: Sequence[int], margin: float = MARGIN,
                       name: str = "approx-fitted") -> ApproxCounter:
    """An ApproxCounter fitted (least squares) to ``counts``, the real token counts of ``texts``.

    Count a sample of your records once with the model's tokenizer, fit, then count fast.
    """
    import numpy as np

    if len(texts) != len(counts) or len(texts) < len(FEATURES):
        raise ConfigError("needs as many counts as texts, and a few texts at least", where="fit_approx_counter",
                          value=(len(texts), len(counts)), fix="pass the real token count of each sample text")
    frame = pl.DataFrame({"text": list(texts)}, schema={"text": pl.String})
    features = frame.select(text_features(pl.col("text"))).to_numpy().astype(float)
    weights, *_ = np.linalg.lstsq(features, np.asarray(counts, dtype=float), rcond=None)
    return ApproxCounter(coefficients=tuple(zip(FEATURES, (round(float(w), 4) for w in weights), strict=True)),
                         intercept=0.0, margin=margin, name=name)


def text_features(texts: pl.Expr) -> list[pl.Expr]:
    """The counts the approximate counter is linear in, as polars expressions over a string column."""
    return [texts.str.count_matches(pattern).alias(name) for name, pattern in FEATURES.items()]


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
        if hasattr(self.tokenizer, "encode_batch"):  # a `tokenizers.Tokenizer`
            return [len(e.ids) for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]
        if callable(self.tokenizer):  # a transformers tokenizer
            return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
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
    if hasattr(tokenizer, "encode"):
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
