"""Turning a real instance into one of a synthetic patient's, with PHI where exports carry it.

The order matters.  First everything that ties the file to its source is
rewritten consistently: UIDs (every attribute Table E.1-1 marks U, at any
depth, through one mapping so references still resolve), dates (shifted by
the distance between the source's study date and the synthetic one, so
intervals survive), person names, and any copy of the source's own
identifiers left in other attributes (deid-data's private tags repeat the
patient's name).  Then the synthetic PHI is planted: the patient, study and
series attributes a real export fills, descriptions with identifying text
next to clinical words, dates hidden in IDs and short strings, and nested
sequences.  Each planted value is recorded as an :class:`Expect`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from medveil.evaluate.flatten import walk
from medveil.evaluate.paths import Step, public
from medveil.evaluate.tokens import content_tokens
from medveil.policy import load_table
from medveil.synth import expect as E
from medveil.synth import precision, vocab
from medveil.synth.checks import decide
from medveil.synth.expect import Expect
from medveil.synth.fake import Patient, Person
from medveil.synth.plan import SeriesPlan, StudyPlan
from medveil.synth.seeds import new_uid, rng

_TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC"})
_MAX = {"SH": 16, "LO": 64, "PN": 64}
_DATE = re.compile(r"^\d{8}$")
_PATIENT_NAME_KEYWORDS = frozenset({"PatientName", "OtherPatientNames", "PatientBirthName"})
_DETACHED_STUDY = "1.2.840.10008.3.1.2.3.1"


@dataclass
class InjectionTarget:
    """Everything injection needs to know about the instance it works on."""

    seed: int
    study: StudyPlan
    series: SeriesPlan
    index: int  # 0-based position within the series
    uid_map: dict[str, str]  # old Study/Series UIDs to the plan's

    @property
    def patient(self) -> Patient:
        return self.study.patient

    def uid(self, old: str) -> str:
        """The synthetic UID for ``old``: the plan's for studies and series, else derived."""
        old = old.strip()
        mapped = self.uid_map.get(old)
        return mapped if mapped is not None else new_uid(self.seed, "uid", old)

    def choice(self, *labels: object):
        return rng(self.seed, *labels)


def inject(ds: Dataset, ctx: InjectionTarget) -> list[Expect]:
    """Rewrite ``ds`` (already fully decoded) as ``ctx``'s instance; return what was planted."""
    copies: list[Expect] = []
    expects: list[Expect] = []
    originals = _source_identifiers(ds, ctx)
    offset = _date_offset(ds, ctx.study.date)
    remap_uids(ds, ctx.uid)
    shift_dates(ds, offset, ctx.study.date)
    _replace_copies(ds, originals, copies)
    replace_person_names(ds, ctx, copies)
    patient_module(ds, ctx, expects)
    study_module(ds, ctx, expects)
    series_module(ds, ctx, expects)
    if "PixelData" in ds:
        _image_comments(ds, ctx, expects)
    precision.plant(ds, ctx, expects)
    ds.SOPInstanceUID = ctx.uid(str(ds.SOPInstanceUID))
    ds.StudyInstanceUID = ctx.study.uid
    ds.SeriesInstanceUID = ctx.series.uid
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    set_character_set(ds, ctx.patient)
    # A value planted later replaces a copy found earlier: its own checks are the ones that hold.
    planted = {e.path for e in expects}
    current = {path: element for path, element in walk(ds, ())}
    return [e for e in copies if e.path not in planted and _holds(current.get(e.path), e.action_text)] + expects


# -- consistent rewriting of what came from the source ---------------------------------------


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


def _date_offset(ds: Dataset, new_study_date: datetime.date) -> datetime.timedelta | None:
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


def _source_identifiers(ds: Dataset, ctx: InjectionTarget) -> dict[str, tuple[str, tuple[str, ...]]]:
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


def _holds(element, text: str | None) -> bool:
    """True when ``element`` still shows every part of ``text`` (nothing overwrote the copy)."""
    if element is None or not text:
        return False
    value = str(element.value or "").lower()
    return all(part.lower() in value for part in text.split())


def _kept(tag: int) -> bool:
    decision = decide(tag, "")
    return decision is None or decision.action == "K"


