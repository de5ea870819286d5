"""How one identifying value may be written in free text.

Text rarely repeats a header value verbatim.  ``SMITH^JOHN^A`` turns up as "John Smith",
"Smith, John", "J. Smith", "Smith J", "JOHN A SMITH" or "JS"; a patient ID ``00123456`` as "123456" or "12-3456"; a date
``20140321`` as "3/21/14".  (A given name with the family initial, "Margaret T.", needs the
full stop.)  The functions here turn one value into regular expressions for all of
those forms; :class:`medveil.text.known.KnownMatcher` compiles them for one file.

Rules that keep the forms from eating clinical text:

* A name component matches on its own only when it has two or more letters, is not a
  placeholder ("PATIENT", "ANONYMIZED") and is not a clinical term (a patient called "Head"
  is still found as "John Head" but not in "HEAD ROUTINE").  Components of fewer than four
  letters ("Li", "Ng", "Lee") match on their own only capitalised or in upper case.
* Initials ("JS", "JAS") match only as a whole upper-case token that is neither a clinical
  term nor a common word: Charles Thomas's "CT" stays a CT.
* IDs need four significant characters; leading zeros and dashes or blanks between the
  characters are optional in the text.
* Institution, department and station names match with any punctuation between their words,
  "Saint"/"St", "Hospital"/"Hosp" and similar spellings interchangeable, without their
  trailing generic word ("Springfield General" for "Springfield General Hospital") and as an
  upper-case acronym of three letters or more.  A value made only of clinical or common words
  ("RADIOLOGY", "Department of Radiology") is not searched for: it identifies nothing.
* Addresses are searched whole and by part (street, city, ZIP).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from medveil.text.allow import is_clinical, is_common
from medveil.text.patterns import STATE_CODES, STATE_NAMES

#: Values that stand for "no value" and so identify nothing.
PLACEHOLDERS = frozenset({"", "NAME", "PATIENT", "FIRST", "LAST", "MIDDLE", "TEST", "HERE", "OPERATOR",
                          "UNKNOWN", "ANONYMOUS", "ANONYMIZED", "ANONYMISED", "ANON", "NONE", "NULL",
                          "INFO", "DOCTOR", "PHYSICIAN", "N/A", "NA", "-", "--", "*", "?", "0",
                          "REMOVED", "DELETED", "REDACTED", "XXX", "X", "19000101", "000Y",
                          "000000", "00000000", "DUMMY", "DEFAULT", "NOBODY", "NO NAME"})
_TITLES = frozenset({"dr", "mr", "mrs", "ms", "miss", "prof", "doctor"})
_TITLE_PREFIX = re.compile(r"^(?i:dr|mr|mrs|ms|miss|prof|doctor)\.?\s+")
_DEGREE_SUFFIX = re.compile(r"(?:(?:,\s*|\s+)(?i:m\.?d\.?|ph\.?d\.?|d\.?o\.|rn|jr\.?|sr\.?|iii|ii|iv))+$")
_CREDENTIALS = frozenset({"md", "m.d.", "do", "phd", "rn", "jr", "jr.", "sr", "sr.", "ii", "iii", "iv"})
_MIN_ID = 4


# --- person names --------------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    family: str
    given: str = ""
    middle: str = ""


def _clean_component(part: str) -> str:
    """The component with blanks normalised; "" for a placeholder ("NAME", "Last Name")."""
    words = part.split()
    return "" if all(w.upper() in PLACEHOLDERS for w in words) else " ".join(words)


def parse_person(value: str) -> list[Person]:
    """The people a PN value or a written name stands for (one per "=" component group)."""
    people = []
    for group in value.split("="):
        group = _DEGREE_SUFFIX.sub("", _TITLE_PREFIX.sub("", group.strip()))
        if not group:
            continue
        if "^" in group:
            parts = [_clean_component(p) for p in (group.split("^") + [""] * 3)[:3]]
            family, given, middle = parts
        elif "," in group:
            family, _, rest = group.partition(",")
            words = [w for w in rest.split() if w.lower().strip(".") not in _CREDENTIALS]
            family = _clean_component(family)
            given = _clean_component(words[0]) if words else ""
            middle = _clean_component(" ".join(words[1:]))
        else:
            words = [w for w in group.split() if w.lower().strip(".") not in _TITLES]
            words = [w for w in words if w.lower().strip(",") not in _CREDENTIALS]
            words = [_clean_component(w.strip(",")) for w in words]
            words = [w for w in words if w]
            if not words:
                continue
            family = words[-1]
            given = words[0] if len(words) > 1 else ""
            middle = " ".join(words[1:-1])
        if family or given:
            people.append(Person(family or given, given if family else "", middle))
    return people


def _words(component: str) -> str:
    """Regex for a (possibly multi-word or hyphenated) name component."""
    return r"[ \t\-]+".join(re.escape(w) for w in re.split(r"[\s\-]+", component.strip()) if w)


def _initial(component: str) -> str:
    return "(?-i:" + re.escape(component[0].upper()) + ")"


def _standalone(component: str) -> str | None:
    letters = sum(c.isalpha() for c in component)
    if letters < 2 or component.upper() in PLACEHOLDERS or is_clinical(component):
        return None
    if letters < 4:
        forms = {component.title(), component.upper()}
        return "(?-i:" + "|".join(_words(f) for f in sorted(forms)) + ")"
    return _words(component)


@lru_cache(maxsize=4096)
def name_forms(value: str) -> tuple[list[str], list[str], list[str]]:
    """(full forms, single components, initials) for one name value; the first two are
    case-insensitive regexes, the initials case-sensitive."""
    forms: list[str] = []
    components: list[str] = []
    initials: list[str] = []
    people = parse_person(value)
    raw = value.strip().strip("^")
    if people and ("^" in raw or "=" in raw):
        forms.append(re.escape(raw))
    comma = r"(?:[ \t]*,[ \t]*|[ \t]+)"
    stop = r"(?:\.[ \t]*|[ \t]+)"
    for person in people:
        f = _words(person.family)
        if person.given:
            g, gi = _words(person.given), _initial(person.given)
            m = (r"(?:[ \t]+(?:" + _words(person.middle) + "|" + _initial(person.middle) + r"\.?))?"
                 if person.middle else "")
            mi = (r"(?:" + _initial(person.middle) + stop + ")?") if person.middle else ""
            mi_after = (r"(?:[ \t]*" + _initial(person.middle) + r"\.?)?") if person.middle else ""
            forms += [
                f + r"[ \t]*\^[ \t]*" + g + (r"(?:\^(?:" + _words(person.middle) + "|"
                                              + _initial(person.middle) + "))?" if person.middle else ""),
                g + m + r"[ \t]+" + f,
                f + comma + g + m,
                gi + stop + mi + f,
                f + comma + gi + r"\.?" + mi_after + r"(?![^\W_])",
                g + r"[ \t]+" + _initial(person.family) + r"\.",
            ]
            letters = person.given[0] + (person.middle[0] if person.middle else "") + person.family[0]
            for token in {letters.upper(), (person.given[0] + person.family[0]).upper()}:
                if token.isalpha() and not is_common(token):
                    initials.append(re.escape(token))
        for component in (person.family, person.given, *person.middle.split()):
            if component and (form := _standalone(component)):
                components.append(form)
    return forms, components, initials


# --- IDs, phones, institutions, addresses ---------------------------------------------------

@lru_cache(maxsize=4096)
def id_form(value: str) -> str | None:
    alnum = re.sub(r"[^0-9A-Za-z]", "", value)
    if not alnum or is_clinical(value) or value.upper() in PLACEHOLDERS:
        return None
    significant = alnum.lstrip("0")
    sep = r"[ \t\-]?"
    if len(significant) >= _MIN_ID:
        return r"(?:0" + sep + r")*" + sep.join(re.escape(c) for c in significant)
    if len(alnum) >= _MIN_ID:
        return sep.join(re.escape(c) for c in alnum)
    return None


@lru_cache(maxsize=4096)
def phone_forms(value: str) -> list[str]:
    digits = re.sub(r"[^0-9]", "", value)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) < 7:
        return []
    sep = r"[ \t().\-]*"
    forms = [r"(?:\+?1[ \t.\-]*)?\(?" + sep.join(digits)]
    if len(digits) == 10:
        forms.append(sep.join(digits[3:]))
    return forms


_SYNONYMS = [{"saint", "st"}, {"hospital", "hosp"}, {"center", "centre", "ctr"}, {"medical", "med"},
             {"university", "univ"}, {"street", "st"}, {"avenue", "ave", "av"}, {"road", "rd"},
             {"terrace", "terr", "ter"}, {"parkway", "pkwy"}, {"highway", "hwy"}, {"square", "sq"},
             {"drive", "dr"}, {"boulevard", "blvd"}, {"lane", "ln"}, {"court", "ct"}, {"place", "pl"},
             {"suite", "ste"}, {"apartment", "apt"}, {"north", "n"}, {"south", "s"}, {"east", "e"},
             {"west", "w"}, {"mount", "mt"}, {"department", "dept"}, {"and", "&"}]
_SYNONYM_OF: dict[str, set[str]] = {}
for _group in _SYNONYMS:
    for _word in _group:
        _SYNONYM_OF[_word] = _SYNONYM_OF.get(_word, set()) | _group
_CONNECTORS = frozenset({"and", "of", "the", "at", "for"})
_GENERIC_LAST = frozenset({"hospital", "hosp", "clinic", "center", "centre", "institute", "infirmary",
                           "healthcare", "klinikum", "klinik"})
_JOIN = r"(?:[\W_]+(?:and|of|the|at|for|&)(?![^\W_]))*[\W_]{0,4}"
#: Words that say what kind of place an institution is, not which one.
_KIND_WORDS = _GENERIC_LAST | frozenset({"general", "community", "memorial", "medical", "regional", "university",
                                         "county", "city", "state", "national", "district", "department",
                                         "dept", "health", "care", "imaging", "radiology", "services",
                                         "group", "associates", "practice", "main", "campus", "the"})
KIND_WORDS = _KIND_WORDS


def _names_a_place(words: list[str]) -> bool:
    """True when the name has a word that picks out one place: "Price Community Hospital"
    does ("Price", a common word but not a kind of place), "General Hospital" and
    "Department of Radiology" do not.  A lone common word ("Main") does not either."""
    institution = any(w.lower() in _GENERIC_LAST for w in words)
    # Beside "Hospital", "Center" or "Clinic" even a clinical word names the place ("Sharp
    # Medical Center"); elsewhere it names a specialty ("Radiology", "Nuclear Medicine").
    informative = [w for w in words if w.lower() not in _KIND_WORDS and (institution or not is_clinical(w))]
    if not informative:
        return False
    return len(words) > 1 or not is_common(words[0])


def _word_alternatives(word: str) -> str:
    group = _SYNONYM_OF.get(word.lower())
    if group:
        return "(?:" + "|".join(re.escape(w) for w in sorted(group, key=len, reverse=True)) + ")"
    return re.escape(word)


def phrase(words: list[str]) -> str:
    return _JOIN.join(_word_alternatives(w) for w in words)


def name_words(value: str) -> list[str]:
    return [w for w in re.findall(r"[^\W_]+", value) if w.lower() not in _CONNECTORS]


@lru_cache(maxsize=4096)
def institution_forms(value: str) -> tuple[list[str], list[str]]:
    """(case-insensitive forms, case-sensitive acronyms) of an institution-like name."""
    words = name_words(value)
    if sum(len(w) for w in words) < _MIN_ID or not _names_a_place(words):
        return [], []
    forms = [phrase(words)]
    if words[0].lower() == "the" and len(words) > 1:
        forms.append(phrase(words[1:]))
    if len(words) >= 3 and words[-1].lower() in _GENERIC_LAST:
        head = words[:-1]
        if not all(is_common(w) for w in head):
            forms.append(phrase(head))
    acronyms = []
    letters = "".join(w[0] for w in words if w[0].isalpha()).upper()
    if len(words) >= 3 and len(letters) >= 3 and not is_common(letters):
        acronyms.append(re.escape(letters))
    if len(words) >= 4 and words[-1].lower() in _GENERIC_LAST:
        # "North Fulton General" for "North Fulton General Hospital": the site without its kind
        site = letters[:-1]
        if len(site) >= 3 and not is_common(site) and not is_clinical(site):
            acronyms.append(re.escape(site))
    acronyms += [re.escape(t) for t in site_codes(value)]
    return forms, acronyms


#: A code that names the site inside a station or short institution name: "SMC" in "SMC-MR2",
#: "HUP" in "HUP6MR1", "NFGH" in "NFGH_CT".  Letters only, three or more, upper case as written.
_SITE_CODE = re.compile(r"(?<![A-Za-z])[A-Z]{3,8}(?![a-z])")


@lru_cache(maxsize=4096)
def _clinical_prefix(token: str) -> bool:
    """"NUC" (nuclear), "CARD" (cardiac): a short department code, not a site."""
    from medveil.text.allow import clinical_terms

    low = token.lower()
    return len(low) <= 4 and any(term.startswith(low) for term in clinical_terms())


def site_codes(value: str) -> list[str]:
    """Short forms of a site found inside a coded name (station names, "NFGH-MR2").

    Only values that look like codes (no blank, or digits or separators in them) are read,
    and a run of capitals counts only when it is neither a clinical abbreviation ("MRI",
    "PET", "CTA": the clinical allow-list wins) nor a common word.
    """
    text = value.strip()
    if " " in text and not re.search(r"[0-9_\-]", text):
        return []
    found = []
    for match in _SITE_CODE.finditer(text):
        token = match.group(0)
        if (not is_clinical(token) and not is_common(token) and token.upper() not in PLACEHOLDERS
                and token.lower() not in _KIND_WORDS and not _clinical_prefix(token)):
            found.append(token)
    return found


_STATE_WORDS = frozenset(s.lower() for s in STATE_CODES) | frozenset(s.lower() for s in STATE_NAMES)
_ZIP = re.compile(r"(?<![0-9])[0-9]{5}(?:-[0-9]{4})?(?![0-9])")


@lru_cache(maxsize=4096)
def address_forms(value: str) -> list[str]:
    forms = []
    whole = name_words(value)
    if len(whole) >= 2:
        forms.append(phrase(whole))
    for part in re.split(r"[\^,;\n\r\\]", value):
        part = _ZIP.sub(" ", part).strip()
        words = name_words(part)
        if not words or " ".join(words).lower() in _STATE_WORDS:
            continue
        words = [w for w in words if w.lower() not in _STATE_WORDS] or words
        if sum(len(w) for w in words) >= 4 and not all(is_common(w) for w in words):
            forms.append(phrase(words))
    forms += [re.escape(z) for z in _ZIP.findall(value)]
    return forms
