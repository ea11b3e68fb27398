"""`ehr-r1 curate serve`: the token, loopback only, actions reaching the ledger and the graph,
stale edits refused, concurrent edits from the page and the CLI, and the page in headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from graphkit.curation.ledger import Ledger
from graphkit.curation.service import Curation
from graphkit.curation.web.app import BackgroundServer, check_host, create_app, edge_url
from graphkit.errors import ConfigError
from tests.curation_data import DM, HEPARIN_TREATS, ISA, METFORMIN_TREATS, T2DM, reset, tiny_fixture
from tests.test_curation_cli import record_case

REPO = Path(__file__).resolve().parents[1]
TOKEN = "test-token-123"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    yield from tiny_fixture(tmp_path_factory)


@pytest.fixture()
def served(tiny):
    reset(tiny)
    with BackgroundServer(create_app(tiny.store, tiny.workspace, token=TOKEN, curator="alice"), token=TOKEN) as url:
        yield tiny, url.split("/?")[0]
    reset(tiny)


def client(base: str) -> httpx.Client:
    """A browser-like client: it opens the token URL once and keeps the cookie."""
    session = httpx.Client(base_url=base, follow_redirects=False, timeout=60)
    assert session.get(f"/?token={TOKEN}").status_code == 200
    return session


def post(session: httpx.Client, key, op: str, reason: str, version: int, curator: str = "alice", **more):
    data = {"token": TOKEN, "key": key.text, "op": op, "reason": reason, "version": str(version),
            "curator": curator, "evidence": more.get("evidence", "")}
    return session.post("/edge/change", data=data)


def test_the_token_is_required_on_every_request_and_the_page_is_loopback_only(served):
    graph, base = served
    anonymous = httpx.Client(base_url=base, timeout=60)
    for path in ("/", "/log", f"/concept/{T2DM}", "/static/curate.js", "/api/search?q=diab"):
        assert anonymous.get(path).status_code == 403
    assert anonymous.get("/?token=wrong").status_code == 403
    first = anonymous.get(f"/?token={TOKEN}")
    assert first.status_code == 200
    cookie = first.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and TOKEN in cookie
    assert first.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
    assert anonymous.get("/static/curate.css").status_code == 200  # the cookie carries it now
    forged = anonymous.post("/edge/change", data={"key": HEPARIN_TREATS.text, "op": "reject", "reason": "x",
                                                  "curator": "mallory", "version": "0"})
    assert forged.status_code == 403 and not Ledger.of(graph.workspace).path.exists()
    for host, allow in (("127.0.0.1", False), ("::1", False), ("localhost", False), ("0.0.0.0", True)):
        check_host(host, allow)
    with pytest.raises(ConfigError, match="loopback only"):
        check_host("0.0.0.0", False)


def test_page_actions_reach_the_ledger_and_the_graph(served):
    graph, base = served
    record_case(graph.store, "s-1")
    session = client(base)
    home = session.get("/").text
    assert "Most used by cases" in home and HEPARIN_TREATS.text.replace("|", "%7C") in home
    page = session.get(edge_url(HEPARIN_TREATS)).text
    assert 'name="version" value="0"' in page and 'value="reject"' in page and "s-1" in page
    assert "Heparin (C0019134) -[MAY_TREAT]-&gt; Type 2 diabetes" in page  # the example path

    done = post(session, HEPARIN_TREATS, "reject", "heparin does not treat diabetes", 0, evidence="DailyMed\nPMID:1")
    assert done.status_code == 303 and "done=1" in done.headers["location"]
    page = session.get(done.headers["location"]).text
    assert "Entry 1 recorded: reject by alice" in page and 'value="restore"' in page
    entry = Ledger.of(graph.workspace).entries()[0]
    assert (entry.op, entry.edge, entry.curator, entry.evidence) == ("reject", HEPARIN_TREATS, "alice", ("DailyMed", "PMID:1"))
    curation = Curation(graph.store, graph.workspace)
    assert curation.live(HEPARIN_TREATS)["status"] == "rejected"

    # bob decided on what he saw at version 0: refused, his text kept, alice's decision stands
    stale = post(session, HEPARIN_TREATS, "reject", "bob's reason", 0, curator="bob")
    assert stale.status_code == 409 and "changed after you looked at it" in stale.text
    assert "bob&#39;s reason" in stale.text and len(Ledger.of(graph.workspace).entries()) == 1
    assert post(session, HEPARIN_TREATS, "annotate", "agreed", 0, curator="bob").status_code == 303
    assert post(session, HEPARIN_TREATS, "restore", "on reflection", 2).status_code == 303
    assert curation.live(HEPARIN_TREATS)["status"] == "active"
    bad = post(session, ISA, "restore", "not rejected", 0)
    assert bad.status_code == 400 and "already active" in bad.text
    assert [e.op for e in Ledger.of(graph.workspace).entries()] == ["reject", "annotate", "restore"]

    assert "Type 2 diabetes" in session.get("/search", params={"q": "diab"}).text
    assert session.get("/api/search", params={"q": "diab"}).json() == [
        {"cui": DM, "name": "Diabetes Mellitus"}, {"cui": T2DM, "name": "Type 2 diabetes mellitus without complications"}]
    concept = session.get(f"/concept/{T2DM}").text
    assert "Heparin" in concept and "diagnoses_icd:10:E119" in concept
    assert session.get("/concept/C9999999").status_code == 404
    assert session.get(f"/edge/{HEPARIN_TREATS.edge_id}").status_code == 200
    assert session.get("/edge", params={"key": "nonsense"}).status_code == 404
    log = session.get("/log", params={"since": "1"}).text
    assert "agreed" in log and "heparin does not treat diabetes" not in log


CLI_LOOP = """
for i in 1 2 3; do
  {python} -m ehr_r1.cli curate annotate '{edge}' --note "cli-$1-$i" --curator "cli-$1" || exit 1
