"""`ehr-r1 generate cases` and `ehr-r1 generate preview` through the root CLI."""

from __future__ import annotations

import json

from generators.mockserver import MockOpenAIServer, compliant_responder
from tests.generators_data import CIRRHOSIS, many_inputs, standard_inputs


def test_cases_writes_the_dataset_and_prints_the_counts(cli, workspace_dir, tmp_path):
    samples, thinking, links = standard_inputs(tmp_path / "in")
    result = cli("generate", "cases", "--samples", samples, "--thinking", thinking, "--links", links)
    assert result.exit_code == 0, result.output
    out = workspace_dir / "datasets" / "ehr-ins"
    assert (out / "cases.jsonl").exists() and (out / "card.json").exists()
    assert "1 reasoning + 4 direct cases" in result.output and '"low_gold_recall": 1' in result.output
    again = cli("generate", "cases", "--samples", samples, "--thinking", thinking, "--links", links)
    assert "already complete" in again.output


def test_cases_over_a_local_openai_endpoint(cli, workspace_dir, tmp_path):
    samples, thinking, links = many_inputs(tmp_path / "in", 3)
    with MockOpenAIServer(compliant_responder, model="served/model") as server:
        result = cli("generate", "cases", "--samples", samples, "--thinking", thinking, "--links", links, "--verbalizer", "openai",
                     "--model", "served/model", "--base-url", server.base_url, "--param", "max_tokens=512",
                     "--param", "top_k=20", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "out" / "card.json").read_text())
    assert card["verbalizer"]["params"] == {"temperature": 0.5, "max_tokens": 512, "top_k": 20}
    assert card["totals"]["reasoning"] == 3
    assert (workspace_dir / "cache" / "generate" / "responses.sqlite").exists()


def test_shard_option_and_bad_values(cli, workspace_dir, tmp_path):
    samples, thinking, links = standard_inputs(tmp_path / "in")
    first = cli("generate", "cases", "--samples", samples, "--thinking", thinking, "--links", links, "--shard", "0/2")
    assert first.exit_code == 0 and "waiting for the other shards" in first.output
    bad = cli("generate", "cases", "--samples", samples, "--shard", "2/2")
    assert bad.exit_code == 2 and bad.output.startswith("error: option --shard:")
    missing = cli("generate", "cases")
    assert missing.exit_code == 2 and "--samples" in missing.output
    wrong_kind = cli("generate", "cases", "--samples", samples, "--kind", "thoughts")
    assert wrong_kind.exit_code == 2 and "generation setting kinds" in wrong_kind.output


def test_only_samples_reads_an_id_file(cli, workspace_dir, tmp_path):
    samples, thinking, links = standard_inputs(tmp_path / "in")
    assert cli("generate", "cases", "--samples", samples, "--thinking", thinking, "--links", links).exit_code == 0
    ids = tmp_path / "ids.txt"
    ids.write_text("s-kept\n")
    result = cli("generate", "cases", "--samples", samples, "--thinking", thinking, "--links", links, "--only-samples", ids)
    assert result.exit_code == 0, result.output
    assert "4 samples, 3 resumed from the journal, complete" in result.output


def test_preview_prints_prompt_reasoning_verdict_and_cases(cli, workspace_dir, tmp_path):
    samples, thinking, links = standard_inputs(tmp_path / "in")
    result = cli("generate", "preview", "--task", "diagnoses_icd", "--samples", samples, "--thinking", thinking, "--links", links)
    assert result.exit_code == 0, result.output
    text = result.output
    order = ["PROMPT [user]", "# Ground Truth #", "VERBALIZATION 0: kept (kept)", "## Final Results",
             "CASE s-kept:reasoning", "--- assistant\n<think>\n## Extraction", "CASE s-kept:direct"]
    position = 0
    for part in order:  # each part after the previous one
        position = text.index(part, position) + len(part)
    as_json = cli("generate", "preview", "--task", "diagnoses_icd", "--samples", samples, "--thinking", thinking, "--links", links,
                  "--sample-id", "s-partial", "--json")
    preview = json.loads(as_json.output)
    assert preview["sample_id"] == "s-partial" and preview["verdicts"][0]["reason"] == "low_gold_recall"
    assert [c["kind"] for c in preview["cases"]] == ["direct"]
    assert CIRRHOSIS in preview["prompt"][0]["content"]


def test_preview_without_a_graph_and_with_an_unknown_task(cli, workspace_dir, tmp_path):
    samples, _, _ = standard_inputs(tmp_path / "in")
    result = cli("generate", "preview", "--task", "LengthOfStay_3day", "--samples", samples, "--split", "train")
    assert result.exit_code == 0 and "NOTE: this sample has no thinking graph" in result.output
    missing = cli("generate", "preview", "--task", "no_such_task", "--samples", samples)
    assert missing.exit_code == 2 and missing.output.startswith("error: task no_such_task: no sample to preview")
