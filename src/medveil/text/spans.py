"""Spans of PHI found in a text, and how overlapping findings become one decision.

Several detectors often find the same thing ("20140321" is both one of the file's own dates
and a date in a common format) or overlapping pieces of it (a known surname inside an
institution's name).  The cleaner must remove each character once and report one category
per removed piece, so overlapping spans are merged into their union, named after the longest
of them (ties go to the more specific category in :data:`CATEGORIES` order).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Every category a span may carry, most specific first (the order breaks ties in a merge).
#: "other" is for :attr:`KnownIdentifiers.other`, values the caller asked to remove verbatim.
CATEGORIES = ("timestamp", "date", "ssn", "email", "phone", "age", "name", "address",
              "institution", "id", "other")
_RANK = {category: rank for rank, category in enumerate(CATEGORIES)}


@dataclass(frozen=True, order=True)
class Span:
    """``text[start:end]`` is PHI of kind *category*.

    *replacement* is set only for dates and timestamps when the caller gave a date offset:
    the span is then rewritten (shifted) instead of removed.
    """

    start: int
    end: int
    category: str
    replacement: str | None = None

    def __post_init__(self) -> None:
        if self.category not in _RANK:
            raise ValueError(f"unknown span category {self.category!r}")
        if not 0 <= self.start < self.end:
            raise ValueError("a span must cover at least one character")


def merge(spans: list[Span]) -> list[Span]:
    """Sorted, non-overlapping spans covering the union of *spans*.

    Spans that only touch (one ends where the next starts) stay separate: each is its own
    finding.  A merged span loses any replacement; the caller recomputes one for the union.
    """
    if not spans:
        return []
    ordered = sorted(spans, key=lambda s: (s.start, -s.end, _RANK[s.category]))
    merged: list[Span] = []
    group = [ordered[0]]
    end = ordered[0].end
    for span in ordered[1:]:
        if span.start < end:
            group.append(span)
            end = max(end, span.end)
            continue
        merged.append(_union(group, end))
        group, end = [span], span.end
    merged.append(_union(group, end))
    return merged


def _union(group: list[Span], end: int) -> Span:
    if len(group) == 1:
        return group[0]
    best = min(group, key=lambda s: (-(s.end - s.start), _RANK[s.category]))
    return Span(group[0].start, end, best.category)
