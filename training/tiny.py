"""A tiny random-init Qwen3-architecture model with a tokenizer trained on local text.

Tests and the demo train on it so that nothing is ever downloaded from a model hub. The
tokenizer is a byte-level BPE trained on the MIMIC-IV demo's dictionary labels (the items the
demo patients actually have) plus generated record-shaped text, and carries the Qwen3 chat
template with thinking on/off, so every code path that runs on Qwen3 runs on it unchanged.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from graphkit import __version__
from graphkit.atomic import atomic_dir
from graphkit.errors import ConfigError, InputError
from graphkit.extras import require
from graphkit.hashing import config_hash

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parents[1] / "graphkit" / "data" / "mimic-iv-demo"

# Qwen3's control tokens: the first three are special (skipped when decoding), the think tags are
# plain added tokens so that they survive decoding, as in the real Qwen3 tokenizer.
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
THINK_TOKENS = ("<think>", "</think>")

# (file, code columns, label column) for the dictionaries whose labels appear in serialized records
_DICTIONARIES = (
    ("hosp/d_icd_diagnoses.csv.gz", ("icd_version", "icd_code"), "long_title", "hosp/diagnoses_icd.csv.gz"),
    ("hosp/d_icd_procedures.csv.gz", ("icd_version", "icd_code"), "long_title", "hosp/procedures_icd.csv.gz"),
    ("hosp/d_labitems.csv.gz", ("itemid",), "label", None),
    ("icu/d_items.csv.gz", ("itemid",), "label", None),
)
_EVENT_HEADINGS = (
    "Patient Demographics", "Admissions", "Transfers", "Services", "Laboratory Test Events",
    "Microbiology Test Events", "Prescriptions", "Pharmacy", "Provider Order Entry",
    "Electronic Medicine Administration Record", "Diagnoses", "Procedures", "ICU Stays",
    "Input Events", "Output Events", "Procedure Events", "Datetime Events", "Ingredient Events",
)


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of the tiny model; the defaults train a few steps per second on two CPU cores."""

    vocab_size: int = 2048
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 16
    max_position_embeddings: int = 32768
    seed: int = 0

    def validate(self) -> None:
        if self.vocab_size < 512:
            raise ConfigError("the tokenizer needs room for the byte alphabet and merges", where="tiny model vocab_size",
                              value=self.vocab_size, fix="use a vocab_size of at least 512")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError("num_attention_heads must be a multiple of num_key_value_heads",
                              where="tiny model num_key_value_heads", value=self.num_key_value_heads,
                              fix=f"use a divisor of {self.num_attention_heads}")


