"""Shape-based detectors: phone numbers, e-mail, SSN, record numbers, addresses, institutions
and ages over 89.

Each detector is a function ``find_x(text) -> list[Span]`` over patterns compiled when the
module is imported, so a process compiles them once however many values it cleans.  Numbers
must stand on their own: not glued to letters, to a decimal point or to another number by a
dash or slash, which keeps slice positions ("-125.5"), sizes ("512x512"), field strengths
("3.0T"), version numbers and UID components out.  Where a shape also fits clinical words
("1 CHEST CT" looks like a house number, a street and "Ct" for Court), the words are checked
against the clinical allow-list before the span is kept.
"""

from __future__ import annotations

import re

from medveil.text.allow import is_clinical, is_common
from medveil.text.spans import Span

_LEFT = r"(?<![\w.])(?<![0-9][\-/])"
_RIGHT = r"(?![\w]|[.\-/][0-9])"


def _cased(*phrases: str) -> str:
    """Title-case and upper-case spellings of *phrases*, any run of blanks between words: a
    lower-case "hospital" or "street" is a common noun, not part of a name."""
    forms = set()
    for phrase in phrases:
        for form in (phrase, phrase.upper()):
            forms.add(r"[ \t]+".join(re.escape(w) for w in form.split()))
    return "|".join(sorted(forms, key=lambda f: (-len(f), f)))


def _spans(pattern: re.Pattern, text: str, category: str, group: int | str = 0) -> list[Span]:
    return [Span(m.start(group), m.end(group), category) for m in pattern.finditer(text)]


# --- e-mail, phone, SSN -------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+\-'])[A-Za-z0-9._%+\-']+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*"
                    r"\.[A-Za-z]{2,}(?![\w])")

_EXTENSION = r"(?:[ \t]*(?i:x|ext\.?|extension)[ \t]*[0-9]{1,5})?"
_PHONE = re.compile(_LEFT + r"(?:"
                    r"(?:\+?1[ .\-]?)?\([0-9]{3}\)[ .\-]?[0-9]{3}[ .\-][0-9]{4}"
                    r"|(?:\+?1[ .\-])?[0-9]{3}-[0-9]{3}-[0-9]{4}"
                    r"|(?:\+?1[ .])?[0-9]{3}\.[0-9]{3}\.[0-9]{4}"
                    r"|\+1[ ]?[0-9]{3}[ ][0-9]{3}[ ][0-9]{4}"
                    r")" + _EXTENSION + _RIGHT)
#: After a label any grouping of 7 to 15 digits is a number to call.
_PHONE_LABELLED = re.compile(
    r"(?<![\w])(?i:tel(?:ephone)?|ph(?:one)?|fax|facsimile|cell(?:phone)?|mobile|mob|pager|beeper"
    r"|contact|call)\.?[ \t]*(?i:no\.?|number|#)?[ \t]*[:.#=]?[ \t]*"
    r"(?P<v>\+?\(?[0-9][0-9 \t().\-]{5,20}[0-9]" + _EXTENSION + r")" + _RIGHT)

_SSN = re.compile(r"(?<![\w\-])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![\w]|-[0-9])")
_SSN_LABELLED = re.compile(
    r"(?<![\w])(?i:ssn|ss#|ss[ \t]*no\.?|social[ \t]+security(?:[ \t]*(?:no\.?|number|#))?)"
    r"[ \t]*[:#=]?[ \t]*(?P<v>[0-9]{3}[ \-]?[0-9]{2}[ \-]?[0-9]{4})(?![\w])")


def find_emails(text: str) -> list[Span]:
    return _spans(_EMAIL, text, "email")


def find_phones(text: str) -> list[Span]:
    spans = _spans(_PHONE, text, "phone")
    for m in _PHONE_LABELLED.finditer(text):
        value = m.group("v").rstrip(" \t")
        if 7 <= sum(c.isdigit() for c in value) <= 15:
            spans.append(Span(m.start("v"), m.start("v") + len(value), "phone"))
    return spans


def find_ssns(text: str) -> list[Span]:
    return _spans(_SSN, text, "ssn") + _spans(_SSN_LABELLED, text, "ssn", "v")


# --- record numbers ------------------------------------------------------------------------

