"""Name normalization shared by the demo graph build, its coverage measure and name linking.

``normalize_name``: lower case, parenthesized parts dropped (brand names in MIMIC drug strings:
"HYDROmorphone (Dilaudid)"), every run of non-alphanumerics one space, trimmed.
``drug_name_candidates``: the keys a drug string may match a drug concept by, most specific
first: the whole normalized name, its first two words, its first word (at least 3 characters),
so "Sodium Chloride 0.9%  Flush" can match "sodium chloride" and "Vancomycin Oral Liquid"
"vancomycin".
"""

from __future__ import annotations

import re

_PARENS = re.compile(r"\([^)]*\)")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
MIN_KEY = 3


def normalize_name(text: str) -> str:
    text = _PARENS.sub(" ", text.lower())
    return " ".join(_NON_ALNUM.sub(" ", text).split())


def drug_name_candidates(text: str) -> list[str]:
    name = normalize_name(text)
    words = name.split()
    keys = [name, " ".join(words[:2]), words[0] if words else ""]
    out: list[str] = []
    for key in keys:
        if len(key) >= MIN_KEY and key not in out:
            out.append(key)
    return out
