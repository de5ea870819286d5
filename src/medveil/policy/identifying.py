"""Which attributes hold identifying values, and which of them a policy keeps on purpose.

Four parts of medveil need the same answer: the residual check (an original
identifier must not survive), the identifier collection the text cleaner uses
(the file's own identifiers are cut out of descriptions), the attributes those
searches skip, and the verification scan (identifiers must not be in OCR'd pixel
text).  If each kept its own list, an identifier that a profile keeps on purpose
(a Device Serial Number under Retain Device Identity, a Station Name under Retain
Institution Identity) would be kept in its attribute and cut out of every
description that mentions it, or would quarantine the file.  So the list is
derived here, once, from Table E.1-1 and medveil's supplement
(:func:`identifying_kinds`), and the policy (recipe, profile conventions, option
columns, Basic Profile) decides which of its attributes count for a file
(:func:`kept_on_purpose`, :func:`kept_identifying`).

The exceptions to the derivation live in ``data/identifying.yaml``: attributes
the rule cannot see (Military Rank), rows it derives that are not looked for yet,
the identifiers the residual check does not hunt, and the coded vocabulary that
no search reads.  Person names (PN) are also found by their dictionary VR
wherever they are, so the list matters for them only where a policy keeps one.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from importlib import resources

import yaml
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from medveil.policy.table import Rule, load_table

DATA_FILE = "identifying.yaml"
#: Values of these VRs are free text or names: the rows whose values can be written in a description.
_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC", "PN"})
#: A row's name -> the kind of value (first match wins: "Issuer of Patient ID" names an institution).
_KIND_BY_NAME = (
    ("addresses", re.compile(r"\baddress\b", re.IGNORECASE)),
    ("phones", re.compile(r"telephone|telecom|phone", re.IGNORECASE)),
    ("institutions", re.compile(r"\b(?:issuer|institution|institutional|department|station name|organization)\b",
                                re.IGNORECASE)),
    ("ids", re.compile(r"\b(?:ids?|identifier|identification|number|locator)\b", re.IGNORECASE)),
)


@cache
def _exceptions() -> dict:
    return yaml.safe_load(resources.files("medveil.policy").joinpath("data", DATA_FILE).read_text("utf-8"))


def kind_of_row(rule: Rule) -> str | None:
    """The kind of identifying value a Table E.1-1 row holds, or None: ``names`` for a person
    name (by VR), else ``addresses``, ``phones``, ``institutions`` or ``ids`` by the row's name."""
    if rule.tag == "private" or "x" in rule.tag:
        return None
    try:
        vr = dictionary_VR(int(rule.tag, 16))
    except KeyError:
        return None
    if vr not in _TEXT_VRS:
        return None
    if vr == "PN":
        return "names"
    for kind, pattern in _KIND_BY_NAME:
        if pattern.search(rule.name):
            return kind
    return None


@cache
def derived_kinds() -> dict[str, str]:
    """Attribute keyword -> kind, for every row of the packaged table and supplement the rule reads."""
    out: dict[str, str] = {}
    for rule in load_table().rules:
        kind = kind_of_row(rule)
        keyword = keyword_for_tag(int(rule.tag, 16)) if kind else ""
        if kind and keyword:
            out[keyword] = kind
    return out


@cache
def identifying_kinds() -> dict[str, str]:
    """Attribute keyword -> the kind of identifying value it holds (``names``, ``ids``,
    ``institutions``, ``addresses``, ``phones``): derived from the table, with the
    exceptions of ``data/identifying.yaml``."""
    exceptions = _exceptions()
    unused = set(exceptions["derived_but_not_used"])
    kinds = {keyword: kind for keyword, kind in derived_kinds().items() if keyword not in unused}
    kinds.update(exceptions["added"])
    return kinds


@cache
def hunted_keywords() -> tuple[str, ...]:
    """The identifying attributes whose original values the residual check searches the whole
    output for (the rest are cleaned from text but not hunted: see ``not_hunted``)."""
    exceptions = _exceptions()
    skipped = set(exceptions["not_hunted"])
    return tuple(k for k in identifying_kinds() if k not in skipped) + tuple(exceptions["also_hunted"])


@cache
def never_searched() -> frozenset[str]:
    """Coded vocabulary and equipment names: neither the residual check nor verification reads them."""
    return frozenset(_exceptions()["never_searched"])


@cache
def not_verified() -> frozenset[str]:
    """What the verification scan of released output does not read (medveil's own records too)."""
    return never_searched() | frozenset(_exceptions()["not_verified"])


@lru_cache(maxsize=256)
def tag_of(keyword: str) -> int | None:
    return tag_for_keyword(keyword)


def kept_on_purpose(policy, tag: int, sop_class_uid: str) -> bool:
    """True when *policy* keeps the attribute's value as it is (K, a recipe value R,
    or a C action that falls back to keeping): its value is then not an identifier
    to hunt for or to cut out of text elsewhere."""
    if policy is None:
        return False
    decision = policy.decide(tag, sop_class_uid)
    if decision is None:
        return False
    if decision.action in ("K", "R"):
        return True
    return decision.action == "C" and decision.fallback == "K"


def kept_by_an_option(policy, tag: int) -> bool:
    """True when an option the policy has keeps the attribute in the table's own column
    (Station Name under Retain Device Identity), even if a profile convention removes it:
    the value then names a device the release keeps elsewhere (a Gantry ID that repeats
    the station's name), and finding it there is not a leak to repair."""
    if policy is None:
        return False
    rule = policy.table.lookup(tag)
    return rule is not None and any(code == "K" and option in policy.options for option, code in rule.options.items())


def identifying_keywords(policy, sop_class_uid: str, keywords=None) -> tuple[str, ...]:
    """The identifying attributes (of *keywords*, default all) that *policy* does not keep."""
    chosen = identifying_kinds() if keywords is None else keywords
    out = []
    for keyword in chosen:
        tag = tag_of(keyword)
        if tag is not None and not kept_on_purpose(policy, tag, sop_class_uid):
            out.append(keyword)
    return tuple(out)


def kept_identifying(policy, sop_class_uid: str) -> tuple[str, ...]:
    """The identifying attributes that *policy* keeps on purpose (their values are allowed in text)."""
    return tuple(k for k in identifying_kinds() if (tag := tag_of(k)) is not None
                 and kept_on_purpose(policy, tag, sop_class_uid))
