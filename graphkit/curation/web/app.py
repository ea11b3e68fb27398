"""`ehr-r1 curate serve`: a small server-rendered page for curators (starlette + uvicorn, extra `web`).

Pages: ``/`` (search and review queue), ``/search``, ``/concept/{cui}``, ``/edge?key=...`` or
``/edge/{edge_id}`` (evidence, ledger history, the cases that used the edge, example paths and
the reject / restore / annotate form), ``/log``; ``/api/search`` feeds the search box.

The ranking of the most used edges is kept until the number of recorded edge uses changes (new
thinking graphs), at most five minutes; the rest of the queue and edge pages are always live.

Security: it listens on 127.0.0.1 unless ``--allow-remote``; every request must carry the
per-run token (``?token=`` in the URL printed at start, then an HttpOnly SameSite=Strict
cookie), and a change must also post it in the form (so another site cannot submit one).
Concurrency: a change posts the edge version it was decided on; if another curator (here or
through the CLI) changed the edge since, it is refused with 409 and the current state shown.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlencode

from graphkit.curation.ledger import EdgeKey, Ledger
from graphkit.curation.service import Curation, StaleEditError
from graphkit.curation.views import concept_view, edge_view, ensure_queue_schema, queue, search, used_ranking
from graphkit.errors import ConfigError, EhrR1Error
from graphkit.extras import require

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "ehr_r1_curate"
QUEUE_LIMIT = 15
CASES_COUNTED = 10_000  # an edge page counts this many of the cases using the edge, at most


def check_host(host: str, allow_remote: bool) -> None:
    """Loopback only, unless the curator explicitly allows other addresses."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not allow_remote:
        raise ConfigError(
            "the curation page listens on loopback only",
            where="--host",
            value=host,
            fix="use 127.0.0.1, or pass --allow-remote to serve other machines (they still need the token)",
        )


def _environment():
    jinja2 = require("jinja2", "web", "the curation page")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.globals["edge_url"] = edge_url
    return env


def edge_url(key: EdgeKey | str, **extra) -> str:
    text = key.text if isinstance(key, EdgeKey) else key
    return "/edge?" + urlencode({"key": text, **extra})


