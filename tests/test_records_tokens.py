"""Token counters: the approximate default, its fitting, and real tokenizers of every accepted kind."""

from __future__ import annotations

import polars as pl
import pytest

from graphkit.ehr.tokens import (
    ApproxCounter,
    CallableCounter,
    TokenizerCounter,
    count_series,
    fit_approx_counter,
    make_counter,
)
from graphkit.errors import ConfigError

SAMPLES = [
    "## Laboratory Test Events [2157-11-20 08:14:00]\n| Item | Value | Unit |\n| ------ | ------ | ------ |\n| Creatinine | 0.7 | mg/dL |",
    "## Provider Order Entry [2157-11-19 09:09:38]\n- Order Type: Consults\n- Order Subtype: Social Work",
    "- Text: Name: ___\nDischarge Diagnosis: brain abscess",
    "",
]


@pytest.fixture(scope="module")
def bpe():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(SAMPLES * 20, trainer)
    return tokenizer


def test_approx_counter_is_vectorized_and_never_zero_for_text():
    counter = ApproxCounter()
    counts = counter.count(SAMPLES)
    assert counts[-1] == 0 and all(n >= 1 for n in counts[:-1])
    assert counts == counter.count_series(pl.Series(SAMPLES)).to_list()
    assert counts == pl.DataFrame({"t": SAMPLES}).select(counter.expr(pl.col("t"))).to_series().to_list()
    assert counter.count(["1234567890"])[0] > counter.count(["1"])[0]  # every digit is a piece
    longer = counter.count([SAMPLES[0] + "\n\n" + SAMPLES[1]])[0]
    assert longer >= max(counts[0], counts[1])


def test_fit_recovers_a_linear_tokenizer():
    texts = [f"{'word ' * w}{'7' * d}{' ;' * s}" for w in range(1, 6) for d in range(0, 9, 2) for s in range(3)]
    truth = [2 * t.count("word") + 1 * sum(c.isdigit() for c in t) + 3 * t.count(";") for t in texts]
    fitted = fit_approx_counter(texts, truth, margin=1.0)
    weights = dict(fitted.coefficients)
    assert weights["words"] == pytest.approx(2, abs=0.01)
    assert weights["digits"] == pytest.approx(1, abs=0.01)
    assert weights["symbols"] == pytest.approx(3, abs=0.01)
    assert fitted.count(texts) == truth
    with pytest.raises(ConfigError, match="as many counts as texts"):
        fit_approx_counter(["a", "b"], [1])


def test_real_tokenizers_of_every_kind(bpe):
    texts = SAMPLES[:3]
    truth = [len(bpe.encode(t, add_special_tokens=False).ids) for t in texts]
    raw = make_counter(bpe)
    assert isinstance(raw, TokenizerCounter) and raw.exact and raw.count(texts) == truth
    transformers = pytest.importorskip("transformers")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe)
    assert make_counter(fast).count(texts) == truth
    as_list = make_counter(lambda t: bpe.encode(t).ids)
    as_int = make_counter(lambda t: len(bpe.encode(t).ids))
    assert isinstance(as_list, CallableCounter) and as_list.count(texts) == truth == as_int.count(texts)
    assert count_series(raw, pl.Series(texts)).to_list() == truth


def test_make_counter_defaults_and_refusals():
    assert isinstance(make_counter(None), ApproxCounter)
    counter = ApproxCounter(margin=1.2)
    assert make_counter(counter) is counter
    with pytest.raises(ConfigError, match="cannot count tokens"):
        make_counter(42)
