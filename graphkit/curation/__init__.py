"""The curation ledger of edge corrections, its replay, the review queue and the web page.

    from graphkit.curation import Curation, Ledger, EdgeKey, replay
    curation = Curation(store, workspace)            # changes: ledger first, then the live graph
    curation.reject("C0025598|MAY_TREAT|C0011860|RXNORM", curator="alice", reason="...")
    replay(store, workspace)                         # the whole ledger onto a (rebuilt) graph
"""

from graphkit.curation.ledger import Change, EdgeKey, Entry, Ledger, LedgerReport, TornLedgerError
from graphkit.curation.replay import ReplayReport, replay, replay_after_build
from graphkit.curation.service import Curation, StaleEditError

__all__ = [
    "Change",
    "Curation",
    "EdgeKey",
    "Entry",
    "Ledger",
    "LedgerReport",
    "ReplayReport",
    "StaleEditError",
    "TornLedgerError",
    "replay",
    "replay_after_build",
]
