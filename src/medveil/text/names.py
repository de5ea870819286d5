"""Person names the file did not announce: cue words, titles and a name gazetteer.

A description may name a referring physician, a technologist or the patient in words that no
attribute of the file holds.  Such names are found three ways, from most to least certain:

1. **Titles and role labels.**  After "Dr", "Mr", "Mrs", "Ms", "Prof" (and "DR.SMITH") the next
   capitalised word is a name whatever it is ("Dr. Waters" is a person even though Waters is a
   radiographic view), and so are up to three more name-like words after it.  After a role label
   ("Physician:", "Tech:", "Radiologist", "Referred by", "Dictated by", "Name:") the name is
   the run of capitalised words that are neither clinical terms nor common English words
   ("Tech: JD" is removed, "Tech: CT HEAD" is not).
2. **The gazetteer.**  A first or last name from Faker's lists (``data/names.txt``, built by
   ``tools/build_name_gazetteer.py`` without clinical terms and common words) fires only when
   it is capitalised or upper case AND either stands next to another gazetteer name or an
   initial ("Mary Smith", "SMITH, JOHN", "J. Smith", "Smith J") or follows a cue word ("for",
   "by", "per", "with", "at", "pt", "patient", "cc").  A gazetteer name alone ("HEAD CT Carter")
   is left.
   A surname that is also a common word ("Brown", "Long", "Young") counts only right after a
   gazetteer first name ("Robert Brown"); a single-letter clinical abbreviation ("L", "R")
   counts as an initial only between two names ("JOHN L SMITH").
3. **Credentials.**  One to three capitalised non-clinical words followed by "MD", "PhD",
   "RN", ... ("Zhang Wei, MD").

The span covers the title and the name, and trailing credentials or "Jr."; it never covers the
cue word itself: glue words and labels are the tidier's business (see :mod:`medveil.text.tidy`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

from medveil.text.allow import is_clinical, is_common, read_list
from medveil.text.spans import Span

_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*(?:-[^\W\d_]+(?:['’][^\W\d_]+)*)*")

#: Titles in any case; "MR", "MRS" and "MS" are also a modality, spectroscopy and a disease,
#: so those three count in upper case only when a full stop follows ("MR. SMITH").
_TITLES_ANY_CASE = frozenset({"dr", "doctor", "prof", "professor", "dra"})
_TITLES_CASED = frozenset({"Mr", "Mrs", "Ms", "Miss", "Mx", "Herr", "Frau", "Mme", "Mlle", "Sra",
                           "MISS"})
_TITLES_WITH_STOP = frozenset({"MR", "MRS", "MS", "MX"})
#: Role labels: what follows them (a colon allowed) is a person.
ROLE_WORDS = frozenset({"physician", "phys", "tech", "technologist", "technician", "radiologist",
                        "referring", "attending", "resident", "fellow", "operator", "sonographer",
                        "nurse", "rn", "reader", "surgeon", "provider", "clinician", "pcp",
                        "ordering", "requesting", "author", "observer", "performer", "interpreter",
                        "consultant", "radiographer", "therapist", "dosimetrist", "physicist"})
#: "<verb> by <name>": the verb and "by" together are a role label.
BY_VERBS = frozenset({"referred", "read", "dictated", "signed", "reviewed", "verified", "performed",
                      "interpreted", "approved", "transcribed", "reported", "ordered", "requested",
                      "scanned", "prepared", "authored", "seen", "examined", "acquired", "done",
                      "processed", "reconstructed", "edited", "written", "confirmed"})
#: Labels that announce a person only when a colon follows ("Name: ...", "Patient: ...").
COLON_ROLE_WORDS = frozenset({"name", "patient", "pt", "subject", "cc", "attn", "to", "from"})
#: Weak cues: the gazetteer rule lets a single gazetteer name fire after them.
WEAK_CUES = frozenset({"for", "by", "per", "with", "at", "pt", "patient", "cc", "attn"})
PARTICLES = frozenset({"de", "del", "della", "der", "den", "des", "di", "da", "das", "do", "dos", "du",
                       "la", "le", "los", "las", "van", "von", "vom", "zu", "ter", "ten", "mac", "y"})
_FUNCTION_WORDS = frozenset({"the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "for", "by",
                             "with", "is", "was", "will", "has", "had", "be", "are", "as", "if"})
_MAX_NAME_WORDS = 4
_CREDENTIAL_WORDS = frozenset({"md", "phd", "rn", "mbbs", "mbchb", "frcr", "frcpc", "facr", "np", "dds",
                               "dmd", "jr", "sr", "ii", "iii", "iv"})
_DEGREE = (r"M\.D\.|MD|Ph\.?D\.?|PHD|RN|RT\(R\)(?:\(CT\)|\(MR\))?|MBBS|MBChB|FRCR|FRCPC|FACR|NP|PA-C"
           r"|DDS|DMD")
#: Degrees alone: after capitalised words they make a name ("Zhang Wei, MD"); "Salter Harris II"
#: is a fracture type, so generational suffixes do not.
_DEGREES = re.compile(r"(?:,?[ \t]*(?:" + _DEGREE + r")(?![\w])|,[ \t]*(?:D\.O\.|DO)(?![\w]))+")
#: What may follow a name found otherwise and goes with it: degrees and "Jr.", "III".
_CREDENTIALS = re.compile(r"(?:,?[ \t]*(?:" + _DEGREE + r"|Jr\.?|JR\.?|Sr\.?|SR\.?|III|II|IV)(?![\w])"
                          r"|,[ \t]*(?:D\.O\.|DO)(?![\w]))+")


@cache
def gazetteer() -> dict[str, frozenset[str]]:
    """Name (lower case) -> its kinds ("first", "last"), loaded once per process."""
    names = {}
    for line in read_list("names.txt"):
        word, _, kinds = line.partition("\t")
        names[word] = frozenset(kinds.split(","))
    return names


@cache
def first_names() -> frozenset[str]:
    return frozenset(w for w, kinds in gazetteer().items() if "first" in kinds)


@cache
def common_surnames() -> frozenset[str]:
    """Surnames that are also common words ("brown", "long"): names only after a first name."""
    return frozenset(w for w, kinds in gazetteer().items() if "common" in kinds)


def _lookup(token: str) -> str:
    lower = token.lower()
    return lower if lower.isascii() else _fold(lower)


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def in_gazetteer(token: str) -> bool:
    """True when *token* or, for a double-barrelled name, a part of it is a gazetteer name."""
    names, common = gazetteer(), common_surnames()
    lower = _lookup(token)
    if lower in names:
        return lower not in common
    parts = re.split(r"['’-]", lower)
    return len(parts) > 1 and any(len(p) >= 3 and p in names and p not in common for p in parts)


@dataclass(frozen=True)
class _Token:
    start: int
    end: int
    text: str
    kind: str  # "title", "initial", "letter", "gaz", "surname", "particle", "cap" or "other"
    glued: bool = False  # touches a letter or digit ("B" in "B800")


def _classify(text: str, m: re.Match) -> _Token:
    start, end, word = m.start(), m.end(), m.group()
    glued = (start > 0 and text[start - 1].isalnum()) or (end < len(text) and text[end].isalnum())
    lower = word.lower()
    if glued:
        kind = "other"
    elif lower in _TITLES_ANY_CASE or word in _TITLES_CASED or (
            word in _TITLES_WITH_STOP and text.startswith(".", end)):
        kind = "title"
    elif len(word) == 1:
        if not word.isupper():
            kind = "other"
        else:  # "L", "R", "T", "X", ...: an initial only between two names ("JOHN L SMITH")
            kind = "letter" if is_clinical(word) else "initial"
    elif lower in PARTICLES:
        kind = "particle"
    elif lower in _CREDENTIAL_WORDS or not word[0].isupper():
        kind = "other"
    elif is_common(lower):
        kind = "surname" if _lookup(word) in common_surnames() and not is_clinical(lower) else "other"
    elif len(word) >= 3 and in_gazetteer(word):
        kind = "gaz"
    else:
        kind = "cap"
    return _Token(start, end, word, kind, glued)


def _joins(gap: str, left: _Token) -> bool:
    """Whether two words separated by *gap* can belong to one name."""
    if gap.strip(" \t") == "":
        return bool(gap)
    if gap == "^":
        return True
    if gap.strip(" \t") == ",":
        return left.kind != "title"
    if gap.rstrip(" \t") == ".":
        return left.kind in ("initial", "letter", "title")
    return False


class _Scanner:
    """One pass over the words of one text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = [_classify(text, m) for m in _TOKEN.finditer(text)]

    def gap(self, i: int) -> str:
        """Text between token *i* and token *i + 1*."""
        return self.text[self.tokens[i].end:self.tokens[i + 1].start]

    def adjacent(self, i: int) -> bool:
        return i + 1 < len(self.tokens) and _joins(self.gap(i), self.tokens[i])

    def run(self, j: int, kinds: frozenset[str], *, force_first: bool = False) -> int | None:
        """Index of the last token of the name that starts at *j*, taking tokens of *kinds*
        (particles only between them); None when token *j* cannot start a name."""
        first = self.tokens[j]
        if not (first.kind in kinds or (force_first and first.text[0].isupper() and not first.glued
                                        and first.kind != "title"
                                        and first.text.lower() not in _FUNCTION_WORDS)):
            return None
        last, words = j, 1
        k = j
        while words < _MAX_NAME_WORDS and self.adjacent(k):
            nxt = self.tokens[k + 1]
            if nxt.kind in kinds:
                last = k = k + 1
                words += 1
            elif nxt.kind in ("particle", "letter") and self.adjacent(k + 1):
                k += 1
            elif nxt.kind == "surname" and _is_first_name(self.tokens[k]):
                last = k + 1  # "Robert Brown": a common-word surname ends the name
                break
            else:
                break
        return last

    def strong_cue_end(self, i: int) -> int | None:
        """Index of the first token after a role label that starts at *i*, if one does."""
        tokens, lower = self.tokens, self.tokens[i].text.lower()
        if i + 1 >= len(tokens):
            return None
        gap = self.gap(i)
        if lower in BY_VERBS and tokens[i + 1].text.lower() == "by" and i + 2 < len(tokens) \
                and self.gap(i + 1).strip(" \t:") == "":
            return i + 2
        if lower in ROLE_WORDS and gap.strip(" \t:") == "":
            return i + 1
        if lower in COLON_ROLE_WORDS and gap.strip(" \t") == ":":
            return i + 1
        return None

    def span(self, first: int, last: int) -> Span:
        end = self.tokens[last].end
        credentials = _CREDENTIALS.match(self.text, end)
        if credentials and credentials.end() > end:
            end = credentials.end()
        return Span(self.tokens[first].start, end, "name")


