"""Word lists that keep the heuristics off clinical language.

``clinical_terms.txt`` is medveil's own allow-list of radiology vocabulary; a word in it is
never taken for a name, a street or a city on its own.  ``common_words.txt`` (generated with
the name gazetteer by ``tools/build_name_gazetteer.py``) lists ordinary English words, so that
"Dr. Smith Will Call" ends the name at "Smith".  Both load once per process.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

#: Splits a token into the words that the lists are checked against ("SEMI-ERECT", "T2W_TSE").
_PARTS = re.compile(r"[/_\-^]+")


def read_list(name: str) -> list[str]:
    """Lines of the data file *name*, without comments and blank lines."""
    text = resources.files("medveil.text").joinpath("data").joinpath(name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@cache
def clinical_terms() -> frozenset[str]:
    return frozenset(word.lower() for word in read_list("clinical_terms.txt"))


@cache
def common_words() -> frozenset[str]:
    return frozenset(word.lower() for word in read_list("common_words.txt"))


def is_clinical(token: str) -> bool:
    """True when *token* (any case) is an allow-listed term, or every part of it is one
    ("SEMI-ERECT", "T2W_TSE", "W/WO")."""
    word = token.lower().strip(".")
    terms = clinical_terms()
    if word in terms:
        return True
    parts = [p for p in _PARTS.split(word) if p]
    return len(parts) > 1 and all(p in terms for p in parts)


def is_common(token: str) -> bool:
    """True for an ordinary English word or an allow-listed clinical term."""
    word = token.lower().strip(".")
    return word in common_words() or is_clinical(word)
