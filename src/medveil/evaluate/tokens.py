"""Tokens and text comparison with the MIDI-B validation script's rules.

The script lower-cases both texts, strips angle brackets, treats two numbers as
equal when their values are, passes or fails at once when the expected text is
a substring of the found one, and otherwise splits the expected text with
NLTK's ``word_tokenize``, drops English stopwords and punctuation, and asks of
each remaining token whether it occurs *anywhere* in the found text (a
substring test, not a token match).

NLTK's tokenizer needs its "punkt" model, a download; this module splits text
the way the Penn Treebank tokenizer under ``word_tokenize`` does for the values
DICOM carries (punctuation split off words, ``W/O`` and ``2014-03-21`` kept
whole, commas between digits kept, contractions split), without a model.  On
the values where the two could differ (sentence-internal abbreviations such as
"Dr." before a capital), the difference is one trailing period on a token.
"""

from __future__ import annotations

import functools
import re
import string
from importlib import resources

PUNCTUATION = frozenset(string.punctuation) | {"“", "”", "‘", "’", "``", "•", "''"}

_STARTING_QUOTES = re.compile(r'^"|(?<=[\s(\[{<])"')
_PUNCT_AROUND = [
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.\.\."), r" ... "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[\]\[\(\)\{\}<>]"), r" \g<0> "),
    (re.compile(r"--"), r" -- "),
]
_ENDING_QUOTES = [
    (re.compile(r'"'), " '' "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]
_CONTRACTIONS = [
    re.compile(r"(?i)\b(can)(?#X)(not)\b"),
    re.compile(r"(?i)\b(d)(?#X)('ye)\b"),
    re.compile(r"(?i)\b(gim)(?#X)(me)\b"),
    re.compile(r"(?i)\b(gon)(?#X)(na)\b"),
    re.compile(r"(?i)\b(got)(?#X)(ta)\b"),
    re.compile(r"(?i)\b(lem)(?#X)(me)\b"),
    re.compile(r"(?i)\b(more)(?#X)('n)\b"),
    re.compile(r"(?i)\b(wan)(?#X)(na)(?=\s)"),
]


@functools.cache
def stopwords() -> frozenset[str]:
    text = resources.files("medveil.evaluate").joinpath("data/stopwords_en.txt").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def word_tokens(text: str) -> list[str]:
    """Split ``text`` into Treebank-style word and punctuation tokens."""
    text = _STARTING_QUOTES.sub(" `` ", text)
    for pattern, replacement in _PUNCT_AROUND:
        text = pattern.sub(replacement, text)
    text = " " + text + " "
    for pattern, replacement in _ENDING_QUOTES:
        text = pattern.sub(replacement, text)
    for pattern in _CONTRACTIONS:
        text = pattern.sub(r" \1 \2 ", text)
    return text.split()


def content_tokens(text: str) -> list[str]:
    """Tokens of ``text`` that the checks look for: no stopwords, no punctuation."""
    ignored = stopwords()
    return [token for token in word_tokens(text) if token not in ignored and token not in PUNCTUATION]


def _is_number(text: str) -> bool:
    return text.replace(".", "", 1).isdigit()


def compare_text(found: str, expected: str, method: str) -> tuple[bool, float]:
    """(passed, score) for ``retain`` or ``remove`` of ``expected`` in ``found``.

    ``score`` is the share of expected tokens retained (or removed): the
    script's partial credit, reported but not used in the pass rate.
    """
    if method not in ("retain", "remove"):
        raise ValueError(f"unknown method {method!r}")
    retain = method == "retain"
    found = found.replace("<", "").replace(">", "").lower()
    expected = expected.replace("<", "").replace(">", "").lower()
    if _is_number(found) and _is_number(expected):
        same = float(found) == float(expected)
        return (same, 1.0 if same else 0.0) if retain else (not same, 0.0 if same else 1.0)
    if expected in found:
        return (True, 1.0) if retain else (False, 0.0)
    tokens = content_tokens(expected)
    if not tokens:
        # Nothing but stopwords and punctuation, not found verbatim: nothing identifying
        # to keep or to remove.  The script divides by zero here and records an error.
        return True, 1.0
    present = sum(1 for token in tokens if token in found)
    if retain:
        return present == len(tokens), present / len(tokens)
    return present == 0, (len(tokens) - present) / len(tokens)