_ID_LABEL = (r"mrn[ \t]*#?|mr[ \t]*#|mr[ \t]*no\.?|mr[ \t]*number|med(?:ical)?[ \t]*rec(?:ord)?"
             r"(?:[ \t]*(?:no\.?|number|#))?|record[ \t]*(?:#|no\.?|number)|(?:pt|patient)[ \t]*id"
             r"|pid|id[ \t]*#?|id[ \t]*no\.?|acc(?:ession)?[ \t]*(?:#|no\.?|number)?|acc\."
             r"|order[ \t]*(?:#|no\.?|number)|req(?:uisition)?[ \t]*(?:#|no\.?)|encounter[ \t]*(?:#|no\.?|id)?"
             r"|visit[ \t]*(?:#|no\.?|id)|fin|csn|chart[ \t]*(?:#|no\.?)?|case[ \t]*#|study[ \t]*id"
             r"|exam[ \t]*(?:#|no\.?)|specimen[ \t]*#|acct[ \t]*#?|account[ \t]*(?:#|no\.?|number)")
_ID_LABELLED = re.compile(r"(?<![\w])(?i:" + _ID_LABEL + r")[ \t]*[:=.]?[ \t]*"
                          r"(?P<v>[A-Za-z0-9](?:[A-Za-z0-9\-/]*[A-Za-z0-9])?)(?![\w])")
_ID_TOKEN = re.compile(r"(?<![\w.\-])(?<![0-9]\.)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?![\w]|[.\-][0-9])")
_DIMENSIONS = re.compile(r"[0-9]+(?:[xX][0-9]+)+")
_NUMBER_UNIT = re.compile(r"[0-9]+(?P<unit>[A-Za-z]{1,4})")


def _looks_like_record_number(token: str) -> bool:
    """Six or more digits mixed with letters or split by dashes ("PT-4667-37", "A79596346"),
    or seven or more digits alone; never a size ("512x512") or a number with a unit."""
    digits = sum(c.isdigit() for c in token)
    letters = sum(c.isalpha() for c in token)
    dashes = token.count("-")
    if _DIMENSIONS.fullmatch(token):
        return False
    unit = _NUMBER_UNIT.fullmatch(token)
    if unit and is_clinical(unit.group("unit")):
        return False
    if letters == 0 and dashes == 0:
        return digits >= 7
    return digits >= 6 and (letters > 0 or dashes >= 2)


def find_ids(text: str) -> list[Span]:
    """Labelled record numbers ("MRN: 12345", "Acc# A795") and unlabelled ones by shape."""
    spans = []
    for m in _ID_LABELLED.finditer(text):
        value = m.group("v")
        if len(value) >= 3 and any(c.isdigit() for c in value):
            spans.append(Span(m.start("v"), m.end("v"), "id"))
    for m in _ID_TOKEN.finditer(text):
        if _looks_like_record_number(m.group()):
            spans.append(Span(m.start(), m.end(), "id"))
    return spans


# --- ages over 89 (HIPAA Safe Harbor aggregates them into "90 or older") ---------------------

_AGE_UNIT = r"(?i:years?[ \t\-]*old|years?|yrs?|y\.o\.?|y/o|yo|year-old|yr-old|y(?![\w/]))"
_AGE_NUMBER = re.compile(_LEFT + r"(?P<n>[0-9]{2,3})(?:-|[ \t]*)" + _AGE_UNIT)
_AGE_LABELLED = re.compile(r"(?<![\w])(?i:age[ \t]*:|aged|age)[ \t]*[:=]?[ \t]*(?P<n>[0-9]{2,3})(?![\w.])")
_AGE_DICOM = re.compile(r"(?<![\w])(?P<n>[0-9]{3})Y(?![\w])")
_AGE_WORDS = re.compile(r"(?<![\w])(?i:ninety(?:[ \-](?:one|two|three|four|five|six|seven|eight|nine))?"
                        r"|one[ \t]+hundred(?:[ \t]+(?:and[ \t]+)?\w+)?)[ \t\-]*" + _AGE_UNIT)
_OLDEST = 130


def find_ages(text: str) -> list[Span]:
    spans = [Span(m.start(), m.end(), "age") for m in _AGE_WORDS.finditer(text)]
    for pattern in (_AGE_NUMBER, _AGE_LABELLED, _AGE_DICOM):
        for m in pattern.finditer(text):
            if 90 <= int(m.group("n")) <= _OLDEST:
                spans.append(Span(m.start(), m.end(), "age"))
    return spans


