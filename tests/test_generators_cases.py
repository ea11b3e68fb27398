"""`generate cases` with the template verbalizer: case format, outcomes, card, shards, resume, regeneration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from generators.config import load_config
from generators.pipeline import generate_cases
from graphkit.errors import ConfigError, InputError
from tests.generators_data import (
    CIRRHOSIS,
    COPD,
    INSTRUCTION,
    PORTAL,
    UNEXPLAINED,
    demo_record,
    standard_inputs,
    thinking_graph,
)

SYSTEM = "You are a helpful assistant."


def config(samples: Path, thinking: Path, links: Path, out: Path, **values):
    return load_config({"samples": [samples], "thinking": [thinking], "links": [links], "out": out, **values})


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path, Path]:
    return standard_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def single(inputs, tmp_path_factory):
    """One complete run over the standard inputs (read-only for the tests)."""
    out = tmp_path_factory.mktemp("single") / "out"
    report = generate_cases(config(*inputs, out))
    return out, report


def test_outcomes_per_sample(single):
    out, report = single
    cases = read_jsonl(out / "cases.jsonl")
    assert [c["id"] for c in cases] == ["s-kept:reasoning", "s-kept:direct", "s-partial:direct", "s-nograph:direct",
                                        "s-risk:direct"]  # sample order; test-split sample left out
    (rejected,) = read_jsonl(out / "rejected.jsonl")
    assert (rejected["sample_id"], rejected["reason"], rejected["detail"]) == (
        "s-partial", "low_gold_recall", "3/6 gold items (50% < 70%)")
    assert rejected["text"].startswith("## Extraction\n") and rejected["verbalizer"] == "template"
    tasks = report.card["tasks"]
    assert tasks["diagnoses_icd"]["outcomes"] == {"no_thinking_graph": 1, "reasoning": 1, "rejected": 1}
    assert tasks["LengthOfStay_3day"]["outcomes"] == {"direct_only": 1}


def test_case_rows_follow_the_chat_contract(single):
    out, _ = single
    cases = {c["id"]: c for c in read_jsonl(out / "cases.jsonl")}
    reasoning, direct, risk = cases["s-kept:reasoning"], cases["s-kept:direct"], cases["s-risk:direct"]
    assert set(reasoning) == {"id", "task", "kind", "messages", "enable_thinking", "label", "output_type", "sample_id",
                              "graph_hash"}
    system, user, assistant = reasoning["messages"]
    assert (system, user["role"], assistant["role"]) == ({"role": "system", "content": SYSTEM}, "user", "assistant")
    assert user["content"] == f"{demo_record()}\n{INSTRUCTION}"
    answer = f"{CIRRHOSIS}\n{PORTAL}\n{COPD}"
    assert assistant["content"].startswith("<think>\n## Extraction\n")
    assert assistant["content"].endswith(f"\n</think>\n\n{answer}")
    assert reasoning["enable_thinking"] is True and reasoning["graph_hash"] == "g-test-1"
    assert reasoning["label"] == [CIRRHOSIS, PORTAL, COPD] and reasoning["output_type"] == "set"
    assert direct["messages"][:2] == reasoning["messages"][:2]
    assert direct["messages"][2]["content"] == f"<think>\n\n</think>\n\n{answer}"
    assert direct["enable_thinking"] is False and direct["graph_hash"] == ""
    assert (risk["label"], risk["output_type"], risk["messages"][2]["content"]) == ("no", "binary", "<think>\n\n</think>\n\nno")


def test_training_and_datasets_read_the_cases(single, tmp_path):
    from datasets import load_dataset

    from training.data import CaseStats, read_cases

    out, _ = single
    stats = CaseStats()
    cases = read_cases(out, ["reasoning", "direct"], None, stats)
    assert len(cases) == 5 and stats.graph_hashes == ["g-test-1"]
    assert list(stats.files) == [str(out / "cases.jsonl")]  # rejected.jsonl is not training data
    loaded = load_dataset("json", data_files=str(out / "cases.jsonl"), split="train", cache_dir=str(tmp_path / "hf"))
    assert loaded.num_rows == 5 and loaded[0]["messages"][0]["role"] == "system"


def test_the_card_counts_and_versions(single):
    out, report = single
    card = json.loads((out / "card.json").read_text())
    assert card == report.card
    assert card["totals"]["samples"] == 4 and card["totals"]["reasoning"] == 1 and card["totals"]["direct"] == 4
    assert card["totals"]["rejected"] == {"low_gold_recall": 1}
    assert card["graph_hashes"] == ["g-test-1"] and len(card["config_hash"]) == 16 and card["thinking_hash"]
    assert card["task_versions"] == {"LengthOfStay_3day": [1], "diagnoses_icd": [1]}
    assert card["versions"]["ehr-r1"] and card["verbalizer"] == {"kind": "template", "version": 1}
    assert card["filters"]["min_recall"] == 0.7
    readme = (out / "README.md").read_text()
    assert 'path: "cases.jsonl"' in readme and "| diagnoses_icd | 3 | 1 | 3 | 1 | 1 | 0 | 0 | 1 |" in readme


def test_shards_are_independent_jobs_with_the_same_cases(inputs, single, tmp_path):
    out = tmp_path / "sharded"
    first = generate_cases(config(*inputs, out), shard=(0, 2))
    assert first.card is None and not (out / "card.json").exists()
    second = generate_cases(config(*inputs, out), shard=(1, 2))
    assert second.card is not None
    rows = read_jsonl(out / "cases-00000-of-00002.jsonl") + read_jsonl(out / "cases-00001-of-00002.jsonl")
    single_rows = read_jsonl(single[0] / "cases.jsonl")
    assert sorted(rows, key=lambda r: r["id"]) == sorted(single_rows, key=lambda r: r["id"])
    assert second.card["totals"] == single[1].card["totals"]
    again = generate_cases(config(*inputs, out), shard=(0, 2))
    assert again.shards[0].skipped_complete
    with pytest.raises(ConfigError, match="split into 2 shards"):
        generate_cases(config(*inputs, out), shard=(0, 3))


def test_resume_after_a_torn_journal_line(inputs, single, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(single[0], out)
    journal = out / ".work" / "shard-00000-of-00001" / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + lines[1][: len(lines[1]) // 2])  # killed mid-write of the second sample
    shutil.rmtree(out / ".shards")
    (out / "cases.jsonl").unlink()
    report = generate_cases(config(*inputs, out))
    assert report.shards[0].resumed == 1
    assert (out / "cases.jsonl").read_text() == (single[0] / "cases.jsonl").read_text()
    assert journal.read_bytes().count(b"\n") == 4


def test_settings_or_samples_changed_need_overwrite(inputs, single, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(single[0], out)
    with pytest.raises(ConfigError, match="other settings"):
        generate_cases(config(*inputs, out, filters={"min_recall": 0.5}))
    report = generate_cases(config(*inputs, out, filters={"min_recall": 0.5}), overwrite=True)
    assert report.card["totals"]["reasoning"] == 2 and not (out / "rejected.jsonl").read_text()


def test_only_samples_regenerates_after_the_graphs_changed(inputs, single, tmp_path):
    samples, thinking, links = inputs
    out = tmp_path / "out"
    shutil.copytree(single[0], out)
    # a curator's edit explains the partial sample's remaining gold items: new graph for it
    graphs = [json.loads(line) for line in thinking.read_text().splitlines()]
    for graph in graphs:
        if graph["sample_id"] == "s-partial":
            graph["graph_hash"] = "g-test-2"
            for number, name in enumerate(UNEXPLAINED):
                cui = f"C900000{number}"
                graph["nodes"].append({"cui": cui, "name": name, "semantic_type": "Disease", "role": "target"})
                graph["edges"].append({"edge_id": f"e-new-{number}", "source": "C0023890", "target": cui,
                                       "relation": "ASSOCIATED_WITH", "rela": "", "sab": "", "origin": "curator"})
                graph["paths"][cui] = [["e-ast-liver", "e-cirr-liver", f"e-new-{number}"]]
    changed = tmp_path / "thinking.jsonl"
    changed.write_text("".join(json.dumps(g) + "\n" for g in graphs))
    with pytest.raises(ConfigError, match="thinking graphs changed"):
        generate_cases(config(samples, changed, links, out))
    report = generate_cases(config(samples, changed, links, out), only={"s-partial"})
    cases = read_jsonl(out / "cases.jsonl")
    assert [c["id"] for c in cases] == ["s-kept:reasoning", "s-kept:direct", "s-partial:reasoning", "s-partial:direct",
                                        "s-nograph:direct", "s-risk:direct"]
    partial = next(c for c in cases if c["id"] == "s-partial:reasoning")
    assert partial["graph_hash"] == "g-test-2"
    assert read_jsonl(out / "rejected.jsonl") == []
    assert report.card["graph_hashes"] == ["g-test-1", "g-test-2"]
    kept_before = next(c for c in read_jsonl(single[0] / "cases.jsonl") if c["id"] == "s-kept:reasoning")
    assert next(c for c in cases if c["id"] == "s-kept:reasoning") == kept_before


def test_parquet_direct_only_limit_and_splits(inputs, tmp_path):
    from datasets import load_dataset

    out = tmp_path / "parquet"
    generate_cases(config(*inputs, out, format="parquet", kinds=["direct"], splits=["train", "test"], limit=4))
    rows = load_dataset("parquet", data_files=str(out / "cases.parquet"), split="train", cache_dir=str(tmp_path / "hf"))
    assert rows.num_rows == 4 and set(rows["kind"]) == {"direct"}
    assert rows.features["label"].feature.dtype in ("string", "large_string")  # parquet: always a list of strings
    assert rows[0]["label"] == [CIRRHOSIS, PORTAL, COPD] and rows[3]["label"] == ["no"]


def test_bad_inputs_are_one_line_errors(tmp_path, inputs):
    with pytest.raises(InputError, match="no such file"):
        generate_cases(config(tmp_path / "nope.jsonl", *inputs[1:], tmp_path / "out"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"id": "x", "task": "diagnoses_icd", "split": "train"}) + "\n")
    with pytest.raises(InputError, match="lack column 'input'"):
        generate_cases(config(broken, *inputs[1:], tmp_path / "out"))
    unknown = tmp_path / "unknown.jsonl"
    row = json.loads(inputs[0].read_text().splitlines()[0])
    unknown.write_text(json.dumps({**row, "task": "no_such_task"}) + "\n")
    with pytest.raises(InputError, match="unknown task"):
        generate_cases(config(unknown, *inputs[1:], tmp_path / "out2"))
    with pytest.raises(InputError, match="nothing to regenerate|no cases here"):
        generate_cases(config(*inputs, tmp_path / "fresh"), only={"s-kept"})


def test_thinking_graph_without_paths_is_no_graph(tmp_path, inputs):
    samples, _, links = inputs
    thinking = tmp_path / "thinking.jsonl"
    thinking.write_text(json.dumps({**thinking_graph("s-kept"), "paths": {}}) + "\n")
    report = generate_cases(config(samples, thinking, links, tmp_path / "out"))
    assert report.card["tasks"]["diagnoses_icd"]["outcomes"] == {"no_thinking_graph": 3}