def _replace_copies(ds: Dataset, originals: dict[str, tuple[str, tuple[str, ...]]],
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


# -- planting synthetic PHI -------------------------------------------------------------------


def _top(keyword: str) -> tuple[Step, ...]:
    return (public(tag_for_keyword(keyword)),)


def _put(ds: Dataset, expects: list[Expect], keyword: str, value: object, action: str | None,
         category: tuple[str, ...] = (), action_text: str | None = None) -> None:
    setattr(ds, keyword, value)
    if action is not None:
        expects.append(Expect(_top(keyword), action, category, action_text=action_text))


#: How often an optional attribute is filled: real exports differ from device to device.
OPTIONAL = {
    "PatientAddress": 0.5, "PatientTelephoneNumbers": 0.5, "PatientMotherBirthName": 0.25,
    "OtherPatientIDs": 0.4, "OtherPatientNames": 0.4, "MedicalAlerts": 0.3, "InstitutionAddress": 0.4,
    "NameOfPhysiciansReadingStudy": 0.4, "ReferringPhysicianIdentificationSequence": 0.3,
    "RequestAttributesSequence": 0.4, "ReferencedStudySequence": 0.5, "AdditionalPatientHistory": 0.4,
    "PerformingPhysicianName": 0.6, "OperatorsName": 0.6, "PerformedProcedureStepDescription": 0.5,
    "PerformedProcedureStepID": 0.4,
}


def _wanted(ctx: InjectionTarget, keyword: str) -> bool:
    """Whether this series' device fills ``keyword`` (the same answer for all its instances)."""
    return ctx.choice("optional", ctx.series.uid, keyword).random() < OPTIONAL[keyword]


def patient_module(ds: Dataset, ctx: InjectionTarget, expects: list[Expect]) -> None:
    """Patient identification, demographics and contact details."""
    patient = ctx.patient
    study = ctx.study
    _put(ds, expects, "PatientName", patient.pn, "text_removed", E.NAME)
    _put(ds, expects, "PatientID", patient.patient_id, "patid_consistent", E.ID)
    _put(ds, expects, "IssuerOfPatientID", patient.issuer, None)
    _put(ds, expects, "PatientBirthDate", f"{patient.birth_date:%Y%m%d}", "text_removed", E.DATE)
    _put(ds, expects, "PatientSex", patient.sex, "text_notnull", E.PATIENT_CHARACTERISTICS)
    _put(ds, expects, "PatientAge", patient.age_at(study.date), "text_notnull", E.PATIENT_CHARACTERISTICS)
    _put(ds, expects, "PatientSize", patient.size_m, "text_notnull", E.PATIENT_CHARACTERISTICS)
    _put(ds, expects, "PatientWeight", patient.weight_kg, "text_notnull", E.PATIENT_CHARACTERISTICS)
    if _wanted(ctx, "PatientAddress"):
        _put(ds, expects, "PatientAddress", patient.address, "text_removed", E.ADDRESS)
    if _wanted(ctx, "PatientTelephoneNumbers"):
        _put(ds, expects, "PatientTelephoneNumbers", patient.phone, "text_removed", E.PHONE)
    if _wanted(ctx, "PatientMotherBirthName"):
        _put(ds, expects, "PatientMotherBirthName", patient.mother.pn(), "text_removed", E.NAME)
    if _wanted(ctx, "OtherPatientIDs"):
        _other_ids(ds, patient, expects)
    choice = ctx.choice("patient-extras", patient.number, ctx.series.uid)
    if _wanted(ctx, "MedicalAlerts"):
        _descriptor(ds, expects, "MedicalAlerts", choice.choice(vocab.ALERTS),
                    [("contact", patient.mother.spoken()), ("tel", patient.phone)], choice, limit=64)
    if patient.sex == "F" and _wanted(ctx, "OtherPatientNames"):
        _put(ds, expects, "OtherPatientNames", patient.mother.family.upper() + "^" + patient.name.given.upper(),
             "text_removed", E.NAME)


def _other_ids(ds: Dataset, patient: Patient, expects: list[Expect]) -> None:
    """Other Patient IDs, flat and as the nested sequence that replaced it."""
    _put(ds, expects, "OtherPatientIDs", list(patient.other_ids), "text_removed", E.ID,
         action_text=" ".join(patient.other_ids))
    items = []
    for number, other in enumerate(patient.other_ids):
        item = Dataset()
        item.PatientID = other
        item.IssuerOfPatientID = "OUTSIDE_HOSP" if number else patient.issuer
        item.TypeOfPatientID = "TEXT"
        items.append(item)
        path = (public(0x00101002, item=number), public(0x00100020))
        expects.append(Expect(path, "text_removed", E.ID, action_text=other))
    ds.OtherPatientIDsSequence = Sequence(items)


def study_module(ds: Dataset, ctx: InjectionTarget, expects: list[Expect]) -> None:
    """Study identification, the site and its staff, the request."""
    study, site, patient = ctx.study, ctx.study.site, ctx.patient
    day = f"{study.date:%Y%m%d}"
    ds.StudyDate = day
    ds.StudyTime = study.time
    _put(ds, expects, "AccessionNumber", study.accession, "text_removed", E.ID)
    _put(ds, expects, "StudyID", study.study_id, "text_removed", E.ID)
    if day in study.study_id:
        expects.append(Expect(_top("StudyID"), "date_shifted", E.HIDDEN_DATE, value=day))
    _put(ds, expects, "ReferringPhysicianName", site.referring.pn(), "text_removed", E.NAME)
    _put(ds, expects, "InstitutionName", site.institution, "text_removed", E.INSTITUTION)
    _put(ds, expects, "InstitutionalDepartmentName", site.department, None)
    if _wanted(ctx, "InstitutionAddress"):
        _put(ds, expects, "InstitutionAddress", site.address, "text_removed", E.ADDRESS)
    if _wanted(ctx, "NameOfPhysiciansReadingStudy"):
        _put(ds, expects, "NameOfPhysiciansReadingStudy", site.reader.pn("FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX"),
             "text_removed", E.NAME)
    choice = ctx.choice("study-text", study.number)
    spans = _name_spans(patient, study, site)
    clinical = vocab.study_phrases(study.modality)
    _descriptor(ds, expects, "StudyDescription", choice.choice(clinical),
                spans if choice.random() < 0.6 else [], choice, limit=64)
    history = choice.choice(vocab.HISTORY)
    if _wanted(ctx, "AdditionalPatientHistory"):
        _descriptor(ds, expects, "AdditionalPatientHistory", history + ".",
                    [("Referred by Dr.", site.referring.family), ("Call", site.phone)], choice, limit=10240)
    if _wanted(ctx, "ReferringPhysicianIdentificationSequence"):
        _referring_identification(ds, ctx, expects)
    if _wanted(ctx, "RequestAttributesSequence"):
        _request_attributes(ds, ctx, expects, choice)
    if _wanted(ctx, "ReferencedStudySequence"):
        item = Dataset()
        item.ReferencedSOPClassUID = _DETACHED_STUDY
        item.ReferencedSOPInstanceUID = study.prior.uid if study.prior is not None else study.uid
        ds.ReferencedStudySequence = Sequence([item])


def _referring_identification(ds: Dataset, ctx: InjectionTarget, expects: list[Expect]) -> None:
    site = ctx.study.site
    npi = str(ctx.choice("npi", ctx.study.number).randrange(10**9, 10**10))
    code = Dataset()
    code.CodeValue = npi
    code.CodingSchemeDesignator = "99NPI"
    code.CodeMeaning = site.referring.spoken()
    item = Dataset()
    item.PersonIdentificationCodeSequence = Sequence([code])
    item.PersonAddress = site.address
    item.PersonTelephoneNumbers = site.phone
    item.InstitutionName = site.institution
    ds.ReferringPhysicianIdentificationSequence = Sequence([item])
    outer = public(0x00080096, item=0)
    inner = public(0x00401101, item=0)
    expects.extend([
        Expect((outer, inner, public(0x00080100)), "text_removed", E.ID, action_text=npi),
        Expect((outer, inner, public(0x00080104)), "text_removed", E.NAME, action_text=site.referring.spoken()),
        Expect((outer, public(0x00401102)), "text_removed", E.ADDRESS, action_text=site.address),
        Expect((outer, public(0x00401103)), "text_removed", E.PHONE, action_text=site.phone),
        Expect((outer, public(0x00080080)), "text_removed", E.INSTITUTION, action_text=site.institution),
    ])


def _request_attributes(ds: Dataset, ctx: InjectionTarget, expects: list[Expect], choice) -> None:
    study = ctx.study
    day = f"{study.date:%Y%m%d}"
    item = Dataset()
    item.RequestedProcedureID = f"RP{day}"
    item.ScheduledProcedureStepID = f"SPS{choice.randrange(10**5, 10**6)}"
    item.AccessionNumber = study.accession
    item.ReasonForTheRequestedProcedure = choice.choice(vocab.REASONS)
    ds.RequestAttributesSequence = Sequence([item])
    outer = public(0x00400275, item=0)
    expects.extend([
        Expect((outer, public(0x00401001)), "date_shifted", E.HIDDEN_DATE, value=day),
        Expect((outer, public(0x00400009)), "text_removed", E.ID),
        Expect((outer, public(0x00080050)), "text_removed", E.ID),
        Expect((outer, public(0x0040100A)), "text_retained", E.KEEP_DESCRIPTOR,
               action_text=item.ReasonForTheRequestedProcedure),
    ])
    sub: list[Expect] = []
    _descriptor(item, sub, "RequestedProcedureDescription", choice.choice(vocab.study_phrases(study.modality)),
                [("MRN", ctx.patient.patient_id)], choice, limit=64)
    expects.extend(Expect((outer, *e.path), e.action, e.category, e.action_text, e.value) for e in sub)


def series_module(ds: Dataset, ctx: InjectionTarget, expects: list[Expect]) -> None:
    """Series description and protocol, the people who did it, procedure step texts."""
    series, study, site = ctx.series, ctx.study, ctx.study.site
    choice = ctx.choice("series-text", series.uid)
    ds.SeriesNumber = series.number
    spans = _name_spans(ctx.patient, study, site)
    phrases = vocab.series_phrases(series.modality)
    _descriptor(ds, expects, "SeriesDescription", choice.choice(phrases),
                spans if choice.random() < 0.6 else [], choice, limit=64)
    _descriptor(ds, expects, "ProtocolName", choice.choice(phrases),
                spans if choice.random() < 0.35 else [], choice, limit=64)
    if _wanted(ctx, "PerformingPhysicianName"):
        _put(ds, expects, "PerformingPhysicianName", site.performing.pn(), "text_removed", E.NAME)
    if _wanted(ctx, "OperatorsName"):
        _put(ds, expects, "OperatorsName", site.operator.pn("FAMILY^GIVEN^M"), "text_removed", E.NAME)
    day = f"{study.date:%Y%m%d}"
    if _wanted(ctx, "PerformedProcedureStepDescription"):
        step = choice.choice(vocab.STEPS)
        ds.PerformedProcedureStepDescription = f"{step} {day}"
        expects.append(Expect(_top("PerformedProcedureStepDescription"), "text_retained", E.KEEP_DESCRIPTOR,
                              action_text=step))
        expects.append(Expect(_top("PerformedProcedureStepDescription"), "date_shifted", E.HIDDEN_DATE,
                              value=day))
    if _wanted(ctx, "PerformedProcedureStepID"):
        ds.PerformedProcedureStepID = f"PPS{day}"
        expects.append(Expect(_top("PerformedProcedureStepID"), "date_shifted", E.HIDDEN_DATE, value=day))
    if not str(ds.get("StationName", "") or "").strip():
        ds.StationName = f"{series.modality}{choice.randrange(1, 9):02d}_{site.department[:3].upper()}"


def _image_comments(ds: Dataset, ctx: InjectionTarget, expects: list[Expect]) -> None:
    choice = ctx.choice("image-comments", ctx.series.uid, ctx.index)
    if choice.random() < 0.3:
        site = ctx.study.site
        _descriptor(ds, expects, "ImageComments", choice.choice(vocab.IMAGE_COMMENTS) + ".",
                    [("Called to Dr.", f"{site.referring.family} on {ctx.study.date:%m/%d/%Y}"),
                     ("Tech", site.operator.spoken())], choice, limit=10240)


def _name_spans(patient: Patient, study: StudyPlan, site) -> list[tuple[str, str]]:
    """Identifying text typed after clinical words, with the filler word before it."""
    name: Person = patient.name
    return [
        ("for", f"{name.given} {name.family} {study.date:%Y%m%d}"),
        ("", f"{name.family.upper()}^{name.given.upper()}"),
        ("MRN", patient.patient_id),
        ("per Dr.", site.referring.family),
        ("DOB", f"{patient.birth_date:%m/%d/%Y}"),
        ("pt", name.spoken()),
    ]


def collides(phi: str, clinical: str) -> bool:
    """True when a token of ``phi`` occurs inside ``clinical`` (the checks test substrings)."""
    kept = clinical.lower()
    return any(token.lower() in kept for token in content_tokens(phi))


def _descriptor(ds: Dataset, expects: list[Expect], keyword: str, clinical: str,
                spans: list[tuple[str, str]], choice, *, limit: int) -> None:
    """Set ``keyword`` to the clinical words, plus one identifying span when one fits cleanly."""
    usable = [(filler, phi) for filler, phi in spans
              if not collides(phi, f"{clinical} {filler}")
              and len(" ".join(p for p in (clinical, filler, phi) if p)) <= limit]
    value, phi = clinical, None
    if usable:
        filler, phi = usable[choice.randrange(len(usable))]
        value = " ".join(p for p in (clinical, filler, phi) if p)
    setattr(ds, keyword, value)
    path = _top(keyword)
    expects.append(Expect(path, "text_retained", E.KEEP_DESCRIPTOR, action_text=clinical))
    if phi is not None:
        expects.append(Expect(path, "text_removed", E.DESCRIPTOR_PHI, action_text=phi))
