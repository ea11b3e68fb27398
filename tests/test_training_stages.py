"""Training on CPU with the tiny model: tokenizer and template, truncation, datasets, every stage,
resume, model card, CLI and the demo function. Cases are hand-made rows in the EHR-Ins format
(docs/interfaces.md §6); nothing is downloaded (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from graphkit.errors import InputError  # noqa: E402
from tests.training_data import SYSTEM, case, mixed_cases, record, write_cases  # noqa: E402
from training.data import CaseStats, grpo_dataset, read_cases, sft_dataset  # noqa: E402
from training.truncation import Truncator, split_blocks  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from training.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def cases_file(tmp_path_factory) -> Path:
    return write_cases(tmp_path_factory.mktemp("cases") / "cases.jsonl", mixed_cases())


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _changed(before: dict, after: dict) -> bool:
    return any(not before[name].equal(after[name]) for name in before)


def _metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


# ----- tiny model and tokenizer -------------------------------------------------------------


def test_tiny_model_loads_with_plain_transformers_and_speaks_qwen3(tiny_model, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert model.config.model_type == "qwen3" and model.config.vocab_size == len(tokenizer)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    text = record(3) + "\nWhat next? <think>\nx\n</think>"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    for tag in ("<think>", "</think>", "<|im_start|>", "<|im_end|>"):
        assert len(tokenizer(tag, add_special_tokens=False)["input_ids"]) == 1, tag
    # think tags survive skip_special_tokens (the rewards look for </think>), chat markers do not
    ids = tokenizer("<|im_start|>assistant\n<think>\n\n</think>\n\nyes<|im_end|>")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "assistant\n<think>\n\n</think>\n\nyes"
    prompt = [SYSTEM, {"role": "user", "content": "hi"}]
    off = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    on = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n") and on.endswith("<|im_start|>assistant\n")


def test_assistant_only_loss_masks_exactly_the_assistant_turn(tokenizer):
    from trl.chat_template_utils import get_training_chat_template

    for kind in ("reasoning", "direct"):
        messages = case(0, "diagnosis", kind)["messages"]
        encoded = tokenizer.apply_chat_template(messages, chat_template=get_training_chat_template(tokenizer),
                                                return_assistant_tokens_mask=True, return_dict=True)
        trained = [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if m]
        assert tokenizer.decode(trained) == messages[-1]["content"] + "<|im_end|>\n", kind


# ----- truncation and datasets --------------------------------------------------------------


def test_truncation_drops_the_oldest_events_and_keeps_header_and_instruction(tokenizer):
    messages = case(0, "diagnosis", "reasoning", n_events=30)["messages"]
    full = Truncator(tokenizer, 10**6, add_generation_prompt=False)(messages)
    assert full.fits and full.dropped_blocks == 0 and full.messages == messages
    budget = full.n_tokens // 2
    cut = Truncator(tokenizer, budget, add_generation_prompt=False)(messages)
    assert cut.fits and cut.n_tokens <= budget and cut.dropped_blocks > 0
    text = cut.messages[1]["content"]
    assert text.startswith("## Patient Demographics") and "\n\n## Admission [2180-01-01 09:00:00]" in text
    assert text.endswith("| Potassium | 4.9 | mEq/L |\nList the diagnoses of this admission.")  # newest event kept
    assert "[2180-01-01 08:00:00]" not in text  # the oldest lab is gone
    _, kept_blocks = split_blocks(text)
    assert all(block.count("\n## ") == 1 for block in kept_blocks), "events are never cut in half"
    assert cut.messages[2] == messages[2] and cut.messages[0] == messages[0]
    impossible = Truncator(tokenizer, 20, add_generation_prompt=False)(messages)
    assert not impossible.fits


def test_truncation_also_fits_when_the_template_rewrites_the_record(tokenizer):
    """Block sizes then come from tokenizing each block; the result is still confirmed exactly."""
    template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | replace('## ', '# ') }}<|im_end|>\n{% endfor %}"
    messages = case(0, "diagnosis", "reasoning", n_events=30)["messages"]
    truncator = Truncator(tokenizer, 500, add_generation_prompt=False, chat_template=template)
    many = truncator.fit_many([messages, case(1, "readmission_30d", "direct", n_events=1)["messages"]])
    assert [t.fits for t in many] == [True, True] and many[0].dropped_blocks > 0 and many[1].dropped_blocks == 0
    assert truncator.count(many[0].messages) == many[0].n_tokens <= 500


def test_sft_dataset_fits_max_length_and_counts_what_it_did(tokenizer, tmp_path):
    rows = [case(0, "diagnosis", "reasoning", n_events=40), case(1, "readmission_30d", "direct", n_events=2)]
    path = write_cases(tmp_path / "cases.jsonl", rows)
    dataset, stats = sft_dataset(path, tokenizer, kinds=["reasoning", "direct"], max_length=400, thinking_switch=True)
    assert (stats.rows, stats.used, stats.truncated, stats.too_long) == (2, 2, 1, 0)
    for messages in dataset["messages"]:
        ids = tokenizer.apply_chat_template(messages, tokenize=False)
        assert len(tokenizer(ids, add_special_tokens=False)["input_ids"]) <= 400
    users = [m[1]["content"] for m in dataset["messages"]]
    assert users[0].endswith("\n/think") and users[1].endswith("\n/no_think")
    assert stats.graph_hashes == ["graph-abc123"] and stats.tasks == {"diagnosis": 1, "readmission_30d": 1}


def test_grpo_dataset_drops_the_answer_and_normalizes_labels(tokenizer, cases_file):
    dataset, stats = grpo_dataset(cases_file, tokenizer, kinds=["reasoning", "direct"], max_prompt_length=2000,
                                  thinking_switch=True)
    assert stats.used == 16
    row = dataset[0]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    labels = dict(zip(dataset["output_type"], dataset["label"], strict=True))
    assert labels == {"set": ["Hypertension", "Sepsis"], "binary": ["yes"], "class": ["labevents"]}


def test_grpo_prompts_each_sample_once_thinking_when_it_has_a_reasoning_case(tokenizer, tmp_path):
    both = [case(0, "diagnosis", "reasoning"), case(0, "diagnosis", "direct")]  # a thinking task: two cases
    both[1]["id"] = "case-0-direct"
    rows = [*both, case(1, "readmission_30d", "direct")]  # a risk task: direct only
    dataset, stats = grpo_dataset(write_cases(tmp_path / "c.jsonl", rows), tokenizer, kinds=["reasoning", "direct"],
                                  max_prompt_length=2000, thinking_switch=True)
    assert dataset["id"] == ["case-0", "case-1"] and stats.same_sample == 1
    assert [p[-1]["content"].rsplit("\n", 1)[1] for p in dataset["prompt"]] == ["/think", "/no_think"]


def test_case_rows_are_validated_with_file_row_and_column(tmp_path):
    bad = case(0, "diagnosis", "reasoning")
    bad["kind"] = "cot"
    path = write_cases(tmp_path / "bad.jsonl", [case(1, "diagnosis", "direct"), bad])
    with pytest.raises(InputError, match=r"bad.jsonl row 2 column kind: kind must be 'reasoning' or 'direct'"):
        read_cases(path, ["reasoning", "direct"], None, CaseStats())
    missing = case(0, "diagnosis", "direct")
    del missing["label"]
    with pytest.raises(InputError, match=r"row 1: missing column 'label'"):
        read_cases(write_cases(tmp_path / "missing.jsonl", [missing]), ["direct"], None, CaseStats())
    (tmp_path / "broken.jsonl").write_text('{"id": 1,\n')
    with pytest.raises(InputError, match=r"broken.jsonl line 1: not valid JSON"):
        read_cases(tmp_path / "broken.jsonl", ["direct"], None, CaseStats())
    with pytest.raises(InputError, match=r"no cases of kind reasoning"):
        read_cases(write_cases(tmp_path / "direct.jsonl", [case(0, "diagnosis", "direct")]), ["reasoning"], None,
                   CaseStats())


def test_parquet_cases_with_list_labels(tmp_path):
    import polars as pl

    rows = [case(0, "diagnosis", "direct"), case(1, "readmission_30d", "reasoning")]
    rows = [{**row, "label": row["label"] if isinstance(row["label"], list) else [row["label"]]} for row in rows]
    pl.DataFrame(rows).write_parquet(tmp_path / "cases.parquet")
    read = read_cases(tmp_path / "cases.parquet", ["reasoning", "direct"], None, CaseStats())
    assert [c["label"] for c in read] == [["Hypertension", "Sepsis"], ["yes"]]
    assert read[1]["messages"][-1]["content"].startswith("<think>\n## Extraction")


def test_a_case_directory_reads_the_generated_cases_only(tmp_path):
    out = tmp_path / "out"
    write_cases(out / "cases-00000-of-00002.jsonl", [case(0, "diagnosis", "direct")])
    write_cases(out / "cases-00001-of-00002.jsonl", [case(1, "diagnosis", "direct")])
    write_cases(out / "rejected-00000-of-00002.jsonl", [case(2, "diagnosis", "direct")])
    write_cases(out / "notes.jsonl", [case(3, "diagnosis", "direct")])
    (out / "generation.json").write_text("{}")
    with pytest.raises(InputError, match=r"generation is not complete.*fix: finish every shard"):
        read_cases(out, ["direct"], None, CaseStats())
    (out / "card.json").write_text("{}")
    stats = CaseStats()
    assert [c["id"] for c in read_cases(out, ["direct"], None, stats)] == ["case-0", "case-1"]
    assert len(stats.files) == 2
    other = tmp_path / "other"
    write_cases(other / "mine.jsonl", [case(4, "diagnosis", "direct")])
    write_cases(other / "rejected.jsonl", [case(5, "diagnosis", "direct")])
    assert [c["id"] for c in read_cases(other, ["direct"], None, CaseStats())] == ["case-4"]


# ----- stages -------------------------------------------------------------------------------


def test_dapt_through_the_cli_trains_logs_and_writes_the_card(cli, workspace_dir, tiny_model, cases_file):
    out = workspace_dir / "runs" / "dapt"
    result = cli("train", "dapt", "--recipe", "tiny/dapt/cpu", f"model_name_or_path={tiny_model}",
                 f"dataset_path={cases_file}", f"output_dir={out}", "max_steps=3", "save_strategy=no")
    assert result.exit_code == 0, result.output
    assert "dapt: 3 steps" in result.output
    losses = [row["loss"] for row in _metrics(out) if "loss" in row]
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    assert _changed(_weights(tiny_model), _weights(out))
    card = json.loads((out / "training_card.json").read_text())
    assert card["stage"] == "dapt" and card["data"]["kinds"] == {"direct": 8}  # direct cases only
    assert card["data"]["graph_hashes"] == ["graph-abc123"] and len(card["data"]["data_hash"]) == 16
    assert card["recipe"]["values"]["max_steps"] == 3 and len(card["recipe"]["values_hash"]) == 16
    assert card["base_model"]["stage"] == "tiny-random-qwen3" and card["base_model"]["card_hash"]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(out)
    assert AutoTokenizer.from_pretrained(out).chat_template


def test_sft_resumes_from_its_checkpoint(tiny_model, cases_file, tmp_path):
    from training.config import load_recipe
    from training.run import train

    out = tmp_path / "sft"
    overrides = {"model_name_or_path": str(tiny_model), "dataset_path": str(cases_file), "output_dir": str(out),
                 "save_steps": 2}
    first = train(load_recipe("tiny/sft/cpu", "sft", {**overrides, "max_steps": 2}))
    assert first.global_step == 2 and first.resumed_from is None and (out / "checkpoint-2").is_dir()
    with open(out / "metrics.jsonl", "a") as handle:  # a step logged after the last checkpoint, then killed
        handle.write(json.dumps({"step": 3, "loss": 99.0}) + "\n")
    second = train(load_recipe("tiny/sft/cpu", "sft", {**overrides, "max_steps": 4}))
    assert second.global_step == 4 and second.resumed_from.endswith("checkpoint-2")
    steps = [row["step"] for row in _metrics(out) if "loss" in row]
    assert steps == [1, 2, 3, 4] and 99.0 not in [row["loss"] for row in _metrics(out) if "loss" in row]
    assert _changed(_weights(tiny_model), _weights(out))
    from graphkit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"output_dir already holds checkpoints and resume is off"):
        train(load_recipe("tiny/sft/cpu", "sft", {**overrides, "max_steps": 4, "resume": False}))


def test_grpo_updates_the_policy_when_rewards_differ(tiny_model, cases_file, tmp_path, monkeypatch):
    """The tiny random model never closes </think>, so the real rewards are all 0 (no gradient);
    a reward on completion length checks the GRPO update itself."""
    from training import rewards
    from training.config import load_recipe
    from training.run import train

    def length_reward(completions, label, **kw):
        return [len(rewards.completion_text(c)) / 100 for c in completions]

    monkeypatch.setitem(rewards.REWARDS, "length", length_reward)
    out = tmp_path / "grpo"
    result = train(load_recipe("tiny/grpo/cpu", "grpo", {
        "model_name_or_path": str(tiny_model), "dataset_path": str(cases_file), "output_dir": str(out),
        "rewards": ["length"], "max_steps": 2, "save_strategy": "no", "beta": 0.0}))
    assert result.global_step == 2
    logged = [row for row in _metrics(out) if "reward" in row]
    assert len(logged) == 2 and any(row["reward_std"] > 0 for row in logged)
    assert _changed(_weights(tiny_model), _weights(out))


def test_demo_function_runs_sft_then_grpo_with_the_real_rewards(tiny_model, cases_file, tmp_path):
    from transformers import AutoModelForCausalLM

    from training.demo import tiny_sft_grpo

    final = tiny_sft_grpo(cases_file, tmp_path / "demo", base_model=tiny_model, sft_steps=2, grpo_steps=1)
    assert final == tmp_path / "demo" / "grpo"
    # what an evaluator does with it: plain transformers, chat template with thinking off, generate
    from transformers import AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(final), AutoTokenizer.from_pretrained(final)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": record(2) + "\nAnswer."}],
                                           add_generation_prompt=True, enable_thinking=False, return_tensors="pt",
                                           return_dict=True)
    generated = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]
    logged = _metrics(final)[0]
    assert "rewards/set_f1_reward/mean" in logged and "rewards/accuracy_reward/mean" in logged
    card = json.loads((final / "training_card.json").read_text())
    assert card["stage"] == "grpo" and card["base_model"]["stage"] == "sft"


def test_cli_builds_the_tiny_model(cli, tmp_path):
    result = cli("train", "tiny-model", tmp_path / "tiny", "--vocab-size", "600", "--layers", "1")
    assert result.exit_code == 0, result.output
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(tmp_path / "tiny").num_hidden_layers == 1


def test_optional_loggers_are_named_when_missing(tiny_model, cases_file, tmp_path):
    from graphkit.errors import ExtraMissingError
    from graphkit.extras import available
    from training.config import load_recipe
    from training.run import train

    if available("tensorboard"):
        pytest.skip("tensorboard is installed here")
    recipe = load_recipe("tiny/sft/cpu", "sft", {"model_name_or_path": str(tiny_model), "dataset_path": str(cases_file),
                                                 "output_dir": str(tmp_path / "tb"), "report_to": "tensorboard"})
    with pytest.raises(ExtraMissingError, match=r"report_to: report_to includes tensorboard.*pip install tensorboard"):
        train(recipe)