# --- addresses -----------------------------------------------------------------------------

_STREET_SUFFIXES = _cased(
    "Street", "St", "Avenue", "Ave", "Av", "Road", "Rd", "Boulevard", "Blvd", "Drive", "Dr", "Lane",
    "Ln", "Court", "Ct", "Way", "Place", "Pl", "Terrace", "Ter", "Parkway", "Pkwy", "Highway", "Hwy",
    "Circle", "Cir", "Square", "Sq", "Trail", "Trl", "Route", "Rte", "Plaza", "Plz", "Crescent",
    "Close", "Row", "Alley", "Pike", "Turnpike", "Expressway", "Freeway", "Loop", "Walk")
_STREET_WORD = r"[A-Z0-9][A-Za-z0-9'’.\-]*"
_UNIT = (r"(?:,?[ \t]*(?:Apt|APT|Apartment|APARTMENT|Suite|SUITE|Ste|STE|Unit|UNIT|Rm|RM|Room|ROOM"
         r"|Fl|FL|Floor|FLOOR|Bldg|BLDG|Building|BUILDING|\#)\.?[ \t]*\#?[ \t]*[A-Za-z0-9\-]{1,6}(?![\w]))?")
_STREET = re.compile(
    r"(?<![\w.])[0-9]{1,6}[A-Za-z]?(?:-[0-9]{1,4})?[ \t]+"
    r"(?:(?:[NSEW]\.?|North|South|East|West|NORTH|SOUTH|EAST|WEST)[ \t]+)?"
    r"(?P<words>(?:" + _STREET_WORD + r"[ \t]+){0,3}" + _STREET_WORD + r")[ \t]+"
    r"(?:" + _STREET_SUFFIXES + r")\.?(?![\w])" + _UNIT)
_PO_BOX = re.compile(r"(?<![\w])(?i:p\.?[ \t]*o\.?[ \t]*box|post[ \t]+office[ \t]+box)[ \t]*#?[ \t]*"
                     r"[0-9]{1,6}(?![\w])")

STATE_CODES = (
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC",
    "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
    "PR", "GU", "VI", "AS", "MP")
STATE_NAMES = (
    "Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut", "Delaware",
    "Florida", "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas", "Kentucky",
    "Louisiana", "Maine", "Maryland", "Massachusetts", "Michigan", "Minnesota", "Mississippi",
    "Missouri", "Montana", "Nebraska", "Nevada", "New Hampshire", "New Jersey", "New Mexico",
    "New York", "North Carolina", "North Dakota", "Ohio", "Oklahoma", "Oregon", "Pennsylvania",
    "Rhode Island", "South Carolina", "South Dakota", "Tennessee", "Texas", "Utah", "Vermont",
    "Virginia", "Washington", "West Virginia", "Wisconsin", "Wyoming", "District of Columbia",
    "Puerto Rico")
#: Codes that are also physicians' degrees ("Smith, MD"), radiology abbreviations ("Smith, CT",
#: "CHEST, PA", "NM", "SC", "MA" for milliampere) or English words ("OR", "IN", "ME", "OK"):
#: after a city they count only with a ZIP code.
_AMBIGUOUS_CODES = frozenset({"MD", "DO", "CT", "PA", "MA", "MS", "OR", "IN", "ME", "NM", "SC", "OK",
                              "MT", "GU", "AS", "MI", "MO", "SD", "NC", "PR"})
_TITLES = frozenset({"dr", "mr", "mrs", "ms", "miss", "prof", "st", "saint"})
#: Common words that begin city names ("New York", "Salt Lake City", "Fort Worth").
_CITY_PREFIXES = frozenset({"new", "san", "santa", "los", "las", "la", "el", "fort", "port", "mount",
                            "north", "south", "east", "west", "lake", "grand", "little", "great", "palm",
                            "salt", "saint", "st"})
_CITY_WORD = r"[A-Z][A-Za-z'’.\-]*"
_CITY = r"(?P<city>" + _CITY_WORD + r"(?:[ \t]+" + _CITY_WORD + r"){0,2})"
_STATE = r"(?P<state>" + "|".join(STATE_CODES) + "|" + _cased(*STATE_NAMES) + r")"
_CITY_STATE_ZIP = re.compile(r"(?<![\w])(?:" + _CITY + r",?[ \t]+)?" + _STATE + r"\.?,?[ \t]+"
                             r"[0-9]{5}(?:-[0-9]{4})?(?![\w]|-[0-9])")
