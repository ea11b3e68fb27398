"""Patient-level splits: a subject's split is a fixed function of its subject_id and the ratios.

``split_point(subject_id)`` is the first 8 bytes of SHA-256("ehr-r1/split/<subject_id>") read as an
unsigned integer and divided by 2**64: uniform in [0, 1), the same on every machine, Python and
library version, and unrelated to the subject's storage shard (``graphkit.ehr.source.shard_of``
uses a multiplicative hash). A subject falls in the first split whose cumulative ratio exceeds
its point, so with the default ratios (0.8, 0.1, 0.1) a point below 0.8 is train, below 0.9 val,
else test. Every sample of a subject therefore lands in one split.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

import polars as pl

from graphkit.errors import ConfigError

SPLITS = ("train", "val", "test")
DEFAULT_RATIOS = (0.8, 0.1, 0.1)
_SALT = b"ehr-r1/split/"


def parse_ratios(value: str | Sequence[float] | None) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` (or three numbers) -> ratios that sum to 1; ConfigError otherwise."""
    if value is None:
        return DEFAULT_RATIOS
    if isinstance(value, str):
        try:
            parts = [float(p) for p in value.replace(" ", "").split(",") if p]
        except ValueError:
            raise ConfigError(
                "must be three numbers", where="--split-ratios", value=value, fix="write e.g. 0.8,0.1,0.1"
            ) from None
    else:
        parts = [float(p) for p in value]
    if len(parts) != 3 or any(not math.isfinite(p) or p < 0 for p in parts) or sum(parts) <= 0:
        raise ConfigError(
            "must be three non-negative numbers for train, val and test",
            where="--split-ratios",
            value=value,
            fix="write e.g. 0.8,0.1,0.1",
        )
    total = sum(parts)
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(
            f"must sum to 1 (they sum to {total:g})",
            where="--split-ratios",
            value=value,
            fix="write e.g. 0.8,0.1,0.1",
        )
    return (parts[0], parts[1], parts[2])


def split_point(subject_id: int) -> float:
    digest = hashlib.sha256(_SALT + str(int(subject_id)).encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(subject_id: int, ratios: Sequence[float] = DEFAULT_RATIOS) -> str:
    point = split_point(subject_id)
    bound = 0.0
    for name, ratio in zip(SPLITS, ratios, strict=True):
        bound += ratio
        if point < bound:
            return name
    return next(name for name, ratio in zip(reversed(SPLITS), reversed(ratios), strict=True) if ratio > 0)


def split_frame(subject_ids: Iterable[int], ratios: Sequence[float] = DEFAULT_RATIOS) -> pl.DataFrame:
    """subject_id, split (an Enum of SPLITS) for the given subjects."""
    ids = sorted({int(s) for s in subject_ids})
    return pl.DataFrame(
        {"subject_id": ids, "split": [split_of(s, ratios) for s in ids]},
        schema={"subject_id": pl.Int64, "split": pl.Enum(list(SPLITS))},
    )
