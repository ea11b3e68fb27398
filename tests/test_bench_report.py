"""`bench report`: markdown, JSON and PNG files from model and baseline runs, well-formed and true
to the runs' own numbers."""

from __future__ import annotations

import json

import pytest

from bench.baselines import run_baselines
from bench.evaluate import EvalConfig, evaluate, parse_model_spec
from bench.report import write_report
from generators.mockserver import Fault, MockOpenAIServer
from graphkit.errors import InputError
from tests.bench_eval_data import write_build
from tests.test_bench_eval_endpoint import responder

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    data = write_build(root / "bench")
    run_baselines(data, root / "baselines", n_resamples=50)
    fail_once = {3: Fault("status", status=400)}
    with MockOpenAIServer(responder, model="m", fault=lambda n, body: fail_once.get(n)) as server:
        evaluate(data, parse_model_spec(f"openai:{server.base_url}@m", {"backoff": 0}), root / "model",
                 EvalConfig(n_resamples=50), concurrency=1)
    return root


def png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_report_files_are_written_and_well_formed(runs, tmp_path):
    folders = [runs / "baselines" / "most-frequent", runs / "baselines" / "repeat-last", runs / "baselines" / "logreg",
               runs / "model"]
    data = write_report(folders, tmp_path / "report", title="Hand-made")
    out = tmp_path / "report"
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "roc.png", "scores-decision.png",
                                                     "scores-risk.png"]
    for name in ("roc.png", "scores-decision.png", "scores-risk.png"):
        width, height = png_size(out / name)
        assert width > 300 and height > 150
    from matplotlib import image

    assert image.imread(out / "roc.png").ndim == 3  # decodes
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["plots"] == ["scores-decision.png", "scores-risk.png", "roc.png"] == data["plots"]
    assert [r["label"] for r in on_disk["runs"]] == ["most-frequent", "repeat-last", "logreg", data["runs"][3]["label"]]
    model_label = data["runs"][3]["label"]
    model_results = json.loads((runs / "model" / "results.json").read_text())
    lab = on_disk["tasks"]["labevents"]
    assert lab["primary"] == "f1" and "logreg" not in lab["runs"]
    assert lab["runs"][model_label]["metrics"] == model_results["tasks"]["labevents"]["metrics"]
    assert list(on_disk["tasks"]) == ["labevents", "next_event", "Inpatient_Mortality"]  # decision first

    markdown = (out / "report.md").read_text()
    assert markdown.startswith("# Hand-made\n")
    assert "| labevents | 2 | 0.583 [" in markdown  # most-frequent: (1/2 + 2/3) / 2
    assert "| Inpatient_Mortality | 4 | – | – | 1.000 [" in markdown  # only logreg and the model score it
    assert "(1 failed)" in markdown and "1 sample(s) failed" in markdown
    assert "`Inpatient_Mortality` (a decision-task baseline)" in markdown
    assert "![roc.png](roc.png)" in markdown
    table_lines = [line for line in markdown.splitlines() if line.startswith("| labevents |")]
    assert len(table_lines) == 1 and table_lines[0].count("|") == 2 + 1 + 4


def test_runs_on_other_data_are_flagged_and_same_names_told_apart(runs, tmp_path):
    other = write_build(tmp_path / "other", ("labevents",))
    (other / "card.json").write_text(json.dumps({"config_hash": "different"}))
    run_baselines(other, tmp_path / "b", ["most-frequent"], n_resamples=10)
    data = write_report([runs / "baselines" / "most-frequent", tmp_path / "b" / "most-frequent"], tmp_path / "r")
    assert [r["label"] for r in data["runs"]] == ["most-frequent [1]", "most-frequent [2]"]
    assert any("different data" in w for w in data["warnings"])
    assert not (tmp_path / "r" / "roc.png").exists() and not (tmp_path / "r" / "scores-risk.png").exists()


def test_unfinished_or_foreign_folders_are_refused(runs, tmp_path):
    with pytest.raises(InputError, match="no results.json"):
        write_report([tmp_path], tmp_path / "r")
    with pytest.raises(InputError, match="no runs given"):
        write_report([], tmp_path / "r")


def test_the_cli_writes_the_report(cli, runs, tmp_path):
    result = cli("bench", "report", runs / "baselines" / "logreg", runs / "model", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert "2 run(s)" in result.output and (tmp_path / "r" / "report.md").exists()
    assert "warning:" in result.output and "failed" in result.output
