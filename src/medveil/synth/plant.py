"""Planting synthetic PHI where real exports carry it: one builder per module.

The patient, study and series attributes a real export fills, descriptions with
identifying text next to clinical words, dates hidden in IDs and short strings,
and nested sequences.  Each planted value is recorded as an :class:`Expect`.
"""

from __future__ import annotations

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medveil.evaluate.paths import Step, public
from medveil.evaluate.tokens import content_tokens
from medveil.synth import expect as E
from medveil.synth import vocab
from medveil.synth.expect import Expect
from medveil.synth.fake import Patient, Person
from medveil.synth.plan import StudyPlan
from medveil.synth.target import InjectionTarget

_DETACHED_STUDY = "1.2.840.10008.3.1.2.3.1"


def _top(keyword: str) -> tuple[Step, ...]:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword  # callers name standard keywords
    return (public(tag),)


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


def image_comments(ds: Dataset, ctx: InjectionTarget, expects: list[Expect]) -> None:
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
