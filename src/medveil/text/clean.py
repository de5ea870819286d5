"""The cleaner: every detector over one text value, one decision per span, tidy removal.

The engine calls :meth:`TextCleaner.clean` once per attribute value that a DICOM "C" (clean)
action covers, so the cost that counts is the per-call one.  The generic detectors' patterns
and word lists are built once per process (:func:`generic_detectors`); the patterns for one
file's own identifiers once per :class:`TextCleaner`; a call only runs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial

from medveil.text.allow import is_clinical
from medveil.text.dates import (
    find_dates,
    find_timestamps,
    shift_date_text,
    shift_timestamp,
)
from medveil.text.known import KnownIdentifiers, KnownMatcher
from medveil.text.names import find_names, first_names
from medveil.text.patterns import (
    find_addresses,
    find_ages,
    find_emails,
    find_ids,
    find_institutions,
    find_phones,
    find_ssns,
)
from medveil.text.spans import Span, merge
from medveil.text.tidy import remove_spans

Detector = Callable[[str], list[Span]]
#: The default for files that give no identifiers of their own.
NO_IDENTIFIERS = KnownIdentifiers()
#: Heuristic categories whose spans are dropped when every word in them is a clinical term.
_WORDY = frozenset({"name", "institution", "address"})


@dataclass(frozen=True)
class CleanResult:
    """The cleaned text and one category per removed or shifted span (never the PHI itself,
    so that the audit store can count what was found without holding it)."""

    text: str
    categories: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.categories)


@cache
def generic_detectors() -> tuple[tuple[Detector, frozenset[str]], ...]:
    """(detector, characters one of which the text must contain for it to find anything).

    Built on first use and kept for the life of the process; loading the gazetteer and the
    word lists happens here, not per cleaner."""
    digits, anything = frozenset("0123456789"), frozenset[str]()
    return (
        (find_timestamps, digits),
        (find_dates, digits),
        (find_ssns, digits),
        (find_emails, frozenset("@")),
        (find_phones, digits),
        (find_ages, anything),
        (find_ids, digits),
        (find_addresses, anything),
        (partial(find_institutions, first_names=first_names()), anything),
        (find_names, anything),
    )


def _all_clinical(text: str) -> bool:
    words = [w for w in text.replace(",", " ").split() if any(c.isalpha() for c in w)]
    return bool(words) and all(is_clinical(w.strip(".,;:()'’")) for w in words) \
        and not any(c.isdigit() for c in text)


class TextCleaner:
    """Finds and removes PHI in free text, knowing one file's own identifiers.

    With *date_offset* (whole days) dates and timestamps are shifted in place, keeping their
    format; without it they are removed like any other PHI."""

    def __init__(self, known: KnownIdentifiers = NO_IDENTIFIERS, *,
                 date_offset: int | None = None) -> None:
        if date_offset is not None and (isinstance(date_offset, bool) or not isinstance(date_offset, int)):
            raise TypeError("date_offset must be a whole number of days")
        self._known = KnownMatcher(known)
        self._detectors = generic_detectors()
        self._offset = date_offset
        kept = sorted({v.strip() for v in known.kept if len(v.strip()) >= 2}, key=len, reverse=True)
        self._kept = re.compile("|".join(re.escape(v) for v in kept), re.IGNORECASE) if kept else None

    def find(self, text: str) -> list[Span]:
        """Sorted, non-overlapping PHI spans of *text*; dates and timestamps carry their
        shifted form when a date offset was given."""
        if not text or text.isspace():
            return []
        spans = self._known.find(text) if self._known else []
        characters = set(text)
        for detector, needs in self._detectors:
            if not needs or not needs.isdisjoint(characters):
                spans.extend(detector(text))
        spans = [s for s in spans if s.category not in _WORDY or not _all_clinical(text[s.start:s.end])]
        if self._kept is not None:  # identifiers the policy keeps on purpose stay in text too
            allowed = [(m.start(), m.end()) for m in self._kept.finditer(text)]
            spans = [s for s in spans if s.category in ("date", "timestamp")
                     or not any(a <= s.start and s.end <= b for a, b in allowed)]
        merged = merge(spans)
        if self._offset is None:
            return merged
        return [self._shifted(text, span) for span in merged]

    def _shifted(self, text: str, span: Span) -> Span:
        shift = {"date": shift_date_text, "timestamp": shift_timestamp}.get(span.category)
        if shift is None:
            return span
        assert self._offset is not None  # find() shifts only when a date offset was given
        replacement = shift(text[span.start:span.end], self._offset)
        if replacement is None:
            return span
        return Span(span.start, span.end, span.category, replacement)

    def clean(self, text: str) -> CleanResult:
        spans = self.find(text)
        if not spans:
            return CleanResult(text, ())
        return CleanResult(remove_spans(text, spans), tuple(span.category for span in spans))


def clean_text(text: str, known: KnownIdentifiers = NO_IDENTIFIERS, *,
               date_offset: int | None = None) -> CleanResult:
    """One-off cleaning; build a :class:`TextCleaner` instead to clean many values of a file."""
    return TextCleaner(known, date_offset=date_offset).clean(text)
