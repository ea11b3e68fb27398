"""The curation ledger on its own: hash chain, head anchor, torn lines, kill -9, concurrent writers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from graphkit.curation.ledger import GENESIS, Change, EdgeKey, Ledger, TornLedgerError
from graphkit.errors import ConfigError, LedgerError

REPO = Path(__file__).resolve().parents[1]
KEY = EdgeKey("C0019134", "MAY_TREAT", "C0011860", "RXNORM")


def change(op: str = "annotate", reason: str = "a note", key: EdgeKey = KEY, **more) -> Change:
    return Change(op, key, more.pop("curator", "alice"), reason, **more)


def filled(path: Path, n: int = 5) -> Ledger:
    ledger = Ledger(path)
    for i in range(n):
        ledger.append(change("reject" if i % 2 == 0 else "restore", f"reason {i}", evidence=(f"PMID:{i}",)))
    return ledger


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_entries_are_chained_and_read_back(tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger = filled(path, 4)
    other = EdgeKey("C1", "ISA", "C2")
    ledger.append(change("add", "a missing fact", key=other, properties={"rela": "isa"}))
    entries = Ledger(path).entries()  # a fresh reader: everything from the file
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev == GENESIS and all(b.prev == a.hash for a, b in zip(entries, entries[1:], strict=False))
    assert [e.op for e in entries] == ["reject", "restore", "reject", "restore", "add"]
    assert entries[2].evidence == ("PMID:2",) and entries[4].properties == {"rela": "isa"}
    first = json.loads(lines(path)[0])
    assert first["edge"] == KEY.to_dict() and first["edge_id"] == KEY.edge_id and first["curator"] == "alice"
    assert first["time"].endswith("Z") and lines(path)[0].startswith(b'{"hash":"')
    assert ledger.version(KEY) == 4 and ledger.version(other) == 5 and ledger.version("0" * 20) == 0
    assert [e.seq for e in ledger.history(KEY.edge_id)] == [1, 2, 3, 4]
    assert json.loads((tmp_path / "ledger.jsonl.head").read_text())["seq"] == 5
    report = Ledger(path).verify()
    assert (report.entries, report.head_seq, report.recorded_head, report.notes) == (5, 5, 5, [])


def test_since_a_number_a_hash_prefix_or_a_time(tmp_path):
    ledger = filled(tmp_path / "ledger.jsonl", 5)
    entries = ledger.entries()
    assert [e.seq for e in ledger.since("3")] == [4, 5]
    assert [e.seq for e in ledger.since(entries[1].hash[:10])] == [3, 4, 5]
    assert len(ledger.since("2000-01-01")) == 5 and ledger.since("2999-01-01T00:00:00Z") == []
    assert len(ledger.since(None)) == 5
    with pytest.raises(ConfigError, match="not a point in the ledger"):
        ledger.since("yesterday")


@pytest.mark.parametrize(
    "bad, message",
    [
        (change(reason="  "), "needs a reason"),
        (change(curator=""), "curator's name"),
        (change("delete"), "unknown ledger operation"),
        (change(properties={"rela": "isa"}), "only an added edge carries properties"),
        (change(reason="x" * 5000), "longer than"),
    ],
)
def test_bad_changes_are_refused_before_anything_is_written(tmp_path, bad, message):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with pytest.raises(ConfigError, match=message):
        ledger.append(bad)
    assert not ledger.path.exists()


def test_edge_keys():
    assert EdgeKey.parse("C1|ISA|C2") == EdgeKey("C1", "ISA", "C2", "")
    assert EdgeKey.parse(KEY.text) == KEY and str(KEY) == "C0019134 -[MAY_TREAT]-> C0011860 (RXNORM)"
    for text in ("C1|ISA", "C1|isa|C2", "|ISA|C2", "C1|ISA|C2|A|B"):
        with pytest.raises(ConfigError):
            EdgeKey.parse(text)


def _rewrite(path: Path, edit) -> None:
    data = lines(path)
    edit(data)
    path.write_bytes(b"".join(data))


@pytest.mark.parametrize(
    "edit, where, message",
    [
        (lambda d: d.__setitem__(1, d[1].replace(b"reason 1", b"reason X")), "line 2", "hash does not match"),
        (lambda d: d.__delitem__(1), "line 2", "entry number 2 expected"),
        (lambda d: d.insert(1, d.pop(2)), "line 2", "entry number 2 expected"),
        (lambda d: d.__setitem__(2, b"not json\n"), "line 3", "not valid JSON"),
        (lambda d: d.__setitem__(0, d[0].replace(b'"v":1', b'"v":1,"extra":1')), "line 1", "fields are not"),
        (lambda d: d.__delitem__(4), "ledger.jsonl", "truncated: entry 5 was written but the file ends at entry 4"),
    ],
    ids=["edited", "removed", "reordered", "garbage", "extra-field", "tail-cut"],
)
def test_tampering_is_detected_and_named(tmp_path, edit, where, message):
    path = tmp_path / "ledger.jsonl"
    filled(path, 5)
    _rewrite(path, edit)
    with pytest.raises(LedgerError, match=message) as caught:
        Ledger(path).verify()
    assert where in caught.value.where and "restore ledger.jsonl from a backup" in caught.value.fix
    with pytest.raises(LedgerError):  # no change is appended to a damaged ledger
        Ledger(path).append(change())


def test_a_rewritten_chain_is_caught_by_the_head_and_a_live_reader(tmp_path):
    path = tmp_path / "ledger.jsonl"
    reader = filled(path, 3)
    # rebuild a consistent two-entry chain (a forger recomputing hashes) over the file
    forged = Ledger(tmp_path / "forged.jsonl")
    forged.append(change("reject", "forged"))
    forged.append(change("restore", "forged"))
    path.write_bytes(forged.path.read_bytes())
    with pytest.raises(LedgerError, match="truncated"):
        reader.refresh()
    forged.append(change("reject", "forged"))
    path.write_bytes(forged.path.read_bytes())
    with pytest.raises(LedgerError, match="entry 3 is not the entry that was written"):
        Ledger(path).verify()


def test_a_torn_last_line_is_reported_kept_aside_and_repaired_only_on_request(tmp_path):
    path = tmp_path / "ledger.jsonl"
    filled(path, 3)
    with open(path, "ab") as handle:
        handle.write(b'{"hash":"0123')  # a write interrupted by a crash
    with pytest.raises(TornLedgerError, match="torn") as caught:
        Ledger(path).verify()
    assert "line 4" in caught.value.where and "--repair-torn" in caught.value.fix
    with pytest.raises(TornLedgerError):
        Ledger(path).append(change())
    assert path.read_bytes().endswith(b'{"hash":"0123')  # nothing repaired silently
    aside = Ledger(path).repair_torn()
    assert aside is not None and aside.read_bytes() == b'{"hash":"0123'
    ledger = Ledger(path)
    ledger.append(change("annotate", "after the repair"))
    assert ledger.verify().entries == 4 and [e.seq for e in ledger.entries()] == [1, 2, 3, 4]
    assert Ledger(path).repair_torn() is None


def test_a_head_lagging_after_a_crash_is_fine_and_caught_up(tmp_path):
    path = tmp_path / "ledger.jsonl"
    filled(path, 3)
    head = tmp_path / "ledger.jsonl.head"
    entries = Ledger(path).entries()
    head.write_text(json.dumps({"seq": 2, "hash": entries[1].hash}))
    report = Ledger(path).verify()
    assert report.entries == 3 and "lags by 1" in report.notes[0]
    head.unlink()
    assert "no head file" in Ledger(path).verify().notes[0]
    Ledger(path).append(change())
    assert json.loads(head.read_text())["seq"] == 4


WRITER = """
import sys
from graphkit.curation.ledger import Change, EdgeKey, Ledger
ledger = Ledger(sys.argv[1])
key = EdgeKey("C1", "ISA", "C2")
i = 0
while True:
    ledger.append(Change("annotate", key, sys.argv[2], f"{sys.argv[2]} {i} " + "x" * (i % 3000)))
    i += 1
    if i == 3:
        print("writing", flush=True)
