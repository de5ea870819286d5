"""Identifiers seen in the input, kept so that output can be checked against them later.

The workspace must not hold original identifiers, so what is kept is a keyed
fingerprint (HMAC under the run's key, purpose ``verify``) of each
identifier in a normalised form: case folded, every run of characters other
than letters and digits made one space. Output text is normalised the same
way and every run of up to :data:`MAX_WORDS` consecutive words is
fingerprinted and looked up, so "SMITH^JOHN" in a header is found as "John
Smith" burned into pixels only if the words come in that order; name
components are fingerprinted on their own as well.

Dates of birth are fingerprinted in the spellings screens use
(``1961-02-03``, ``02/03/1961``, ``03.02.1961`` ...), since a DICOM DA
value is rarely what is burned in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

from pydicom import Dataset

from medveil.engine.residuals import Identifiers, collect_identifiers, sop_class_of
from medveil.policy import Policy
from medveil.pseudonym.keys import Key, derive

MAX_WORDS = 6
#: Normalised identifiers shorter than this match too much ("jo", "12").
MIN_CHARS = 4
_NOT_WORD = re.compile(r"[^\w]+|_+", re.UNICODE)
_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def normalise(text: str) -> str:
    if not text.isascii():  # compatibility forms (fullwidth 'ＳＭＩＴＨ') read as what they show
        text = unicodedata.normalize("NFKC", text)
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


def runs(text: str, max_words: int = MAX_WORDS) -> Iterator[str]:
    """Every run of 1..max_words consecutive normalised words of *text*."""
    words = normalise(text).split()
    for start in range(len(words)):
        for end in range(start + 1, min(len(words), start + max_words) + 1):
            yield " ".join(words[start:end])


def date_spellings(value: str) -> list[str]:
    match = _DA.match(value.strip())
    if not match:
        return []
    y, m, d = match.groups()
    return [f"{y}-{m}-{d}", f"{m}/{d}/{y}", f"{d}/{m}/{y}", f"{d}.{m}.{y}", f"{y}/{m}/{d}",
            f"{m}-{d}-{y}", f"{d}-{m}-{y}"]


def identifier_words(ds: Dataset, policy: Policy, identifiers: Identifiers | None = None) -> set[str]:
    """The normalised identifiers of *ds* that must not appear in its output.

    *identifiers*, when the caller has collected them already (the engine
    needs them too), saves collecting them again.
    """
    if identifiers is None:
        identifiers = collect_identifiers(ds, policy, sop_class_of(ds))
    words: set[str] = set()
    for text in identifiers.words:
        words.add(text)
        words.update(date_spellings(text))
    return {w for w in (normalise(t) for t in words) if len(w.replace(" ", "")) >= MIN_CHARS}


class WordMatcher:
    """Finds known identifiers (held in memory, within one worker) in text."""

    def __init__(self, words: Iterable[str]) -> None:
        self._words = {normalise(w) for w in words if w}

    def __bool__(self) -> bool:
        return bool(self._words)

    def find(self, text: str) -> bool:
        return any(run in self._words for run in runs(text))


class Fingerprints:
    """Keyed fingerprints of identifiers; finds them in text without knowing them."""

    def __init__(self, key: Key, digests: Iterable[str] = ()) -> None:
        self._key = key
        self._digests = set(digests)

    def digest(self, normalised: str) -> str:
        return derive(self._key, "verify", normalised).hex()[:32]

    def digests_of(self, words: Iterable[str]) -> list[str]:
        return sorted({self.digest(normalise(w)) for w in words if w})

    def __bool__(self) -> bool:
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def find(self, text: str) -> bool:
        return any(self.digest(run) in self._digests for run in runs(text))
