"""Calibrate the approximate token counter (graphkit.ehr.tokens) against real BPE tokenizers built offline.

No model tokenizer can be downloaded here, so the reference tokenizers are byte-level BPEs with the
Qwen2/3 pre-tokenization, trained with `tokenizers` on the event blocks of half the demo's
patients (even subject ids, both record styles) and evaluated on the other half. Two sizes: 3,000
tokens (rarer words split into pieces, as a general vocabulary splits medical terms; the default
counter is fitted to it) and 32,000 (on this corpus it saturates near 10,000: one token per word).

    python -m perf.records_tokens [--sample 40000] [--out perf/results]

Writes records_tokens.json and records_tokens.md: the fitted coefficients, the per-block error and
the error on sums of 200 consecutive blocks (about an 8k-token record), for the shipped counter and
for counters fitted to each tokenizer.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "graphkit" / "data" / "mimic-iv-demo"
QWEN_PRETOKENIZER = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
WINDOW = 200  # blocks per simulated record


def demo_blocks() -> pl.DataFrame:
    from graphkit.ehr.serialize import Serializer
    from graphkit.ehr.source import open_source
    from graphkit.ehr.timeline import build_timeline, load_lookups

    lookups = load_lookups(open_source(DEMO))
    frames = []
    for style in ("clean", "ehr-r1"):
        timeline = build_timeline(lookups.source, definition=style, lookups=lookups)
        blocks = Serializer(timeline, style=style).render_events(timeline.events["event_id"])
        frames.append(blocks.join(timeline.events.select("event_id", "subject_id"), on="event_id")
                      .select("subject_id", "text", pl.lit(style).alias("style")))
    return pl.concat(frames).filter(pl.col("text").str.len_bytes() > 0)


def train_bpe(texts: list[str], vocab_size: int):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PRETOKENIZER), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def errors(estimate: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    block = np.abs(estimate - truth) / np.maximum(truth, 1)
    n = len(truth) // WINDOW * WINDOW
    ratio = estimate[:n].reshape(-1, WINDOW).sum(1) / truth[:n].reshape(-1, WINDOW).sum(1)
    return {
        "block_mean_abs_error": round(float(block.mean()), 4),
        "block_p95_abs_error": round(float(np.quantile(block, 0.95)), 4),
        "record_ratio_mean": round(float(ratio.mean()), 4),
        "record_ratio_min": round(float(ratio.min()), 4),
        "record_ratio_max": round(float(ratio.max()), 4),
        "records_underestimated": round(float((ratio < 1).mean()), 4),
    }


def main(argv: list[str] | None = None) -> dict:
    from graphkit.ehr.tokens import ApproxCounter, fit_approx_counter

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, default=40000, help="training blocks per tokenizer")
    parser.add_argument("--out", type=Path, default=REPO / "perf" / "results")
    args = parser.parse_args(argv)

    started = time.time()
    blocks = demo_blocks()
    train = blocks.filter(pl.col("subject_id") % 2 == 0)
    test = blocks.filter(pl.col("subject_id") % 2 == 1)
    sample = train["text"].sample(min(args.sample, train.height), seed=1).to_list()
    shipped = ApproxCounter()
    t0 = time.perf_counter()
    shipped_test = np.array(shipped.count(test["text"].to_list()), dtype=float)
    count_seconds = time.perf_counter() - t0
    result = {
        "benchmark": "records_tokens",
        "blocks": {"train": train.height, "test": test.height,
                   "test_megabytes": round(test["text"].str.len_bytes().sum() / 1e6, 2)},
        "approx_counter_mb_per_s": round(test["text"].str.len_bytes().sum() / 1e6 / count_seconds, 1),
        "shipped": {"coefficients": dict(shipped.coefficients), "margin": shipped.margin},
        "tokenizers": {},
    }
    for vocab in (3000, 32000):
        tokenizer = train_bpe(sample, vocab)
        truth = {name: np.array([len(e.ids) for e in tokenizer.encode_batch(df["text"].to_list(), add_special_tokens=False)],
                                dtype=float) for name, df in (("train", train), ("test", test))}
        fitted = fit_approx_counter(train["text"].to_list(), truth["train"].tolist(), margin=1.0)
        fitted_test = np.array(fitted.count(test["text"].to_list()), dtype=float)
        entry = {
            "vocab_size": tokenizer.get_vocab_size(),
            "tokens_per_byte": round(float(truth["test"].sum() / test["text"].str.len_bytes().sum()), 4),
            "fitted_coefficients": dict(fitted.coefficients),
            "fitted_no_margin": errors(fitted_test, truth["test"]),
            "shipped_counter": errors(shipped_test, truth["test"]),
        }
        result["tokenizers"][str(vocab)] = entry
    result["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                         "load_1min": round(float(open("/proc/loadavg").read().split()[0]), 2)}
    result["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                   text=True).stdout.strip()
    result["seconds"] = round(time.time() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "records_tokens.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "records_tokens.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return result


def markdown(result: dict) -> str:
    lines = [
        "# Approximate token counter vs offline BPE tokenizers",
        "",
        f"`python -m perf.records_tokens` (git {result['git']}, {result['machine']['platform']}, "
        f"load {result['machine']['load_1min']}). Event blocks of the MIMIC-IV demo in both record styles: "
        f"{result['blocks']['train']:,} blocks of even subject ids train the tokenizers and the fits, "
        f"{result['blocks']['test']:,} blocks ({result['blocks']['test_megabytes']} MB) of odd ones are scored. "
        f"A *record* sums {WINDOW} consecutive blocks (about 8k tokens); ratio = estimate / true count, "
        "so a ratio below 1 is a record the estimate would let exceed its budget.",
        "",
        f"Shipped counter: coefficients {result['shipped']['coefficients']}, margin {result['shipped']['margin']}; "
        f"speed {result['approx_counter_mb_per_s']} MB of text per second (one process).",
        "",
        "| tokenizer (vocab) | tokens/byte | counter | block mean abs err | block p95 | record ratio mean | min | max | records underestimated |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for vocab, entry in result["tokenizers"].items():
        for key, label in (("shipped_counter", "shipped"), ("fitted_no_margin", "fitted to it, no margin")):
            e = entry[key]
            lines.append(f"| BPE {vocab} ({entry['vocab_size']}) | {entry['tokens_per_byte']} | {label} | "
                         f"{e['block_mean_abs_error']} | {e['block_p95_abs_error']} | {e['record_ratio_mean']} | "
                         f"{e['record_ratio_min']} | {e['record_ratio_max']} | {e['records_underestimated']} |")
    lines += ["", "Fitted coefficients (no margin): " + "; ".join(
        f"BPE {v}: {e['fitted_coefficients']}" for v, e in result["tokenizers"].items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