"""


def test_kill_9_during_writes_leaves_a_valid_ledger(tmp_path):
    path = tmp_path / "ledger.jsonl"
    total = 0
    for round_number, pause in enumerate((0.05, 0.2, 0.45)):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{round_number}"],
                                  cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "writing"
        time.sleep(pause)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        report = Ledger(path).verify()  # never torn, never broken: one write() per entry
        assert report.entries > total + 3
        total = report.entries
    entries = Ledger(path).entries()
    assert [e.seq for e in entries] == list(range(1, total + 1))


APPENDER = """
import sys
from graphkit.curation.ledger import Change, EdgeKey, Ledger
ledger = Ledger(sys.argv[1])
for i in range(int(sys.argv[3])):
    ledger.append(Change("annotate", EdgeKey("C1", "ISA", "C2"), sys.argv[2], f"{sys.argv[2]}-{i}"))
"""


def test_concurrent_writers_in_processes_and_threads_lose_nothing(tmp_path):
    path = tmp_path / "ledger.jsonl"
    processes = [subprocess.Popen([sys.executable, "-c", APPENDER, str(path), f"p{n}", "40"], cwd=REPO)
                 for n in range(3)]
    shared = Ledger(path)  # one object shared by threads, as in the web server

    def threaded(name: str) -> None:
        for i in range(25):
            shared.append(change(reason=f"{name}-{i}", curator=name))

    threads = [threading.Thread(target=threaded, args=(f"t{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(p.wait(timeout=120) == 0 for p in processes)
    entries = Ledger(path).entries()
    expected = {f"p{n}-{i}" for n in range(3) for i in range(40)} | {f"t{n}-{i}" for n in range(3) for i in range(25)}
    assert len(entries) == len(expected) and {e.reason for e in entries} == expected
    assert Ledger(path).verify().entries == len(expected)
    assert os.path.getsize(path) == sum(len(e.to_line()) for e in entries)
