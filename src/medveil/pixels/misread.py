"""The file's own identifiers in recognised text, as OCR misreads them.

A recogniser reading a name burned into an image gets most of it right and
some of it wrong: words run together ("11HENRY NICDE" for "11 HENRY
NICOLE"), letters and digits that look alike swap (O and 0, I, L and 1, S
and 5), a letter is lost or doubled. The free-text detectors
(:class:`medveil.text.TextCleaner`) look for whole words spelled right, so
under the ``phi-only`` pixel policy such a line was kept. This module looks
for each of the file's own identifiers in the line as OCR may have written
it:

* both are *squashed*: upper case, letters and digits only, every glyph
  that OCR confuses mapped to one representative (O, 0, Q, D; I, 1, L, J,
  |, !; S, 5; B, 8; Z, 2; G, 6);
* an identifier part is found when it is a substring of the squashed line,
  or (five characters or more) one edit away from a substring of it (two
  edits from nine characters on).

The parts looked for: each part of a person name of four letters or more
(not a placeholder, clinical term or common word: a patient called "Head"
does not make "HEAD" PHI), each ID of five characters or more, each date in
its numeric and month-name forms, and each word of five letters or more of
an institution's name that says which place it is (not "Hospital", "Community"
or "Clinic") and is neither clinical nor common. A line that
holds one is PHI (reason ``phi``). Nothing found is logged or kept.
"""

from __future__ import annotations

import re
from datetime import date

from medveil.text import KnownIdentifiers
from medveil.text.allow import is_clinical, is_common
from medveil.text.dates import own_date_forms
from medveil.text.forms import KIND_WORDS, PLACEHOLDERS

#: Glyphs OCR confuses, each mapped to one representative.
_CONFUSED = str.maketrans({"0": "O", "Q": "O", "D": "O", "1": "I", "L": "I", "J": "I", "|": "I", "!": "I",
                           "5": "S", "8": "B", "2": "Z", "6": "G"})
_NOT_ALNUM = re.compile(r"[^0-9A-Z|!]")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
#: Shortest parts looked for, by kind; parts this long or longer may be one edit away.
MIN_NAME, MIN_ID, MIN_DATE, MIN_WORD = 4, 5, 6, 5
ONE_EDIT, TWO_EDITS = 5, 9


def squash(text: str) -> str:
    """*text* as compared: upper case, letters and digits only, confusable glyphs made one."""
    return _NOT_ALNUM.sub("", text.upper()).translate(_CONFUSED)


class MisreadMatcher:
    """Finds one file's identifiers in OCR text (see the module docstring)."""

    def __init__(self, known: KnownIdentifiers) -> None:
        parts: set[str] = set()
        for name in known.names:
            for part in re.split(r"[\^\s,.]+", name):
                if len(part) >= MIN_NAME and part.upper() not in PLACEHOLDERS and not is_clinical(part) \
                        and not is_common(part):
                    parts.add(squash(part))
        for value in known.ids:
            significant = re.sub(r"[\s\-/.]", "", value).lstrip("0")
            if len(significant) >= MIN_ID and significant.upper() not in PLACEHOLDERS:
                parts.add(squash(significant))
        for value in known.dates:
            parts.update(squash(form) for form in _date_forms(value) if len(squash(form)) >= MIN_DATE)
        for value in known.institutions:
            for word in re.split(r"[\s,.&/\-]+", value):
                if len(word) >= MIN_WORD and word.lower() not in KIND_WORDS and not is_clinical(word) \
                        and not is_common(word):
                    parts.add(squash(word))
        self._parts = tuple(sorted(part for part in parts if part))

    def __bool__(self) -> bool:
        return bool(self._parts)

    def found_in(self, text: str) -> bool:
        """Whether *text* holds one of the file's identifiers, as OCR may have misread it."""
        line = squash(text)
        if not line:
            return False
        for part in self._parts:
            if part in line:
                return True
            edits = 2 if len(part) >= TWO_EDITS else 1 if len(part) >= ONE_EDIT else 0
            if edits and within_edits(part, line, edits):
                return True
        return False


#: Field labels of four letters or more, as screens and film labels write them (the patterns of
#: :mod:`medveil.pixels.select` find them spelled right; these find them misread).
LABEL_WORDS = ("PATIENT", "NAME", "BIRTH", "INSTITUTION", "HOSPITAL", "ACCESSION", "PHYSICIAN", "REFERRING",
               "DOCTOR", "ADDRESS", "PHONE", "GENDER", "OPERATOR", "CLINIC", "STUDY DATE", "EXAM DATE")
_LABEL_PARTS = tuple(squash(word) for word in LABEL_WORDS)


def misread_label(text: str) -> bool:
    """Whether a word of *text* is a field label OCR misread by one letter ("Namc", "Patlent",
    "lnstitutlon"); labels of seven letters or more may also have lost or gained one. A clinical
    term or common English word is taken as written."""
    for token in re.split(r"[\s:;#.]+", text):
        word = squash(token)
        if len(word) < 4 or is_clinical(token) or is_common(token):
            continue  # a word spelled right is that word ("SAME", "NAPE"), not a misread label
        for label in _LABEL_PARTS:
            if len(word) == len(label) and sum(a != b for a, b in zip(word, label)) <= 1:
                return True
            if len(label) >= 7 and abs(len(word) - len(label)) <= 1 and within_edits(label, word, 1) \
                    and len(word) <= len(label) + 1:
                return True
    return False


def _date_forms(value: str) -> set[str]:
    """A DA value's numeric forms and its month-name forms ("2019 Jul 11", "11 JUL 2019")."""
    forms = set(own_date_forms(value))
    m = re.match(r"\s*((?:19|20)[0-9]{2})([01][0-9])([0-3][0-9])", value or "")
    if m:
        try:
            day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return forms
        month = _MONTHS[day.month - 1]
        for dd in {f"{day.day:02d}", str(day.day)}:
            forms.update({f"{day.year}{month}{dd}", f"{dd}{month}{day.year}", f"{month}{dd}{day.year}"})
    return forms


def within_edits(part: str, text: str, edits: int) -> bool:
    """Whether some substring of *text* is at most *edits* insertions, deletions or substitutions
    away from *part* (approximate substring matching, one row of the edit table at a time)."""
    previous = list(range(len(part) + 1))
    for character in text:
        current = [0]  # a match may start anywhere in the text
        for index, wanted in enumerate(part, start=1):
            current.append(min(previous[index] + 1, current[index - 1] + 1,
                               previous[index - 1] + (character != wanted)))
        if current[-1] <= edits:
            return True
        previous = current
    return previous[-1] <= edits