done
"""


def test_concurrent_edits_from_the_cli_and_the_page_lose_nothing(served):
    graph, base = served
    env = {**os.environ, "EHR_R1_WORKSPACE": str(graph.workspace.root), "PYTHONPATH": str(REPO)}
    script = CLI_LOOP.format(python=sys.executable, edge=METFORMIN_TREATS.text)
    shells = [subprocess.Popen(["bash", "-c", script, "loop", str(n)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for n in range(2)]
    # and two curators racing to reject the same edge from the page and the CLI at version 0
    racer = subprocess.Popen([sys.executable, "-m", "ehr_r1.cli", "curate", "reject", HEPARIN_TREATS.text,
                              "--reason", "cli was first", "--curator", "cli", "--expect-version", "0"],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    statuses: list[int] = []

    def page_curator(n: int) -> None:
        session = client(base)
        for i in range(6):
            assert post(session, METFORMIN_TREATS, "annotate", f"page-{n}-{i}", 0, curator=f"page-{n}").status_code == 303
        statuses.append(post(session, HEPARIN_TREATS, "reject", "page was first", 0, curator=f"page-{n}").status_code)

    threads = [threading.Thread(target=page_curator, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outputs = [shell.communicate(timeout=300)[0] for shell in shells]
    assert all(shell.returncode == 0 for shell in shells), outputs
    racer_output = racer.communicate(timeout=300)[0]

    assert Ledger.of(graph.workspace).verify().notes == []
    entries = Ledger.of(graph.workspace).entries()
    notes = {e.reason for e in entries if e.op == "annotate"}
    assert notes == {f"page-{n}-{i}" for n in range(3) for i in range(6)} | {f"cli-{n}-{i}" for n in range(2) for i in (1, 2, 3)}
    rejects = [e for e in entries if e.op == "reject"]
    assert len(rejects) == 1  # exactly one of the four racers won; the others were refused
    assert set(statuses) <= {303, 409} and statuses.count(303) + (racer.returncode == 0) == 1
    assert racer.returncode == 0 or "changed after you looked at it" in racer_output
    assert Curation(graph.store, graph.workspace).live(HEPARIN_TREATS)["status"] == "rejected"
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium "
                    "(apt-get install -y chromium chromium-driver)")
def test_the_page_in_headless_chromium(served, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    graph, base = served
    record_case(graph.store, "s-7")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{base}/?token={TOKEN}")
            expect(page.locator("#queue-used")).to_contain_text("Heparin")
            page.fill("#search-box", "diabetes")
            expect(page.locator("#search-suggestions li").first).to_be_visible()  # the suggestions script ran
            page.press("#search-box", "Enter")
            page.click(f"#search-results a[href='/concept/{T2DM}']")
            expect(page.locator("h1")).to_contain_text("Type 2 diabetes")
            page.locator("#concept-edges tr", has_text="Heparin").locator("a.open-edge").click()
            expect(page.locator("#edge-status")).to_have_text("active")
            expect(page.locator("#cases")).to_contain_text("s-7")
            page.fill("#curator", "")
            page.fill("#curator", "dana")
            page.fill("#reason", "heparin is an anticoagulant, not a diabetes treatment")
            page.fill("#evidence", "DailyMed label")
            page.once("dialog", lambda dialog: dialog.accept())  # the rejection is confirmed
            page.click("#reject")
            expect(page.locator("#done")).to_contain_text("Entry 1 recorded: reject by dana")
            expect(page.locator("#edge-status")).to_have_text("rejected")
            expect(page.locator("#history")).to_contain_text("DailyMed label")
            screenshot = tmp_path / "edge-page.png"
            page.screenshot(path=str(screenshot), full_page=True)
            page.goto(f"{base}/edge?key={ISA.text}")
            expect(page.locator("#curator")).to_have_value("dana")  # remembered by the page's script
        finally:
            browser.close()
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    entry = Ledger.of(graph.workspace).entries()[0]
    assert (entry.op, entry.edge, entry.curator, entry.evidence) == ("reject", HEPARIN_TREATS, "dana", ("DailyMed label",))
    assert Curation(graph.store, graph.workspace).live(HEPARIN_TREATS)["status"] == "rejected"


def test_curate_serve_prints_its_url_and_refuses_other_hosts(tiny, cli, monkeypatch):
    monkeypatch.setenv("EHR_R1_WORKSPACE", str(tiny.workspace.root))
    refused = cli("curate", "serve", "--host", "0.0.0.0")
    assert refused.exit_code == 2 and "loopback only" in refused.output and "--allow-remote" in refused.output
    env = {**os.environ, "EHR_R1_WORKSPACE": str(tiny.workspace.root), "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, "-m", "ehr_r1.cli", "curate", "serve", "--port", "0"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("curation page: http://127.0.0.1:") and "/?token=" in line
        url = line.split(": ", 1)[1].strip()
        assert httpx.get(url, timeout=60).status_code == 200
        assert httpx.get(url.split("?")[0], timeout=60).status_code == 403
    finally:
        server.terminate()
        server.wait(timeout=60)
