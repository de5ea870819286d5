"""A radiology report as a Basic Text SR, written from scratch for each synthetic patient.

The corpora hold few structured reports, and none that talk about the
synthetic patient.  Reports are where free text about a person lives: who
referred them, who was phoned with the result, the name and MRN typed into a
"patient" line.  Clean Structured Content keeps the clinical sentences and
removes those, so each report mixes both in its TEXT items, names its
observer in a PNAME item, dates itself in DATE and DATETIME items, and lists
the study's images as evidence (references that must stay valid).
"""

from __future__ import annotations

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from medveil._version import __version__
from medveil.evaluate.paths import public
from medveil.synth import expect as E
from medveil.synth import vocab
from medveil.synth.expect import Expect
from medveil.synth.plant import collides, patient_module, series_module, study_module
from medveil.synth.rewrite import set_character_set
from medveil.synth.target import InjectionTarget
from medveil.synth.seeds import new_uid

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
CONTENT_SEQUENCE = 0x0040A730
TEXT_VALUE = 0x0040A160
MAX_EVIDENCE = 6


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue = value
    code.CodingSchemeDesignator = scheme
    code.CodeMeaning = meaning
    return code


def _item(value_type: str, concept: Dataset, relationship: str = "CONTAINS") -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = Sequence([concept])
    return item


def build_report(ctx: InjectionTarget, evidence: list[tuple[str, str, str]]) -> tuple[Dataset, list[Expect]]:
    """The report for ``ctx``'s study; ``evidence`` is (SOP Class, SOP Instance, Series) UIDs."""
    study, site, patient = ctx.study, ctx.study.site, ctx.patient
    choice = ctx.choice("report", study.number)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = BASIC_TEXT_SR
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta.ImplementationVersionName = f"MEDVEIL_{__version__}"[:16]
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = BASIC_TEXT_SR
    ds.SOPInstanceUID = new_uid(ctx.seed, "report", study.number)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "SR"
    ds.Manufacturer = "Synthetic Reporting Systems"
    ds.InstanceNumber = 1
    day = f"{study.date:%Y%m%d}"
    report_time = f"{min(int(study.time[:2]) + 2, 23):02d}{study.time[2:]}"
    ds.ContentDate = day
    ds.ContentTime = report_time
    ds.InstanceCreationDate = day
    ds.InstanceCreationTime = report_time
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = ctx.series.uid
    expects: list[Expect] = []
    patient_module(ds, ctx, expects)
    study_module(ds, ctx, expects)
    series_module(ds, ctx, expects)
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.PerformedProcedureCodeSequence = Sequence()
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "VERIFIED"
    observer = Dataset()
    observer.VerifyingObserverName = site.reader.pn("FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX")
    observer.VerifyingOrganization = site.institution
    observer.VerificationDateTime = f"{day}{report_time}"
    observer.VerifyingObserverIdentificationCodeSequence = Sequence()
    ds.VerifyingObserverSequence = Sequence([observer])
    expects.append(Expect((public(0x0040A073, item=0), public(0x0040A027)), "text_removed", E.INSTITUTION,
                          action_text=site.institution))
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([_code("11528-7", "LN", "Radiology Report")])
    ds.ContinuityOfContent = "SEPARATE"
    items: list[Dataset] = []

    def text(concept: Dataset, clinical: str, phi: str, sentence: str) -> None:
        item = _item("TEXT", concept)
        item.TextValue = sentence
        path = (public(CONTENT_SEQUENCE, item=len(items)), public(TEXT_VALUE))
        if clinical:
            expects.append(Expect(path, "text_retained", E.KEEP_STRUCTURED, action_text=clinical))
        if phi:
            expects.append(Expect(path, "text_removed", E.STRUCTURED_PHI, action_text=phi))
        items.append(item)

    patient_line = f"{patient.name.spoken()} {patient.patient_id} {patient.birth_date:%m/%d/%Y}"
    text(_code("121106", "DCM", "Comment"), "", patient_line,
         f"Patient: {patient.name.spoken()}, MRN {patient.patient_id}, DOB {patient.birth_date:%m/%d/%Y}.")
    history = choice.choice(vocab.HISTORY)
    referrer = site.referring.spoken()
    if collides(referrer, history):
        referrer = site.referring.family
    text(_code("121060", "DCM", "History"), history, referrer, f"{history}. Referred by Dr. {referrer}.")
    finding = choice.choice(vocab.FINDINGS)
    called = f"{site.reader.spoken()} {site.phone} {study.date:%m/%d/%Y}"
    if collides(called, finding):
        called = ""
    text(_code("121071", "DCM", "Finding"), finding, called,
         f"{finding}. Results called to {site.reader.spoken()} at {site.phone} on {study.date:%m/%d/%Y}."
         if called else f"{finding}.")
    impression = choice.choice(vocab.IMPRESSIONS)
    text(_code("121073", "DCM", "Impression"), impression, "", f"{impression}.")
    person = _item("PNAME", _code("121008", "DCM", "Person Observer Name"), "HAS OBS CONTEXT")
    person.PersonName = site.reader.pn("Family^Given^Middle")
    items.append(person)
    date = _item("DATE", _code("111060", "DCM", "Study Date"))
    date.Date = day
    items.append(date)
    started = _item("DATETIME", _code("111526", "DCM", "DateTime Started"))
    started.DateTime = f"{day}{study.time}"
    items.append(started)
    ds.ContentSequence = Sequence(items)
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([_evidence(study.uid, evidence)] if evidence else [])
    set_character_set(ds, patient)
    return ds, expects


def _evidence(study_uid: str, evidence: list[tuple[str, str, str]]) -> Dataset:
    by_series: dict[str, list[tuple[str, str]]] = {}
    for sop_class, sop_instance, series in evidence[:MAX_EVIDENCE]:
        by_series.setdefault(series, []).append((sop_class, sop_instance))
    item = Dataset()
    item.StudyInstanceUID = study_uid
    series_items = []
    for series, instances in by_series.items():
        series_item = Dataset()
        series_item.SeriesInstanceUID = series
        references = []
        for sop_class, sop_instance in instances:
            reference = Dataset()
            reference.ReferencedSOPClassUID = sop_class
            reference.ReferencedSOPInstanceUID = sop_instance
            references.append(reference)
        series_item.ReferencedSOPSequence = Sequence(references)
        series_items.append(series_item)
    item.ReferencedSeriesSequence = Sequence(series_items)
    return item