_CITY_STATE = re.compile(r"(?<![\w])" + _CITY + r",[ \t]+(?P<state>" + "|".join(STATE_CODES)
                         + r")(?![\w])")
_ZIP4 = re.compile(r"(?<![\w\-])[0-9]{5}-[0-9]{4}(?![\w]|-[0-9])")
_WORD = re.compile(r"\S+")


def _trim_city(m: re.Match) -> int | None:
    """Start of the city after dropping leading clinical or common words ("CHEST, PA" has no
    city left), or None when no city word remains."""
    if m.group("city") is None:
        return None
    words = list(_WORD.finditer(m.group("city")))
    for i, word in enumerate(words):
        bare = word.group().rstrip(",.")
        prefix = bare.lower() in _CITY_PREFIXES and i + 1 < len(words)
        if prefix or (not is_common(bare) and bare.lower() not in _TITLES):
            return m.start("city") + word.start()
    return None


_MONTH_WORDS = frozenset({"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct",
                          "nov", "dec", "january", "february", "march", "april", "june", "july",
                          "august", "september", "october", "november", "december"})


def _street_name(words: list[str]) -> bool:
    """A street name has a word that is not clinical, and no date parts in it ("21 Mar 2014
    Dr. Patel" is a date and a doctor, not 21 Mar 2014 Drive)."""
    bare = [w.strip(".").lower() for w in words]
    if any(w in _MONTH_WORDS or (w.isdigit() and len(w) >= 3) for w in bare):
        return False
    return not all(is_clinical(w) or w.isdigit() for w in bare)


def find_addresses(text: str) -> list[Span]:
    spans = []
    for m in _STREET.finditer(text):
        if _street_name(m.group("words").split()):
            spans.append(Span(m.start(), m.end(), "address"))
    spans += _spans(_PO_BOX, text, "address")
    for m in _CITY_STATE_ZIP.finditer(text):
        city = _trim_city(m)
        start = city if city is not None else m.start("state")
        spans.append(Span(start, m.end(), "address"))
    for m in _CITY_STATE.finditer(text):
        city = _trim_city(m)
        if city is not None and m.group("state") not in _AMBIGUOUS_CODES:
            spans.append(Span(city, m.end(), "address"))
    spans += _spans(_ZIP4, text, "address")
    return spans


# --- institutions --------------------------------------------------------------------------

_INSTITUTION_KEYS = _cased(
    "Medical Center", "Medical Centre", "Medical Centers", "Med Ctr", "Hospital", "Hospitals", "Hosp",
    "Clinic", "Clinics", "Health System", "Health Systems", "Health Center", "Health Centre",
    "Health Care", "Healthcare", "Health Services", "Health Sciences Center", "Infirmary",
    "Sanatorium", "Imaging Center", "Imaging Centre", "Cancer Center", "Cancer Centre",
    "Cancer Institute", "Heart Institute", "Eye Institute", "Institute", "Medical Group",
    "Medical College", "School of Medicine", "Klinikum", "Klinik", "Krankenhaus", "Hôpital",
    "Hopital", "Clínica", "Clinica", "Centre Hospitalier", "Medical Associates", "Imaging Associates",
    "Radiology Associates", "Radiology Group")