def create_app(store, workspace, *, token: str, ledger: Ledger | None = None, graph: str | None = None,
               curator: str = ""):
    """The ASGI app over one open store and the workspace's ledger."""
    require("starlette", "web", "the curation page")
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    env = _environment()
    curation = Curation(store, workspace, ledger=ledger, graph=graph)
    ensure_queue_schema(store)
    store_lock = threading.Lock()  # one graph connection shared by the server's worker threads

    def render(request, name: str, status_code: int = 200, **context) -> HTMLResponse:
        context.setdefault("error", None)
        context.setdefault("query", "")
        html = env.get_template(name).render(token=token, curator=curator,
                                             path=request.url.path, **context)
        return HTMLResponse(html, status_code=status_code)

    class TokenCheck(BaseHTTPMiddleware):
        async def dispatch(self, request, call_next):
            given = request.query_params.get("token") or request.cookies.get(COOKIE) or ""
            if not secrets.compare_digest(given.encode(), token.encode()):
                return PlainTextResponse(
                    "forbidden: open the URL that `ehr-r1 curate serve` printed (it carries this run's token)",
                    status_code=403,
                )
            response = await call_next(request)
            if request.query_params.get("token"):
                response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
            response.headers.setdefault("Cache-Control", "no-store")
            # everything the page needs is its own: no other origin, no framing by another site
            response.headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            return response

    ranking = UsageRanking(store)

    def home(request):
        with store_lock:
            found = queue(store, curation.ledger, limit=QUEUE_LIMIT, used=ranking)
        recent = curation.ledger.entries()[-10:][::-1]
        return render(request, "index.html", queue=found, recent=recent, query="")

    def search_page(request):
        text = request.query_params.get("q", "")
        with store_lock:
            rows = search(store, text, limit=50)
            key = _key_or_none(text)
            live = curation.live(key) if key else None
        return render(request, "search.html", query=text, rows=rows, key=key if live else None)

    def search_api(request):
        with store_lock:
            rows = search(store, request.query_params.get("q", ""), limit=12)
        return JSONResponse([{"cui": r["cui"], "name": r["name"]} for r in rows])

    def concept(request):
        cui = request.path_params["cui"]
        with store_lock:
            view = concept_view(store, cui)
        if view is None:
            return render(request, "message.html", status_code=404, title="No such concept",
                          message=f"The graph has no concept {cui}.")
        return render(request, "concept.html", view=view, query=cui)

    def edge_page(request, *, status_code: int = 200, error: str | None = None, form: dict | None = None,
                  key: EdgeKey | None = None):
        with store_lock:
            try:
                key = key or curation.resolve(request.path_params.get("edge_id") or request.query_params.get("key", ""))
            except EhrR1Error as exc:
                return render(request, "message.html", status_code=404, title="No such edge", message=exc.one_line())
            view = edge_view(store, curation.ledger, key, cases=50, paths=3, count_cap=CASES_COUNTED)
        done = request.query_params.get("done")
        done_entry = next((e for e in view.history if str(e.seq) == done), None) if done else None
        return render(request, "edge.html", status_code=status_code, view=view, key=key, error=error,
                      form=form or {}, done=done_entry, query="")

    async def change(request):
        form = await request.form()
        if not secrets.compare_digest(str(form.get("token", "")).encode(), token.encode()):
            return PlainTextResponse("forbidden: the form does not carry this run's token", status_code=403)
        values = {name: str(form.get(name, "")) for name in ("key", "op", "reason", "evidence", "curator", "version")}
        try:
            key = EdgeKey.parse(values["key"])
        except EhrR1Error as exc:
            return render(request, "message.html", status_code=400, title="Bad edge", message=exc.one_line())
        evidence = [line.strip() for line in values["evidence"].splitlines() if line.strip()]
        version = int(values["version"]) if values["version"].isdigit() else None
        from starlette.concurrency import run_in_threadpool

        def apply():
            with store_lock:
                if values["op"] == "annotate":
                    return curation.annotate(key, curator=values["curator"], reason=values["reason"], evidence=evidence)
                if values["op"] not in ("reject", "restore"):
                    raise ConfigError("unknown action", where="op", value=values["op"], fix="reject, restore or annotate")
                return curation.change(values["op"], key, curator=values["curator"], reason=values["reason"],
                                       evidence=evidence, expected_version=version)

        try:
            entry = await run_in_threadpool(apply)
        except StaleEditError as exc:
            return await run_in_threadpool(edge_page, request, status_code=409, error=exc.one_line(), form=values, key=key)
        except EhrR1Error as exc:
            return await run_in_threadpool(edge_page, request, status_code=400, error=exc.one_line(), form=values, key=key)
        return RedirectResponse(edge_url(key, done=entry.seq), status_code=303)

    def log_page(request):
        since = request.query_params.get("since") or None
        try:
            entries = curation.ledger.since(since)
        except EhrR1Error as exc:
            return render(request, "message.html", status_code=400, title="Bad point", message=exc.one_line())
        return render(request, "log.html", entries=entries[-200:][::-1], total=len(entries), since=since or "", query="")

    routes = [
        Route("/", home),
        Route("/search", search_page),
        Route("/api/search", search_api),
        Route("/concept/{cui}", concept),
        Route("/edge", edge_page),
        Route("/edge/change", change, methods=["POST"]),
        Route("/edge/{edge_id}", edge_page),
        Route("/log", log_page),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def failure(request, exc: EhrR1Error):
        return PlainTextResponse(f"error: {exc.one_line()}", status_code=500)

    return Starlette(routes=routes, middleware=[Middleware(TokenCheck)], exception_handlers={EhrR1Error: failure})


class UsageRanking:
    """The most used edges, kept until the number of recorded edge uses changes (new thinking
    graphs) and at most ``ttl`` seconds: counting every use of thousands of cases is the one
    slow part of the queue, and it does not depend on the ledger (reviewed edges are filtered
    out on each request)."""

    def __init__(self, store, pool: int = 4 * QUEUE_LIMIT, ttl: float = 300.0):
        self.store, self.pool, self.ttl = store, pool, ttl
        self._key: int | None = None
        self._at = 0.0
        self._rows: list[dict] = []
        self._more = False

    def __call__(self, n: int) -> tuple[list[dict], bool]:
        counted = self.store.run("curation_usage_count")
        key = counted[0]["uses"] if counted else 0
        stale = key != self._key or time.monotonic() - self._at > self.ttl
        if stale or (n > len(self._rows) and self._more):
            self.pool = max(self.pool, n)
            self._rows, self._more = used_ranking(self.store, None, self.pool)
            self._key, self._at = key, time.monotonic()
        return [dict(row) for row in self._rows[:n]], self._more or n < len(self._rows)


def _key_or_none(text: str) -> EdgeKey | None:
    if text.count("|") not in (2, 3):
        return None
    try:
        return EdgeKey.parse(text)
    except EhrR1Error:
        return None


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError("cannot listen there", where="--host/--port", value=f"{host}:{port}",
                          fix=f"choose another port ({exc.strerror})") from None
    return sock


def _url(host: str, sock: socket.socket, token: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def _server(app):
    uvicorn = require("uvicorn", "web", "the curation page")
    # no access log: request lines carry the token
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))


def run_server(store, workspace, *, host: str = "127.0.0.1", port: int = 8765,
               announce: Callable[[str], None] = print, curator: str = "") -> None:
    """Serve until interrupted; ``announce`` gets the URL with this run's token once listening."""
    token = secrets.token_urlsafe(24)
    app = create_app(store, workspace, token=token, curator=curator)
    sock = _bind(host, port)
    sock.listen(128)
    announce(_url(host, sock, token))
    _server(app).run(sockets=[sock])


class BackgroundServer:
    """The page served from a thread (tests, benchmarks): ``with BackgroundServer(app) as url: ...``."""

    def __init__(self, app, host: str = "127.0.0.1", token: str = ""):
        self.app, self.host, self.token = app, host, token
        self.server = None
        self.thread: threading.Thread | None = None
        self.url = ""

    def __enter__(self) -> str:
        sock = _bind(self.host, 0)
        sock.listen(128)
        self.server = _server(self.app)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the curation page did not start")
            time.sleep(0.02)
        self.url = _url(self.host, sock, self.token)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
