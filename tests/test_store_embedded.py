"""The embedded server's life: unix socket only, attaching, clean shutdown, crashes, stale sockets."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from graphkit.errors import StoreError
from graphkit.store import open_store
from graphkit.store.server import FalkorServer, _alive, socket_path_for
from tests.store_data import CONCEPTS, graph_files, load_small_graph

REPO = Path(__file__).resolve().parents[1]


def _pid(workspace: Path) -> int | None:
    try:
        return json.loads((workspace / "graph" / "falkordb" / "server.json").read_text()).get("pid")
    except FileNotFoundError:
        return None


def _kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _tcp_listen_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


@pytest.fixture()
def ws(tmp_path) -> Path:
    return tmp_path / "ws"


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_unix_socket_only_and_persistence_settings(ws):
    with open_store(ws, linger=0) as store:
        pid = _pid(ws)
        assert pid and _alive(pid)
        assert not (_socket_inodes(pid) & _tcp_listen_inodes()), "the server listens on a TCP port"
        client = store.server.client(5)
        assert client.config_get("port")["port"] == "0"
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
        assert Path(client.config_get("dir")["dir"]) == ws.resolve() / "graph" / "falkordb"
        assert oct(store.server.socket.stat().st_mode & 0o777) == "0o700"
    assert not _alive(pid), "the last close with linger=0 stops the server"
    assert not (ws / "graph" / "falkordb" / "falkordb.sock").exists()


def test_two_stores_share_one_server_and_data_survives_a_clean_restart(ws):
    first = open_store(ws, linger=0)
    load_small_graph(first)
    second = open_store(ws, linger=0)
    pid = _pid(ws)
    assert second.run("count_all_nodes")[0]["n"] == len(CONCEPTS) + 3
    assert set(second.vocab.relation_types) == {"ISA", "MAY_TREAT", "HAS_MANIFESTATION"}
    first.close()
    assert _alive(pid), "a store is still attached"
    second.close()
    assert not _alive(pid)
    with open_store(ws, linger=0) as again:
        assert _pid(ws) != pid
        assert again.run("count_all_nodes")[0]["n"] == len(CONCEPTS) + 3


def test_another_process_attaches_to_the_running_server(ws):
    with open_store(ws, linger=0) as store:
        load_small_graph(store)
        pid = _pid(ws)
        script = textwrap.dedent(
            f"""
            import json
            from graphkit.store import open_store
            with open_store({str(ws)!r}, linger=0) as store:
                n = store.run("count_all_nodes")[0]["n"]
                store.merge_nodes("Concept", [{{"cui": "C0000077", "name": "from the other process"}}])
            print(json.dumps({{"n": n}}))
            """
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1]) == {"n": len(CONCEPTS) + 3}
        assert _pid(ws) == pid and _alive(pid), "the other process attached instead of starting a server"
        assert store.run("concept_by_cui", cui="C0000077")[0]["name"] == "from the other process"


def _lingering_server(ws: Path, linger: float, concepts: int) -> int:
    """Open a store, write, close it: the server lingers; its pid."""
    store = open_store(ws, linger=linger)
    store.merge_nodes("Concept", CONCEPTS[:concepts])
    pid = _pid(ws)
    store.close()
    assert _alive(pid), "still lingering"
    return pid


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not _alive(pid)


def test_the_last_user_out_leaves_the_server_up_for_the_linger_time(ws):
    pid = _lingering_server(ws, 1.5, 2)
    with open_store(ws, linger=1.5) as again:
        assert _pid(ws) == pid, "a command within the linger time reuses the server"
    assert _gone_within(pid, 30), "the reaper stopped the idle server"
    with open_store(ws, linger=0) as again:
        assert again.run("count_all_nodes")[0]["n"] == 2


def test_deleting_the_workspace_of_a_lingering_server_stops_it(ws):
    pid = _lingering_server(ws, 600, 1)
    shutil.rmtree(ws)  # what a user does with a workspace they are done with
    assert _gone_within(pid, 30), "an unreachable server was left running"
    assert not ws.exists(), "the reaper recreated the deleted workspace"

def test_a_dead_client_does_not_keep_the_server_up(ws):
    script = f"from graphkit.store import open_store; s = open_store({str(ws)!r}, linger=0); import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO, timeout=120)
    pid = _pid(ws)
    assert _alive(pid), "the crashed client never released its lease"
    with open_store(ws, linger=0):
        pass
    assert not _alive(pid), "its lease was recognized as dead and the last live user stopped the server"


def test_explicit_stop_while_attached(ws):
    with open_store(ws, linger=0) as store:
        store.merge_nodes("Concept", CONCEPTS[:3])
        pid = _pid(ws)
        assert FalkorServer(ws / "graph").stop()
        assert not _alive(pid)
        # the attached store brings it back on its next (idempotent) query
        assert store.run("count_all_nodes")[0]["n"] == 3
    assert FalkorServer(ws / "graph").stop() is False


def test_a_killed_server_is_restarted_without_losing_acknowledged_writes(ws):
    with open_store(ws, linger=0) as store:
        load_small_graph(store)
        store.merge_nodes("Concept", [{"cui": "C0000088", "name": "written just before the crash"}])
        pid = _pid(ws)
        _kill9(pid)
        assert store.server.socket.exists(), "a killed server leaves its socket behind"
        assert store.run("concept_by_cui", cui="C0000088")[0]["name"] == "written just before the crash"
        assert _pid(ws) != pid
        assert store.run("count_all_nodes")[0]["n"] == len(CONCEPTS) + 4


def test_a_non_idempotent_write_is_not_resent_after_a_crash(ws):
    with open_store(ws, linger=0) as store:
        store.merge_nodes("Concept", CONCEPTS[:1])
        _kill9(_pid(ws))
        with pytest.raises(StoreError, match="restarted"):
            store.query("CREATE (:Concept {cui: 'C0000066'})")
        assert store.run("concept_by_cui", cui="C0000066") == []
        assert store.run("count_all_nodes")[0]["n"] == 1


def test_a_stale_socket_is_removed_by_the_next_process(ws):
    with open_store(ws, linger=0) as store:
        load_small_graph(store)
        pid = _pid(ws)
        _kill9(pid)
        assert store.server.socket.exists()
        store._closed = True  # this process "crashed" too: it never releases its lease
    with open_store(ws, linger=0) as fresh:
        assert fresh.run("count_all_nodes")[0]["n"] == len(CONCEPTS) + 3
        assert _pid(ws) != pid
        store._lease.path.unlink()  # the crashed process's lease (this test process is alive)


def test_a_socket_path_taken_by_something_else_is_an_error_and_nothing_is_touched(ws):
    with open_store(ws, linger=0) as store:
        load_small_graph(store)
    data_dir = ws / "graph" / "falkordb"
    before = graph_files(data_dir)
    assert before
    (data_dir / "falkordb.sock").write_text("not a socket")
    with pytest.raises(StoreError, match="not a socket") as error:
        open_store(ws, linger=0)
    assert "\n" not in str(error.value)
    assert graph_files(data_dir) == before
    assert (data_dir / "falkordb.sock").read_text() == "not a socket"


def test_a_socket_answered_by_another_server_is_an_error(ws, tmp_path):
    other = FalkorServer(tmp_path / "other" / "graph", linger=0)
    other.socket = socket_path_for((ws / "graph" / "falkordb").resolve())  # squats on our socket path
    other.socket.parent.mkdir(parents=True, exist_ok=True)
    lease = other.acquire()
    try:
        with pytest.raises(StoreError, match="another directory"):
            open_store(ws, linger=0)
        assert other.client(5).ping(), "the other server is left alone"
    finally:
        other.release(lease)


def test_a_long_workspace_path_gets_a_short_socket(tmp_path):
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 5)
    socket_path = socket_path_for(deep / "graph" / "falkordb")
    assert len(os.fsencode(socket_path)) <= 100
    with open_store(deep, linger=0) as store:
        store.merge_nodes("Concept", CONCEPTS[:1])
        assert store.server.socket == socket_path
    with open_store(deep, linger=0) as store:
        assert store.run("count_all_nodes")[0]["n"] == 1


def test_a_hung_server_is_reported_and_force_stopped(ws):
    with open_store(ws, linger=0) as store:
        store.merge_nodes("Concept", CONCEPTS[:1])
        pid = _pid(ws)
        store._closed = True
        store._lease.path.unlink()
    os.kill(pid, signal.SIGSTOP)
    try:
        before = graph_files(ws / "graph" / "falkordb")
        server = FalkorServer(ws / "graph", probe_timeout=1)
        with pytest.raises(StoreError, match="does not answer"):
            server.acquire()
        assert graph_files(ws / "graph" / "falkordb") == before
        assert server.stop(force=True, timeout=1)
        assert not _alive(pid)
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    with open_store(ws, linger=0) as again:
        assert again.run("count_all_nodes")[0]["n"] == 1


def test_bulk_load_pauses_background_saves_and_restores_them(ws):
    from tests.store_data import small_graph_bulk

    with open_store(ws, linger=0) as store:
        client = store.server.client(5)
        before = {key: client.config_get(key)[key] for key in ("save", "auto-aof-rewrite-percentage")}
        seen = []
        send = store._db.connection.execute_command

        def spy(*args, **kwargs):
            if args and args[0] == "GRAPH.BULK":
                seen.append({key: client.config_get(key)[key] for key in before})
            return send(*args, **kwargs)

        store._db.connection.execute_command = spy
        store.bulk_load(*small_graph_bulk())
        assert seen and all(s == {"save": "", "auto-aof-rewrite-percentage": "0"} for s in seen)
        assert {key: client.config_get(key)[key] for key in before} == before
    with open_store(ws, linger=0) as again:  # restarts from the rewritten AOF
        assert again.run("count_all_nodes")[0]["n"] == len(CONCEPTS) + 3


def test_a_server_saving_on_its_way_out_is_waited_for(ws):
    """The last user's shutdown (a big graph's final save) is not mistaken for a hung server."""
    import threading

    with open_store(ws, linger=0) as store:
        store.merge_nodes("Concept", CONCEPTS[:2])
        pid = _pid(ws)
        store._closed = True
        store._lease.path.unlink()
    os.kill(pid, signal.SIGSTOP)
    log = ws / "graph" / "falkordb" / "server.log"
    with open(log, "a") as handle:
        handle.write(f"{pid}:M 01 Jan 2026 00:00:00.000 * User requested shutdown...\n")
    threading.Timer(1.5, lambda: os.kill(pid, signal.SIGKILL)).start()  # the "save" ends
    server = FalkorServer(ws / "graph", probe_timeout=1, linger=0)
    lease = server.acquire()
    try:
        assert _pid(ws) != pid and not _alive(pid)
        with open_store(ws, linger=0) as again:
            assert again.run("count_all_nodes")[0]["n"] == 2
    finally:
        server.release(lease)


def test_the_log_tells_loading_from_hung(tmp_path):
    server = FalkorServer(tmp_path / "graph")
    server.log_file.parent.mkdir(parents=True)
    for lines, phase in [
        (["1:C * Redis is starting oO0OoO0OoO0Oo", "1:M * <module> Graph 'kg' processed 100/500 edges"], "loading"),
        (["1:C * Redis is starting", "1:M * Ready to accept connections unix"], "ready"),
        (["1:M * Ready to accept connections unix", "1:M * User requested shutdown..."], "stopping"),
    ]:
        server.log_file.write_text("\n".join(lines) + "\n")
        assert server._log_phase() == phase
