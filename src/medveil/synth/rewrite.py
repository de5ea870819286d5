"""Rewriting what came from the source consistently, before synthetic PHI is planted.

UIDs (every attribute Table E.1-1 marks U, at any depth, through one mapping so
references still resolve), dates (shifted by the distance between the source's
study date and the synthetic one, so intervals survive), person names, and any
copy of the source's own identifiers left in other attributes (deid-data's
private tags repeat the patient's name).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from medveil.evaluate.flatten import walk
from medveil.policy import load_table
from medveil.synth import expect as E
from medveil.synth.checks import decide
from medveil.synth.expect import Expect
from medveil.synth.fake import Patient
from medveil.synth.target import InjectionTarget

_TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC"})
_MAX = {"SH": 16, "LO": 64, "PN": 64}
_DATE = re.compile(r"^\d{8}$")
_PATIENT_NAME_KEYWORDS = frozenset({"PatientName", "OtherPatientNames", "PatientBirthName"})


def _is_replaced_uid(tag: int) -> bool:
    rule = load_table().lookup(tag)
    return rule is not None and rule.tag != "private" and rule.basic == "U"


def remap_uids(ds: Dataset, uid_for: Callable[[str], str]) -> None:
    """Replace every UID that Table E.1-1 says to replace (action U), at every depth."""
    for _, element in walk(ds, ()):
        if element.VR != "UI" or element.tag.group % 2 or not _is_replaced_uid(int(element.tag)):
            continue
        value = element.value
        if isinstance(value, (MultiValue, list)):
            element.value = [uid_for(str(v)) if str(v).strip() else v for v in value]
        elif value and str(value).strip():
            element.value = uid_for(str(value))


def _parse_date(text: str) -> datetime.date | None:
    text = text.strip()
    if not _DATE.match(text):
        return None
    try:
        return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def date_offset(ds: Dataset, new_study_date: datetime.date) -> datetime.timedelta | None:
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        old = _parse_date(str(ds.get(keyword, "") or ""))
        if old is not None:
            return new_study_date - old
    return None


def shift_dates(ds: Dataset, offset: datetime.timedelta | None, fallback: datetime.date) -> None:
    """Move every public date (DA, DT) by ``offset``; unparseable dates become ``fallback``."""
    for _, element in walk(ds, ()):
        if element.VR not in ("DA", "DT") or element.tag.group % 2 or element.value in (None, ""):
            continue
        values = element.value if isinstance(element.value, (MultiValue, list)) else [element.value]
        shifted = [_shift_one(str(v), element.VR, offset, fallback) for v in values]
        element.value = shifted if len(shifted) > 1 else shifted[0]


def _shift_one(text: str, vr: str, offset: datetime.timedelta | None,
               fallback: datetime.date) -> str:
    text = text.strip()
    head, rest = (text[:8], text[8:]) if vr == "DT" else (text, "")
    old = _parse_date(head)
    if old is None or offset is None:
        day = fallback
    else:
        try:
            day = old + offset
        except OverflowError:
            day = fallback
    return f"{day:%Y%m%d}{rest}"


def source_identifiers(ds: Dataset, ctx: InjectionTarget) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The source's own identifiers (worth finding elsewhere): stand-in and category for each."""
    patient, site = ctx.patient, ctx.study.site
    found: dict[str, tuple[str, tuple[str, ...]]] = {}

    def add(old: object, new: str, category: tuple[str, ...], minimum: int = 4) -> None:
        text = str(old or "").strip()
        if len(text) >= minimum and not text.isdigit() or len(text) >= 6:
            found.setdefault(text, (new, category))

    name = ds.get("PatientName")
    if name is not None and str(name).strip():
        add(str(name), patient.pn, E.NAME)
        add(getattr(name, "family_name", "") or "", patient.name.family.upper(), E.NAME)
        add(getattr(name, "given_name", "") or "", patient.name.given.upper(), E.NAME)
    add(ds.get("PatientID"), patient.patient_id, E.ID, minimum=5)
    add(ds.get("AccessionNumber"), ctx.study.accession, E.ID, minimum=5)
    add(ds.get("InstitutionName"), site.institution, E.INSTITUTION, minimum=6)
    referring = ds.get("ReferringPhysicianName")
    if referring is not None:
        add(str(referring), site.referring.pn(), E.NAME)
    return found


def holds(element, text: str | None) -> bool:
    """True when ``element`` still shows every part of ``text`` (nothing overwrote the copy)."""
    if element is None or not text:
        return False
    value = str(element.value or "").lower()
    return all(part.lower() in value for part in text.split())


def _kept(tag: int) -> bool:
    decision = decide(tag, "")
    return decision is None or decision.action == "K"


def replace_copies(ds: Dataset, originals: dict[str, tuple[str, tuple[str, ...]]],
                    expects: list[Expect]) -> None:
    """Put synthetic values where the source's identifiers were copied into other attributes."""
    if not originals:
        return
    pattern = re.compile("|".join(re.escape(old) for old in sorted(originals, key=len, reverse=True)),
                         re.IGNORECASE)
    lookup = {old.lower(): stand_in for old, stand_in in originals.items()}
    for path, element in walk(ds, ()):
        if element.VR not in _TEXT_VRS or not isinstance(element.value, str) or not element.value:
            continue
        if not element.tag.group % 2 and _kept(int(element.tag)):
            continue  # a copy in an attribute the standard keeps stays the source's (public test data)
        matches = list(pattern.finditer(element.value))
        if not matches:
            continue
        pieces, inserted, categories, end = [], [], [], 0
        for match in matches:
            new, category = lookup[match.group(0).lower()]
            pieces += [element.value[end:match.start()], new]
            inserted.append(new)
            categories.append(category)
            end = match.end()
        text = "".join(pieces) + element.value[end:]
        if text != element.value:
            element.value = text[:_MAX[element.VR]] if element.VR in _MAX else text
            category = E.PRIVATE_PHI if element.tag.group % 2 else categories[0]
            expects.append(Expect(path, "text_removed", category, action_text=" ".join(inserted)))


def replace_person_names(ds: Dataset, ctx: InjectionTarget, expects: list[Expect]) -> None:
    """Every non-empty person name, at any depth, becomes a synthetic one fitting its role.

    Public names need no record (every person name gets a removal check);
    a private one is recorded so that it counts as PHI, not as whatever
    the knowledge base says about the element.
    """
    site = ctx.study.site
    for path, element in walk(ds, ()):
        if element.VR != "PN" or not str(element.value or "").strip():
            continue
        keyword = element.keyword or ""
        if keyword in _PATIENT_NAME_KEYWORDS or element.tag.group % 2:
            name = ctx.patient.pn
        elif keyword == "PatientMotherBirthName":
            name = ctx.patient.mother.pn()
        elif "Referring" in keyword or "Requesting" in keyword:
            name = site.referring.pn()
        elif "Operator" in keyword:
            name = site.operator.pn("FAMILY^GIVEN^M")
        elif "Performing" in keyword:
            name = site.performing.pn()
        else:
            name = site.reader.pn("FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX")
        count = len(element.value) if isinstance(element.value, (MultiValue, list)) else 1
        element.value = [name] * count if count > 1 else name
        if element.tag.group % 2:
            expects.append(Expect(path, "text_removed", E.PRIVATE_PHI, action_text=name))


def set_character_set(ds: Dataset, patient: Patient) -> None:
    """UTF-8 where the name has ideographic and phonetic groups; the rest is ASCII."""
    if patient.needs_unicode:
        ds.SpecificCharacterSet = "ISO_IR 192"
