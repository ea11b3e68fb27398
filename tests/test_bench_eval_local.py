"""`bench eval` in-process: the tiny local transformers model end to end, and the vLLM glue
against a stand-in ``vllm`` module (this machine has no GPU; the real engine test is marked gpu)."""

from __future__ import annotations

import json
import math
import sys
import types

import pytest

from bench.evaluate import EvalConfig, evaluate, load_run, parse_model_spec
from bench.evaluate.prompts import messages
from tests.bench_eval_data import ROWS, marker_of, write_build


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A random tiny Qwen3 whose tokenizer is trained on the hand-made records (seconds, no download)."""
    from training.tiny import TinyModelSpec, build_tiny_model

    corpus = [row["input"] + "\n" + row["instruction"] for rows in ROWS.values() for split in rows().values()
              for row in split] * 5 + ["yes", "no", "<think>\n\n</think>\n\n"]
    spec = TinyModelSpec(vocab_size=600, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                         num_key_value_heads=1, max_position_embeddings=4096)
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", spec, corpus=corpus)


@pytest.fixture()
def data(tmp_path):
    return write_build(tmp_path / "bench", fmt="parquet")


def manual_p_yes(model_dir, row) -> float:
    """P(yes) computed the plain way: one prompt at a time, no padding."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    text = tokenizer.apply_chat_template(messages(row["input"], row["instruction"], thinking=False, output_type="binary"),
                                         add_generation_prompt=True, tokenize=False, enable_thinking=False)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    yes, no = (tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("yes", "no"))
    with torch.no_grad():
        logits = model(**ids).logits[0, -1]
    return float(torch.softmax(logits[[yes, no]], -1)[0])


def test_tiny_local_model_end_to_end(tiny_model, data, tmp_path):
    run = evaluate(data, parse_model_spec(str(tiny_model), {"device": "cpu"}), tmp_path / "run",
                   EvalConfig(max_new_tokens=6, n_resamples=50), concurrency=3)
    tasks = run.results["tasks"]
    assert run.failed == 0 and run.asked == 8
    risk = tasks["Inpatient_Mortality"]
    assert risk["p_yes_sources"] == {"logits": 4} and risk["n_scored"] == 4
    assert 0.0 <= risk["metrics"]["auroc"]["point"] <= 1.0
    entries = {e["id"]: e for e in load_run(tmp_path / "run").predictions()}
    rows = {r["id"]: r for r in ROWS["Inpatient_Mortality"]()["test"]}
    for sample_id, row in rows.items():  # batched with left padding == one prompt at a time
        assert entries[sample_id]["p_yes"] == pytest.approx(manual_p_yes(tiny_model, row), abs=1e-4)
        assert entries[sample_id]["answer"] == ("yes" if entries[sample_id]["p_yes"] >= 0.5 else "no")
    # six random tokens never close a think block: scored 0 and counted, not failed
    lab = tasks["labevents"]
    assert lab["n_no_answer"] == lab["n"] == 2 and lab["metrics"]["f1"]["point"] == 0.0
    assert all(isinstance(entries[i]["completion"], str) for i in entries)
    backend = run.results["model"]["backend"]
    assert backend["device"] == "cpu" and len(backend["fingerprint"]) == 16 and "config.json" in backend["files"]


def test_direct_answers_are_scored_whole_and_greedy_is_deterministic(tiny_model, data, tmp_path):
    config = EvalConfig(direct=True, max_new_tokens=4, tasks=("next_event",), n_resamples=10)
    first = evaluate(data, parse_model_spec(f"hf:{tiny_model}"), tmp_path / "a", config, concurrency=2)
    second = evaluate(data, parse_model_spec(f"hf:{tiny_model}"), tmp_path / "b", config, concurrency=1)
    completions = [[e["completion"] for e in load_run(run.out).predictions()] for run in (first, second)]
    assert completions[0] == completions[1]
    assert first.results["tasks"]["next_event"]["n_no_answer"] == 0  # thinking off: the whole text is the answer


def test_logit_bias_uses_the_tokenizer_ids(tiny_model, data, tmp_path):
    from transformers import AutoTokenizer

    from generators.mockserver import MockOpenAIServer
    from tests.test_bench_eval_endpoint import recorder

    bodies: list[dict] = []
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    expected = {str(tokenizer(w, add_special_tokens=False)["input_ids"][0]): 100 for w in ("yes", "no")}
    with MockOpenAIServer(recorder(bodies), model="m") as server:
        run = evaluate(data, parse_model_spec(f"openai:{server.base_url}@m", {"tokenizer": str(tiny_model)}),
                       tmp_path / "run", EvalConfig(tasks=("Inpatient_Mortality",), n_resamples=10))
    assert len(bodies) == 4 and all(b["logit_bias"] == expected for b in bodies)
    assert run.results["model"]["backend"]["logit_bias"] is True