#: Keys that name an institution by themselves (PS3.15 examples of practice names).
_STANDALONE_KEYS = frozenset({"medical associates", "imaging associates", "radiology associates"})
#: Words that are common English but, before a hospital keyword, part of its name.
INSTITUTION_WORDS = frozenset({
    "general", "memorial", "community", "regional", "county", "city", "state", "national", "university",
    "universitaire", "children's", "childrens", "women's", "womens", "veterans", "va", "baptist",
    "methodist", "presbyterian", "lutheran", "catholic", "adventist", "mercy", "providence", "shriners",
    "sacred", "heart", "good", "samaritan", "saint", "st", "royal", "central", "district", "valley",
    "mount", "mt", "north", "south", "east", "west", "northern", "southern", "eastern", "western",
    "metropolitan", "academic", "federal", "military", "naval", "army", "navy", "air", "force",
    "kaiser", "permanente", "rehabilitation", "specialty"})
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][\w'’.&\-]*"
_CONNECTOR = r"(?i:of|the|and|&|de|la|del|du|des|der)"
_NAME_SEQ = _NAME_WORD + r"(?:[ \t]+(?:" + _CONNECTOR + r"[ \t]+){0,2}" + _NAME_WORD + r"){0,5}"
#: Keys that, as in German, French and Spanish usage, come before the name ("Klinikum Rechts
#: der Isar", "Hôpital Européen Georges-Pompidou", "Clínica Universidad de Navarra").
_LEADING_KEYS = _cased("Klinikum", "Klinik", "Krankenhaus", "Hôpital", "Hopital", "Clínica", "Clinica",
                       "Centre Hospitalier", "Hospital Universitario", "Hospital General")
_INSTITUTION = re.compile(
    r"(?<![\w])(?:(?P<lead>" + _LEADING_KEYS + r")(?P<named>[ \t]+" + _NAME_SEQ + r")"
    r"|(?P<pre>" + _NAME_SEQ + r"[ \t]+)?(?P<key>" + _INSTITUTION_KEYS + r")(?![\w])"
    r"(?P<post>[ \t]+(?i:of|for|at)[ \t]+(?:(?i:the)[ \t]+)?" + _NAME_SEQ + r")?)")
_UNIVERSITY = re.compile(
    r"(?<![\w])(?:(?P<key>" + _cased("University", "Universität", "Universidad", "Université")
    + r")(?P<post>[ \t]+(?i:of|de|del|du)[ \t]+(?:(?i:the)[ \t]+)?" + _NAME_SEQ + r")"
    r"|(?P<pre>" + _NAME_SEQ + r"[ \t]+)(?:" + _cased("University", "Universität") + r"))(?![\w])")
_SAINT = re.compile(r"(?<![\w])(?:St\.?|ST\.?|Saint|SAINT|Ste\.?|STE\.?)[ \t]*(?P<saint>[A-Z][a-zA-Z\-]+)"
                    r"(?P<poss>['’]?[sS](?![\w]))?(?P<key>[ \t]+(?:" + _INSTITUTION_KEYS + r")(?![\w]))?")
_CONNECTORS = frozenset({"of", "the", "and", "&", "de", "la", "del", "du", "des", "for", "at", "on"})


def _is_name_word(word: str) -> bool:
    bare = word.strip(".,'’").lower()
    if bare in _CONNECTORS or not bare:
        return False
    return bare in INSTITUTION_WORDS or not is_common(bare)


def _trimmed_start(m: re.Match) -> int | None:
    """Where the institution's name begins once leading clinical or common words are dropped
    ("CT HEAD OUTSIDE HOSPITAL" keeps nothing); None when no name word is left."""
    if m.group("pre"):
        for word in _WORD.finditer(m.group("pre")):
            if _is_name_word(word.group()):
                return m.start("pre") + word.start()
    post, named = m.groupdict().get("post"), m.groupdict().get("named")
    if post and any(_is_name_word(w) for w in post.split()):
        return m.start("key")
    if named and any(_is_name_word(w) for w in named.split()):
        return m.start()
    return None


def _trimmed_end(m: re.Match) -> int:
    """Where the name ends once trailing clinical or common words are dropped from the words
    after the keyword ("Hospital of Springfield CT HEAD" ends after "Springfield")."""
    for group in ("post", "named"):
        words = m.groupdict().get(group)
        if words:
            ends = [m.start(group) + w.end() for w in _WORD.finditer(words) if _is_name_word(w.group())]
            return ends[-1] if ends else m.end("key") if m.groupdict().get("key") else m.end()
    return m.end()


def find_institutions(text: str, first_names: frozenset[str] = frozenset()) -> list[Span]:
    """Hospital-like names; *first_names* (from the gazetteer) tells "St. Mary's" from
    "ST SEGMENT"."""
    spans = []
    for pattern in (_INSTITUTION, _UNIVERSITY):
        for m in pattern.finditer(text):
            start = _trimmed_start(m)
            key = m.groupdict().get("key")
            if start is None and key and " ".join(key.lower().split()) in _STANDALONE_KEYS:
                start = m.start("key")
            if start is not None:
                spans.append(Span(start, _trimmed_end(m), "institution"))
    for m in _SAINT.finditer(text):
        saint = m.group("saint")
        if is_clinical(saint):
            continue
        if m.group("poss") or m.group("key") or saint.lower() in first_names:
            spans.append(Span(m.start(), m.end(), "institution"))
    return spans
