"""`graph build` on a tiny release + the MIMIC-IV demo: steps, no-op, resume after SIGKILL, bad input, hooks."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap

import polars as pl
import pytest

from graphkit.errors import ConfigError, GraphError, InputError
from graphkit.kg import BuildConfig, build_graph, graph_info, register_post_build, unregister_post_build
from graphkit.kg.build import BuildPaths, load_graph, read_state
from graphkit.store import open_store
from graphkit.store.vocab import edge_id
from graphkit.workspace import Workspace
from tests.kg_data import TINY_CONCEPTS, write_tiny_release
from tests.store_data import bolt_endpoint

ALL_BUT_RELEASE = ["materialize", "link", "load", "post_build"]


@pytest.fixture()
def tiny_env(tmp_path):
    release = write_tiny_release(tmp_path / "META")
    workspace = Workspace(tmp_path / "ws")
    return release, workspace


def run_build(release, workspace, **options):
    config = BuildConfig(umls=release, text="off", **options)
    return build_graph(config, workspace, store_factory=lambda: open_store(workspace, "embedded", linger=0))


def node_count(workspace) -> int:
    with open_store(workspace, "embedded", linger=0) as store:
        return store.run("count_all_nodes")[0]["n"]


def test_build_writes_the_graph_model_then_is_a_noop(tiny_env):
    release, workspace = tiny_env
    first = run_build(release, workspace)
    assert first.ran == ALL_BUT_RELEASE
    assert first.counts["nodes"]["Concept"] == TINY_CONCEPTS
    links = pl.read_parquet(BuildPaths(workspace, "kg").links / "links.parquet")
    assert first.counts["relationships"]["MAPS_TO"] == links.height
    with open_store(workspace, "embedded", linger=0) as store:
        isa = store.query(
            "MATCH (a:Concept)-[r:ISA]->(b:Concept) RETURN a.cui AS a, b.cui AS b, r.rel AS rel, r.rela AS rela, "
            "r.inverse_rela AS inverse, r.sab AS sab, r.source AS source, r.status AS status, r.edge_id AS id"
        )
        assert isa == [
            {
                "a": "C0011860",
                "b": "C0011849",
                "rel": "CHD",
                "rela": "isa",
                "inverse": "inverse_isa",
                "sab": "MSH",
                "source": "umls",
                "status": "active",
                "id": edge_id("C0011860", "ISA", "C0011849", "MSH"),
            }
        ]
        mapped = store.query(
            "MATCH (i:Item {id: 'labevents:50931'})-[m:MAPS_TO]->(c:Concept) "
            "RETURN i.table AS t, i.code AS code, m.method AS method, m.score AS score, c.cui AS cui"
        )
        assert mapped == [
            {"t": "labevents", "code": "50931", "method": "code_map", "score": 1.0, "cui": "C0484431"}
        ]
        code = store.query(
            "MATCH (k:Code {id: 'ICD9CM:38.93'})-[:CODE_OF]->(c) RETURN k.sab AS sab, c.cui AS cui"
        )
        assert code == [{"sab": "ICD9CM", "cui": "C0394664"}]
        # unlinked items seen in the rows are nodes too (their absence of links is queryable)
        assert store.query("MATCH (i:Item {id: 'prescriptions:Insulin'}) RETURN count(i) AS n") == [{"n": 1}]

    info = graph_info(workspace)
    assert info["graph_hash"] == first.graph_hash and info["release_kind"] == "umls"
    again = run_build(release, workspace)
    assert again.noop and again.graph_hash == first.graph_hash
    assert again.skipped == ["release", *ALL_BUT_RELEASE]


def test_a_build_killed_during_the_load_finishes_on_the_next_run(tiny_env, tmp_path):
    release, workspace = tiny_env
    script = textwrap.dedent(
        f"""
        import os, signal
        import graphkit.kg.build as build
        from graphkit.kg import BuildConfig, build_graph
        from graphkit.store import open_store
        from graphkit.workspace import Workspace
        from pathlib import Path

        def killed(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

        build.load_graph = killed
        ws = Workspace(Path({str(workspace.root)!r}))
        build_graph(BuildConfig(umls=Path({str(release)!r}), text="off"), ws,
                    store_factory=lambda: open_store(ws, "embedded", linger=0))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), capture_output=True, timeout=300)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    state = read_state(BuildPaths(workspace, "kg").state)
    assert set(state["steps"]) == {"materialize", "link"}
    resumed = run_build(release, workspace)
    assert resumed.ran == ["load", "post_build"]
    assert resumed.skipped == ["release", "materialize", "link"]
    assert node_count(workspace) == resumed.counts["total_nodes"]