def _is_first_name(token: _Token) -> bool:
    return token.kind == "gaz" and _lookup(token.text) in first_names()


_STRONG = frozenset({"gaz", "initial", "cap"})
_GAZ = frozenset({"gaz", "initial"})


def find_names(text: str) -> list[Span]:
    scanner = _Scanner(text)
    tokens = scanner.tokens
    spans: list[Span] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        # 1. "Dr. Smith", "DR.SMITH", "Mr John Smith".
        if token.kind == "title" and i + 1 < len(tokens) and scanner.gap(i).strip(" \t") in ("", "."):
            last = scanner.run(i + 1, _STRONG, force_first=True)
            if last is not None:
                spans.append(scanner.span(i, last))
                i = last + 1
                continue
        # 1b. "Physician: X", "Referred by X", "Name: X".
        after = scanner.strong_cue_end(i)
        if after is not None:
            last = scanner.run(after, _STRONG)
            if last is not None:
                spans.append(scanner.span(after, last))
                i = last + 1
                continue
        # 2. The gazetteer, with or without a weak cue before the name.
        weak = token.text.lower() in WEAK_CUES and i + 1 < len(tokens) \
            and scanner.gap(i).strip(" \t:") == ""
        for start, cued in ((i + 1, True), (i, False)) if weak else ((i, False),):
            last = scanner.run(start, _GAZ)
            if last is None:
                continue
            run = [t for t in tokens[start:last + 1] if t.kind in _GAZ or t.kind == "surname"]
            gazetteer_names = sum(t.kind == "gaz" for t in run)
            if gazetteer_names and (cued or len(run) >= 2):
                spans.append(scanner.span(start, last))
                i = last
                break
        else:
            # 3. "Zhang Wei, MD": capitalised words followed by credentials.
            last = scanner.run(i, _STRONG) if token.kind in ("gaz", "cap") else None
            credentials = _DEGREES.match(text, tokens[last].end) if last is not None else None
            if last is not None and credentials and credentials.end() > credentials.start():
                spans.append(scanner.span(i, last))
                i = last
        i += 1
    return spans
