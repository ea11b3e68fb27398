"""Session fixtures shared by every test module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# An embedded graph server normally lingers after its last user closes it (so the next CLI call
# is fast); under tests that would leave servers and reaper processes alive after the run.
os.environ.setdefault("EHR_R1_GRAPH_LINGER", "0")

REPO = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO / "graphkit" / "data" / "mimic-iv-demo"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    """The genuine MIMIC-IV Clinical Database Demo 2.2 bundled with the package (read-only)."""
    return DEMO_DIR


@pytest.fixture()
def workspace_dir(tmp_path, monkeypatch) -> Path:
    """A fresh workspace, also exported as EHR_R1_WORKSPACE for CLI calls."""
    ws = tmp_path / "ws"
    monkeypatch.setenv("EHR_R1_WORKSPACE", str(ws))
    return ws


@pytest.fixture()
def cli():
    """Invoke the root CLI in-process: cli("ehr", "check", path) -> click Result."""
    from typer.testing import CliRunner

    from ehr_r1.cli import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def demo_graph(tmp_path_factory):
    """The open demo graph, built once per session by graphkit.kg (tests/kg_data.py: DemoGraph).

    ``.store`` is an open embedded store on it, ``.workspace`` its workspace, ``.result`` the
    BuildResult, ``.links_dir`` the link table. Tests that change the graph must restore it.
    """
    from tests.kg_data import built_demo_graph

    with built_demo_graph(tmp_path_factory.mktemp("demo-graph")) as graph:
        yield graph
