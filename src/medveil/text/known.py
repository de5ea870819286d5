"""One file's identifying values, and the patterns that find them in free text.

The surest way to find PHI in a description is to know it already: the patient's name, IDs,
dates, institution and addresses are in the file's header.  :class:`KnownIdentifiers` holds
those values by kind (the engine collects them from a dataset:
:func:`medveil.engine.identifiers.collect_known`); :class:`KnownMatcher` turns them into
patterns for every way text may write them (:mod:`medveil.text.forms`), once per
:class:`~medveil.text.TextCleaner`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from medveil.text.dates import own_date_forms
from medveil.text.forms import address_forms, id_form, institution_forms, name_forms, name_words, phone_forms, phrase
from medveil.text.spans import Span

_LEFT = r"(?<![^\W_])"
_RIGHT = r"(?![^\W_])"


@dataclass(frozen=True)
class KnownIdentifiers:
    """The file's own identifying values, by kind."""

    names: tuple[str, ...] = ()         # person names as in PN values: "SMITH^JOHN^A", "John Smith"
    ids: tuple[str, ...] = ()           # patient IDs, accession numbers, other IDs, study IDs
    dates: tuple[str, ...] = ()         # DA/DT values of the file, e.g. "20140321"
    institutions: tuple[str, ...] = ()  # institution, department and station names
    addresses: tuple[str, ...] = ()     # patient/institution addresses (free text)
    phones: tuple[str, ...] = ()
    other: tuple[str, ...] = ()         # anything else to remove verbatim
    #: Values of identifying attributes the policy keeps on purpose (a retained Device Serial
    #: Number): text that is exactly one of them is left alone, wherever it is copied.
    kept: tuple[str, ...] = ()


# --- the compiled matcher --------------------------------------------------------------------

def _alternation(forms: Iterable[str], flags: int = re.IGNORECASE,
                 left: str = _LEFT, right: str = _RIGHT) -> re.Pattern | None:
    """One pattern trying *forms* in the order given (the first that matches at a position
    wins, so the caller lists longer forms first)."""
    return _compiled(tuple(dict.fromkeys(forms)), flags, left, right)


@lru_cache(maxsize=2048)
def _compiled(unique: tuple[str, ...], flags: int, left: str, right: str) -> re.Pattern | None:
    # Files of one series share most identifiers: compiling each alternation once per
    # process, not once per file, is most of the cost of building a matcher.
    if not unique:
        return None
    return re.compile(left + "(?:" + "|".join(unique) + ")" + right, flags)


class KnownMatcher:
    """Patterns for one file's :class:`KnownIdentifiers`, compiled once."""

    def __init__(self, known: KnownIdentifiers) -> None:
        full, components, initials = [], [], []
        for value in known.names:
            forms, parts, inits = name_forms(value)
            full += forms
            components += parts
            initials += inits
        inst_forms, acronyms = [], []
        for value in known.institutions:
            forms, acros = institution_forms(value)
            inst_forms += forms
            acronyms += acros
        dates = sorted({re.escape(f) for v in known.dates for f in own_date_forms(v)}, key=len, reverse=True)
        ids = sorted({form for form in map(id_form, known.ids) if form}, key=len, reverse=True)
        inst_forms.sort(key=len, reverse=True)
        other = [phrase(name_words(v)) if len(name_words(v)) > 1 else re.escape(v.strip())
                 for v in known.other if len(v.strip()) >= 3]
        self._patterns: list[tuple[re.Pattern, str]] = [
            (p, category) for p, category in (
                # Every person's full forms before anyone's single components, so that "Smith,
                # Mary" is one span even when another person of the file is also a Smith.
                (_alternation(sorted(set(full), key=lambda f: (-len(f), f)) + components), "name"),
                (_alternation(initials, flags=0), "name"),
                (_alternation(ids), "id"),
                (_alternation(dates, flags=0, left=r"(?<![\w])", right=r"(?![\w]|[.\-/][0-9])"), "date"),
                (_alternation(inst_forms), "institution"),
                (_alternation(acronyms, flags=0), "institution"),
                (_alternation(f for v in known.addresses for f in address_forms(v)), "address"),
                (_alternation((f for v in known.phones for f in phone_forms(v)), flags=0,
                              left=r"(?<![0-9])", right=r"(?![0-9])"), "phone"),
                (_alternation(other), "other"),
            ) if p is not None]

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def find(self, text: str) -> list[Span]:
        return [Span(m.start(), m.end(), category)
                for pattern, category in self._patterns
                for m in pattern.finditer(text) if m.end() > m.start()]