def stand_in_vllm(calls: dict, tokenizer) -> types.ModuleType:
    module = types.ModuleType("vllm")

    class SamplingParams:
        def __init__(self, **kwargs):
            calls.setdefault("sampling", []).append(kwargs)
            self.kwargs = kwargs

    class Logprob:
        def __init__(self, logprob):
            self.logprob = logprob

    class Completion:
        def __init__(self, text, logprobs=None):
            self.text, self.logprobs = text, logprobs

    class LLM:
        def __init__(self, **kwargs):
            calls["engine"] = kwargs
            calls["batches"] = []

        def get_tokenizer(self):
            return tokenizer

        def chat(self, conversations, sampling_params, use_tqdm=True, chat_template_kwargs=None):
            calls["batches"].append((len(conversations), chat_template_kwargs, sampling_params.kwargs.get("max_tokens")))
            outputs = []
            for conversation in conversations:
                if sampling_params.kwargs.get("max_tokens") == 1:
                    p = marker_of({"messages": conversation})
                    yes, no = sampling_params.kwargs["allowed_token_ids"]
                    listed = {yes: Logprob(math.log(p)), no: Logprob(math.log(1 - p)), 7: Logprob(-20.0)}
                    outputs.append(types.SimpleNamespace(outputs=[Completion("yes", [listed])]))
                else:
                    outputs.append(types.SimpleNamespace(outputs=[Completion("<think>\nx\n</think>\n\nSodium")]))
            return outputs

    module.LLM, module.SamplingParams = LLM, SamplingParams
    return module


def test_vllm_glue_batches_restricts_and_reads_log_probabilities(tiny_model, data, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    calls: dict = {}
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    monkeypatch.setitem(sys.modules, "vllm", stand_in_vllm(calls, tokenizer))
    spec = parse_model_spec(f"vllm:{tiny_model}", {"tensor_parallel_size": 2, "max_model_len": 4096})
    run = evaluate(data, spec, tmp_path / "run", EvalConfig(max_new_tokens=64, seed=3, n_resamples=10), concurrency=3)
    assert calls["engine"] == {"model": str(tiny_model), "tensor_parallel_size": 2, "gpu_memory_utilization": 0.9,
                               "dtype": "auto", "seed": 3, "max_model_len": 4096, "logprobs_mode": "processed_logprobs"}
    # tasks in folder order; batches never mix modes: 3 + 1 risk (no thinking), then 2 lab + 2 next-event
    assert calls["batches"] == [(3, {"enable_thinking": False}, 1), (1, {"enable_thinking": False}, 1),
                                (3, {"enable_thinking": True}, 64), (1, {"enable_thinking": True}, 64)]
    yes, no = (tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("yes", "no"))
    risk_params = [c for c in calls["sampling"] if c.get("max_tokens") == 1][0]
    assert risk_params["allowed_token_ids"] == [yes, no] and risk_params["logprobs"] == 20
    risk = run.results["tasks"]["Inpatient_Mortality"]
    assert risk["metrics"]["auroc"]["point"] == pytest.approx(0.75) and risk["p_yes_sources"] == {"logprobs": 4}
    assert run.results["tasks"]["labevents"]["metrics"]["f1"]["point"] == pytest.approx((2 / 3 + 0) / 2)


def test_vllm_without_the_extra_names_the_install(tiny_model, data, tmp_path, monkeypatch):
    from graphkit.errors import ExtraMissingError

    monkeypatch.setitem(sys.modules, "vllm", None)  # as if the extra were not installed
    with pytest.raises(ExtraMissingError, match=r"ehr-r1\[vllm\]"):
        evaluate(data, parse_model_spec(f"vllm:{tiny_model}"), tmp_path / "run", EvalConfig(n_resamples=10))
    # the finished part of a run is never lost: nothing was asked, the folder resumes later
    assert json.loads((tmp_path / "run" / "run.json").read_text())["name"] == f"vllm:{tiny_model}"


@pytest.mark.gpu
def test_real_vllm_engine_on_the_tiny_model(tiny_model, data, tmp_path):
    pytest.importorskip("vllm")
    run = evaluate(data, parse_model_spec(f"vllm:{tiny_model}", {"gpu_memory_utilization": 0.3}), tmp_path / "run",
                   EvalConfig(max_new_tokens=8, n_resamples=10))
    risk = run.results["tasks"]["Inpatient_Mortality"]
    assert run.failed == 0 and risk["n_scored"] == 4 and set(risk["p_yes_sources"]) <= {"logprobs", "logprobs_bound"}