def _read_csv(path: Path) -> Iterator[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def demo_corpus(demo_dir: Path = DEMO_DIR) -> Iterator[str]:
    """Dictionary labels of the items the demo patients have, then generated record-shaped text."""
    if not (demo_dir / "hosp").is_dir():
        raise InputError("not a MIMIC-IV directory (no hosp/ folder)", where=str(demo_dir),
                         fix="point at the bundled demo graphkit/data/mimic-iv-demo or a MIMIC-IV copy")
    labels: list[str] = []
    for dictionary, key_columns, label_column, usage in _DICTIONARIES:
        path = demo_dir / dictionary
        if not path.exists():
            continue
        used = None
        if usage and (demo_dir / usage).exists():
            used = {tuple(row[c] for c in key_columns) for row in _read_csv(demo_dir / usage)}
        for row in _read_csv(path):
            if used is None or tuple(row[c] for c in key_columns) in used:
                labels.append(row[label_column])
    if (demo_dir / "hosp/prescriptions.csv.gz").exists():
        labels.extend(sorted({row["drug"] for row in _read_csv(demo_dir / "hosp/prescriptions.csv.gz")}))
    labels = [label for label in labels if label]
    yield from labels
    yield from _generated_records(labels)


def _generated_records(labels: list[str], n_records: int = 400, seed: int = 0) -> Iterator[str]:
    """Record-shaped text (headings, timestamps, tables, answers) so the merges fit the serializer's format."""
    rng = random.Random(seed)
    for _ in range(n_records):
        year, month, day = rng.randint(2110, 2200), rng.randint(1, 12), rng.randint(1, 28)
        blocks = [f"## Patient Demographics\n- Age: {rng.randint(18, 91)}\n- Gender: {rng.choice(['Male', 'Female'])}"]
        for _ in range(rng.randint(2, 6)):
            stamp = f"{year}-{month:02d}-{day:02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00"
            rows = "\n".join(
                f"| {rng.choice(labels)} | {rng.uniform(0, 200):.1f} | mg/dL | {rng.choice(['normal', 'abnormal'])} |"
                for _ in range(rng.randint(1, 4))
            )
            blocks.append(f"## {rng.choice(_EVENT_HEADINGS)} [{stamp}]\n| Item Name | Value | Unit | Flag |\n"
                          f"| ------ | ------ | ------ | ------ |\n{rows}")
        answers = "\n".join(rng.sample(labels, k=min(3, len(labels))))
        yield ("\n\n".join(blocks) + "\nBased on the record, list the most likely items.\n"
               f"<think>\n## Extraction\n## Reasoning\n## Final Results\n</think>\n\n{answers}\n"
               f"Will the patient be readmitted within 30 days? {rng.choice(['yes', 'no'])}")


def train_tokenizer(corpus: Iterable[str], vocab_size: int):
    """A byte-level BPE (digits split one by one, as Qwen does) wrapped as a transformers fast tokenizer."""
    tokenizers = require("tokenizers", "train", "training the tiny tokenizer")
    transformers = require("transformers", "train", "training the tiny tokenizer")
    chat_template_utils = require("trl.chat_template_utils", "train", "the Qwen3 chat template")

    model = tokenizers.Tokenizer(tokenizers.models.BPE())
    model.pre_tokenizer = tokenizers.pre_tokenizers.Sequence([
        tokenizers.pre_tokenizers.Digits(individual_digits=True),
        tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    model.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    model.train_from_iterator(corpus, trainer=trainer)
    model.add_tokens([tokenizers.AddedToken(token, normalized=False, special=False) for token in THINK_TOKENS])

    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=model,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=131072,
    )
    tokenizer.chat_template = chat_template_utils.qwen3_chat_template
    return tokenizer


def build_tiny_model(out: str | Path, spec: TinyModelSpec = TinyModelSpec(), demo_dir: Path = DEMO_DIR,
                     corpus: Iterable[str] | None = None) -> Path:
    """Write a random-init Qwen3-architecture model and its tokenizer to ``out`` (replaced atomically).

    The result loads with plain ``AutoModelForCausalLM.from_pretrained(out)`` and
    ``AutoTokenizer.from_pretrained(out)``.
    """
    spec.validate()
    torch = require("torch", "train", "building the tiny model")
    transformers = require("transformers", "train", "building the tiny model")

    out = Path(out)
    tokenizer = train_tokenizer(corpus if corpus is not None else demo_corpus(demo_dir), spec.vocab_size)
    torch.manual_seed(spec.seed)
    config = transformers.Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        head_dim=spec.head_dim,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    model = transformers.Qwen3ForCausalLM(config)
    model.generation_config = transformers.GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id,
    )
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        card = {
            "kind": "tiny-random-qwen3",
            "spec": asdict(spec),
            "spec_hash": config_hash(asdict(spec)),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer),
            "ehr_r1_version": __version__,
        }
        (tmp / "training_card.json").write_text(json.dumps(card, indent=2) + "\n")
        (tmp / "README.md").write_text(
            "# tiny random Qwen3 (ehr-r1)\n\nRandom weights for tests and the demo; it knows nothing.\n\n"
            f"```json\n{json.dumps(card, indent=2)}\n```\n"
        )
    log.info("tiny model (%d parameters, vocab %d) written to %s", card["n_parameters"], len(tokenizer), out)
    return out