def test_changed_inputs_rerun_from_the_step_they_feed(tiny_env, tmp_path):
    release, workspace = tiny_env
    first = run_build(release, workspace)
    extra = tmp_path / "extra.csv"
    extra.write_text("key,cui,score\nprescriptions:Insulin,C0019134,0.5\n")
    changed = run_build(release, workspace, extra_links=extra)
    assert changed.ran == ["link", "load", "post_build"] and changed.graph_hash != first.graph_hash
    links = pl.read_parquet(BuildPaths(workspace, "kg").links / "links.parquet")
    assert links.filter(pl.col("key") == "prescriptions:Insulin").select("cui", "method", "score").rows() == [
        ("C0019134", "extra", 0.5)
    ]
    filtered = run_build(release, workspace, sabs=("ICD10CM", "MSH"))
    assert filtered.ran == ALL_BUT_RELEASE and filtered.counts["nodes"]["Concept"] == 5
    back = run_build(release, workspace)
    assert back.graph_hash == first.graph_hash and back.ran == ALL_BUT_RELEASE


def test_bad_input_leaves_the_existing_graph_untouched(tiny_env, tmp_path, monkeypatch):
    release, workspace = tiny_env
    run_build(release, workspace)
    before, info = node_count(workspace), graph_info(workspace)
    good = (release / "MRREL.RRF").read_text()

    (release / "MRREL.RRF").write_text(good + "C12||CUI|RO|C0011849||CUI||R9||MSH|MSH|||N||\n")
    with pytest.raises(GraphError, match="MRREL"):
        run_build(release, workspace)
    assert node_count(workspace) == before and graph_info(workspace) == info
    (release / "MRREL.RRF").write_text(good)

    with pytest.raises(ConfigError, match="not in this release"):
        run_build(release, workspace, sabs=("NOPE",))
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("key,cui\nlabevents:1,C0011860\n")
    with pytest.raises(InputError, match="not MIMIC items"):
        run_build(release, workspace, extra_links=unknown)
    assert node_count(workspace) == before and graph_info(workspace) == info

    # a failure in the middle of the bulk load: the staging graph is dropped, the graph stays
    from graphkit.store import bulk

    real_send, calls = bulk.send, []

    def failing_send(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise GraphError("simulated failure during the bulk load")
        return real_send(*args, **kwargs)

    monkeypatch.setattr(bulk, "send", failing_send)
    extra = tmp_path / "extra.csv"
    extra.write_text("key,cui\nprescriptions:Insulin,C0019134\n")
    with pytest.raises(GraphError, match="simulated"):
        run_build(release, workspace, extra_links=extra)
    monkeypatch.undo()
    assert node_count(workspace) == before and graph_info(workspace) == info
    assert run_build(release, workspace, extra_links=extra).ran == ["load", "post_build"]


def test_links_to_concepts_the_release_lacks_are_reported_not_loaded(tiny_env, tmp_path):
    release, workspace = tiny_env
    extra = tmp_path / "extra.parquet"
    pl.DataFrame({"key": ["prescriptions:Insulin"], "cui": ["C9999999"]}).write_parquet(extra)
    result = run_build(release, workspace, extra_links=extra)
    assert result.links["dropped_links"] == 1
    assert result.links["dropped_examples"] == [
        {"key": "prescriptions:Insulin", "cui": "C9999999", "method": "extra"}
    ]
    dropped = pl.read_parquet(BuildPaths(workspace, "kg").links / "dropped_links.parquet")
    assert dropped.select("key", "cui").rows() == [("prescriptions:Insulin", "C9999999")]


def test_post_build_hooks_run_after_every_load_and_again_after_a_failure(tiny_env):
    release, workspace = tiny_env
    calls = []

    def hook(store, *, workspace, graph_hash):
        calls.append(graph_hash)
        if len(calls) == 1:
            raise RuntimeError("ledger replay failed")
        return {"replayed": store.run("count_all_nodes")[0]["n"] > 0}

    register_post_build(hook)
    try:
        with pytest.raises(RuntimeError, match="ledger replay"):
            run_build(release, workspace)
        state = read_state(BuildPaths(workspace, "kg").state)
        assert "load" in state["steps"] and "post_build" not in state["steps"]
        rerun = run_build(release, workspace)
        assert rerun.ran == ["post_build"] and calls == [rerun.graph_hash, rerun.graph_hash]
        state = read_state(BuildPaths(workspace, "kg").state)
        assert state["steps"]["post_build"]["hooks"][f"{__name__}.{hook.__qualname__}"] == {"replayed": True}
        assert run_build(release, workspace).noop and len(calls) == 2
    finally:
        unregister_post_build(hook)


def test_a_second_build_of_the_same_graph_is_refused(tiny_env):
    release, workspace = tiny_env
    paths = BuildPaths(workspace, "kg")
    paths.root.mkdir(parents=True)
    with open(paths.lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(GraphError, match="another graph build"):
            run_build(release, workspace)


def test_cli_build_report_and_errors(cli, workspace_dir, tmp_path):
    release = write_tiny_release(tmp_path / "META")
    for args, message in (
        ((), "choose the release"),
        (("--umls", release, "--demo"), "choose the release"),
        (("--umls", release, "--text", "maybe"), "text-linking mode"),
        (("--umls", tmp_path / "missing"), "no such file"),
    ):
        result = cli("graph", "build", *args)
        assert result.exit_code == 2 and message in result.output, result.output
    result = cli("graph", "link-report")
    assert result.exit_code == 2 and "run ehr-r1 graph build" in result.output
    result = cli("graph", "build", "--umls", release, "--text", "off")
    assert result.exit_code == 0, result.output
    assert "linked" in result.output and "graph " in result.output
    assert "up to date" in cli("graph", "build", "--umls", release, "--text", "off").output
    report = json.loads(cli("graph", "link-report", "--format", "json", "--top", "2").output)
    tables = {row["table"]: row for row in report["tables"]}
    assert tables["diagnoses_icd"]["items_icd_code"] == 1 and len(report["unlinked"]["labevents"]) == 2
    assert "top unlinked" in cli("graph", "link-report").output
    cli("graph", "stop")


def test_the_neo4j_backend_loads_the_same_frames_by_batched_unwind(tiny_env, tmp_path):
    """Through FalkorDB's Bolt endpoint (the neo4j test double): it refuses ' and \\ in values and
    drops the connection on larger batches (about 100 items here), hence the small batches."""
    release, workspace = tiny_env
    run_build(release, workspace)
    paths = BuildPaths(workspace, "kg")
    links_dir = tmp_path / "links"
    links_dir.mkdir()
    links = pl.read_parquet(paths.links / "links.parquet")
    items = pl.read_parquet(paths.links / "items.parquet").filter(
        pl.col("key").is_in(links["key"].unique().implode()) & ~pl.col("name").str.contains(r"['\\]")
    )
    items.write_parquet(links_dir / "items.parquet")
    links.filter(pl.col("key").is_in(items["key"].implode())).write_parquet(links_dir / "links.parquet")
    with bolt_endpoint(tmp_path / "bolt") as uri:
        store = open_store(backend="neo4j", uri=uri)
        counts = load_graph(store, paths.umls, links_dir, batch_size=10)
        assert counts["method"] == "UNWIND CREATE" and counts["nodes"]["Concept"] == TINY_CONCEPTS
        rows = store.query(
            "MATCH (a:Concept)-[r:MAY_TREAT]->(b:Concept) RETURN a.cui AS a, b.cui AS b, r.edge_id AS id"
        )
        assert rows == [
            {"a": "C0025598", "b": "C0011860", "id": edge_id("C0025598", "MAY_TREAT", "C0011860", "RXNORM")}
        ]
    store.close()


def test_a_step_that_fails_halfway_is_redone_even_for_the_old_inputs(tiny_env, monkeypatch):
    """A filtered build dies after rewriting part of the materialized files; the next build with
    the original inputs must not take those files for its own."""
    from graphkit.umls.reader import Release

    release, workspace = tiny_env
    run_build(release, workspace)
    real = Release.materialize

    def dies_halfway(self, out_dir):
        real(self, out_dir)  # every file rewritten for the filtered release...
        raise GraphError("killed")  # ...and the step never recorded

    monkeypatch.setattr(Release, "materialize", dies_halfway)
    with pytest.raises(GraphError, match="killed"):
        run_build(release, workspace, sabs=("MSH",))
    monkeypatch.undo()
    again = run_build(release, workspace)
    assert again.ran == ALL_BUT_RELEASE and again.counts["nodes"]["Concept"] == TINY_CONCEPTS
