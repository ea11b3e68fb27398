"""Context windows over a timeline's events frame, counted and listed without per-sample scans.

A window is a subject, a time range ``start <= time < end`` and optionally an admission. With an
admission (``same_admission``) it holds that admission's events and, as the serializer's window
rule, the events without an admission lying between the window's first and last event of the
admission; an anchor without an admission (an outpatient lab, an OMR row) takes the subject's other
events without an admission. Without ``same_admission`` it holds all of the subject's events in the
range. Excluded tables are left out before anything is counted.

Events are sorted by (subject, time) in event_id order, so one sorted integer key per event
(group, second) turns every window into two ``numpy.searchsorted`` calls: counting is O(log n) per
window and listing costs only the events listed. Times are compared at whole seconds (MIMIC-IV
times have no fractions); a bound with a fraction of a second is rounded up, so the event at the
second before it stays in and the one at it stays out, exactly as for a whole-second bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

_SECOND_BITS = 34  # 544 years of seconds; the group or subject id takes the upper 29 bits


@dataclass
class _Grouped:
    """Kept events sorted by (group, time): group = the admission, or the subject for events without one."""

    keys: np.ndarray  # sorted group keys
    ids: np.ndarray  # event_id at each sorted position
    unlinked_ids: np.ndarray  # event ids of kept events without an admission, ascending
    kept_ids: np.ndarray  # every kept event id, ascending (= subject, time order)
    kept_keys: np.ndarray  # subject key of each kept event, ascending


class EventWindows:
    """Window counting and listing over one Timeline's events."""

    def __init__(self, events: pl.DataFrame):
        self.n = events.height
        self.subject = events["subject_id"].to_numpy().astype(np.int64)
        hadm = events["hadm_id"]
        self.has_hadm = hadm.is_not_null().to_numpy()
        self.hadm = hadm.fill_null(-1).to_numpy().astype(np.int64)
        seconds = events["time"].dt.epoch("s").to_numpy().astype(np.int64)
        self.base = int(seconds.min()) - 1 if self.n else 0
        self.seconds = seconds - self.base
        self.table = events["table"].cast(pl.String).to_numpy()
        self.hadm_values = np.unique(self.hadm[self.has_hadm])
        self.subject_values = np.unique(self.subject)
        self._grouped: dict[frozenset[str], _Grouped] = {}
        if self.n and (np.diff(self.subject) < 0).any():
            raise ValueError("events must be sorted by subject and time (a Timeline's events frame is)")

    # ------------------------------------------------------------------ keys
    def _group_of(self, subject: np.ndarray, hadm: np.ndarray, has_hadm: np.ndarray) -> np.ndarray:
        """Group number: 1 + admission rank, or 1 + #admissions + subject rank; -1 when unknown."""
        group = np.full(len(subject), -1, dtype=np.int64)
        if len(self.hadm_values):
            pos = np.searchsorted(self.hadm_values, hadm)
            found = has_hadm & (pos < len(self.hadm_values))
            found[found] = self.hadm_values[pos[found]] == hadm[found]
            group[found] = pos[found] + 1
        pos = np.searchsorted(self.subject_values, subject)
        found = ~has_hadm & (pos < len(self.subject_values))
        found[found] = self.subject_values[pos[found]] == subject[found]
        group[found] = len(self.hadm_values) + 1 + pos[found]
        return group

    def _grouping(self, excluded: frozenset[str]) -> _Grouped:
        if excluded not in self._grouped:
            keep = ~np.isin(self.table, list(excluded)) if excluded else np.ones(self.n, dtype=bool)
            ids = np.flatnonzero(keep)
            group = self._group_of(self.subject[ids], self.hadm[ids], self.has_hadm[ids])
            keys = (group << _SECOND_BITS) + self.seconds[ids]
            order = np.argsort(keys, kind="stable")  # ids ascend within equal keys
            self._grouped[excluded] = _Grouped(
                keys=keys[order],
                ids=ids[order],
                unlinked_ids=ids[~self.has_hadm[ids]],
                kept_ids=ids,
                kept_keys=(self.subject[ids] << _SECOND_BITS) + self.seconds[ids],
            )
        return self._grouped[excluded]

    def _bounds(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        def seconds(column: str) -> np.ndarray:
            micros = frame[column].dt.epoch("us").cast(pl.Int64).to_numpy()
            return -(-micros // 1_000_000) - self.base  # ceil to whole seconds

        start, end = seconds("start"), seconds("end")
        return np.clip(start, 0, (1 << _SECOND_BITS) - 1), np.clip(end, 0, (1 << _SECOND_BITS) - 1)

    def _ranges(self, frame: pl.DataFrame, excluded: frozenset[str]):
        """Per window: own range [lo, hi) in the grouped order, unlinked range, any-admission range."""
        grouped = self._grouping(excluded)
        start, end = self._bounds(frame)
        subject = frame["subject_id"].to_numpy().astype(np.int64)
        hadm_series = frame["hadm_id"]
        has_hadm = hadm_series.is_not_null().to_numpy()
        hadm = hadm_series.fill_null(-1).to_numpy().astype(np.int64)
        same = frame["same_admission"].to_numpy().astype(bool)
        empty = end <= start

        group = self._group_of(subject, hadm, has_hadm)
        known = group >= 0
        base = np.where(known, group, 0) << _SECOND_BITS
        lo = np.searchsorted(grouped.keys, base + start, side="left")
        hi = np.searchsorted(grouped.keys, base + end, side="left")
        own = np.where(known & same & ~empty, hi - lo, 0)
        lo, hi = np.where(own > 0, lo, 0), np.where(own > 0, hi, 0)

        # events without an admission between the admission's first and last event in the window
        u_lo = np.zeros(len(frame), dtype=np.int64)
        u_hi = np.zeros(len(frame), dtype=np.int64)
        with_unlinked = (own > 0) & has_hadm
        if with_unlinked.any() and len(grouped.unlinked_ids):
            first = grouped.ids[lo[with_unlinked]]
            last = grouped.ids[hi[with_unlinked] - 1]
            u_lo[with_unlinked] = np.searchsorted(grouped.unlinked_ids, first, side="left")
            u_hi[with_unlinked] = np.searchsorted(grouped.unlinked_ids, last, side="right")

        # windows over every admission of the subject
        subject_base = subject << _SECOND_BITS
        a_lo = np.searchsorted(grouped.kept_keys, subject_base + start, side="left")
        a_hi = np.searchsorted(grouped.kept_keys, subject_base + end, side="left")
        any_admission = ~same & ~empty
        a_lo, a_hi = np.where(any_admission, a_lo, 0), np.where(any_admission, a_hi, 0)
        return grouped, (lo, hi), (u_lo, u_hi), (a_lo, a_hi)

    # ------------------------------------------------------------------ public
    def count(self, frame: pl.DataFrame, excluded: frozenset[str] = frozenset()) -> np.ndarray:
        """Number of events in each window of ``frame`` (subject_id, hadm_id, start, end, same_admission)."""
        if frame.is_empty():
            return np.zeros(0, dtype=np.int64)
        _, (lo, hi), (u_lo, u_hi), (a_lo, a_hi) = self._ranges(frame, excluded)
        return (hi - lo) + (u_hi - u_lo) + (a_hi - a_lo)

    def list(self, frame: pl.DataFrame, excluded: frozenset[str] = frozenset()) -> pl.DataFrame:
        """(window, event_id) pairs, windows numbered by row of ``frame``, event ids ascending per window."""
        if frame.is_empty():
            return pl.DataFrame(schema={"window": pl.Int64, "event_id": pl.Int64})
        grouped, (lo, hi), (u_lo, u_hi), (a_lo, a_hi) = self._ranges(frame, excluded)
        window = np.arange(len(frame), dtype=np.int64)
        parts = [
            (_expand(window, lo, hi), grouped.ids),
            (_expand(window, u_lo, u_hi), grouped.unlinked_ids),
            (_expand(window, a_lo, a_hi), grouped.kept_ids),
        ]
        windows = np.concatenate([w for (w, _), _ in parts])
        ids = np.concatenate([source[pos] for (_, pos), source in parts])
        order = np.lexsort((ids, windows))
        return pl.DataFrame({"window": windows[order], "event_id": ids[order]})


def _expand(window: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each window repeated once per position of its range [lo, hi), with those positions."""
    lengths = np.maximum(hi - lo, 0)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    owner = np.repeat(window, lengths)
    offsets = np.cumsum(lengths) - lengths
    positions = np.arange(total, dtype=np.int64) - np.repeat(offsets, lengths) + np.repeat(lo, lengths)
    return owner, positions
