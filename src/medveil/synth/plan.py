"""Who gets which files: synthetic patients, their studies and series.

A real export is organised by patient, study and series, and a de-identifier
is judged on keeping that organisation intact (same patient, same study, the
references between instances still resolving).  So source files are never
scattered one by one: a source study moves whole into one synthetic study,
and each source series becomes one synthetic series.  The corpora hold far
more source studies than a test set has patients, so several source studies
of the same modality share a synthetic study; sorting by modality before
splitting keeps a synthetic study looking like one examination.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from medveil.synth import fake
from medveil.synth.corpus import Source
from medveil.synth.seeds import derive, new_uid, rng

DEFAULT_PATIENTS = 10
GENERATED_SR = "generated:basic-text-sr"


@dataclass
class SeriesPlan:
    """One synthetic series: a whole source series, or a generated report."""

    number: int
    uid: str
    modality: str
    sources: list[Source]
    old_uid: str = ""
    generated: str = ""  # GENERATED_SR for a report made from scratch


@dataclass
class StudyPlan:
    number: int
    patient: fake.Patient
    site: fake.Site
    date: datetime.date
    time: str
    accession: str
    study_id: str
    uid: str
    modality: str
    old_uids: tuple[str, ...]
    series: list[SeriesPlan] = field(default_factory=list)
    prior: StudyPlan | None = None  # the patient's previous study, referenced from this one


@dataclass
class PatientPlan:
    patient: fake.Patient
    studies: list[StudyPlan] = field(default_factory=list)


@dataclass
class Plan:
    seed: int
    patients: list[PatientPlan]

    def studies(self) -> list[StudyPlan]:
        return [study for patient in self.patients for study in patient.studies]

    def series(self) -> list[SeriesPlan]:
        return [series for study in self.studies() for series in study.series]

    def uid_map(self) -> dict[str, str]:
        """Old Study and Series Instance UIDs to the synthetic ones that replaced them."""
        mapping: dict[str, str] = {}
        for study in self.studies():
            for old in study.old_uids:
                mapping.setdefault(old, study.uid)
            for series in study.series:
                if series.old_uid:
                    mapping.setdefault(series.old_uid, series.uid)
        return mapping


def select(sources: Sequence[Source], max_files: int | None) -> list[Source]:
    """At most ``max_files`` sources: first one image of each pixel encoding (transfer syntax and
    photometric interpretation) without text in its pixels, up to a third of the set, so that
    palette, YBR_RCT, JPEG 2000, JPEG-LS and RLE images each get a "pixels retained" check;
    then one per series in turn so that a small set stays varied."""
    if max_files is None or max_files >= len(sources):
        return list(sources)
    chosen: list[Source] = []
    encodings: dict[str, Source] = {}
    counts: dict[str, int] = defaultdict(int)
    for source in sorted(sources, key=lambda s: s.origin):
        if source.encoding and source.pixel_text is None:
            encodings.setdefault(source.encoding, source)
            counts[source.encoding] += 1
    # The rarest encodings first: a common one turns up in the round below anyway.
    for encoding in sorted(encodings, key=lambda e: (counts[e], e))[:max(1, max_files // 3)]:
        chosen.append(encodings[encoding])
    taken = {id(source) for source in chosen}
    by_series: dict[str, list[Source]] = defaultdict(list)
    for source in sources:
        if id(source) not in taken:
            by_series[source.series_uid].append(source)
    queues = [sorted(group, key=_instance_order) for group in by_series.values()]
    queues.sort(key=lambda group: group[0].origin)
    depth = 0
    while len(chosen) < max_files:
        took = False
        for group in queues:
            if depth < len(group) and len(chosen) < max_files:
                chosen.append(group[depth])
                took = True
        if not took:
            break
        depth += 1
    return sorted(chosen, key=lambda source: source.origin)


def _instance_order(source: Source) -> tuple[int, str]:
    return source.instance_number, source.origin


def make_plan(sources: Sequence[Source], seed: int, patients: int | None = None) -> Plan:
    """Group ``sources`` into synthetic patients (1-3 studies each) and series."""
    by_study: dict[str, list[Source]] = defaultdict(list)
    for source in sources:
        by_study[source.study_uid].append(source)
    units = sorted(by_study.values(), key=lambda group: (_modality(group), derive(seed, "unit", group[0].study_uid)))
    wanted = DEFAULT_PATIENTS if patients is None else max(1, patients)
    count = max(1, min(wanted, len(units))) if units else max(1, wanted)
    per_patient = [rng(seed, "studies-per-patient", n).randint(1, 3) for n in range(count)]
    while sum(per_patient) > max(len(units), count):
        largest = max(range(count), key=lambda n: (per_patient[n], n))
        per_patient[largest] -= 1
    chunks = _split(units, sum(per_patient))
    order = list(range(len(chunks)))
    rng(seed, "chunk-order").shuffle(order)
    sites = [fake.make_site(seed, n) for n in range(max(2, (count + 1) // 2))]
    plan = Plan(seed=seed, patients=[])
    study_number = 0
    chunk_iter = iter(order)
    for n in range(count):
        patient = PatientPlan(fake.make_patient(seed, n))
        choice = rng(seed, "patient-dates", n)
        day = datetime.date(2008, 1, 1) + datetime.timedelta(days=choice.randrange(0, 15 * 365))
        prior: StudyPlan | None = None
        for _ in range(per_patient[n]):
            chunk = chunks[next(chunk_iter)] if chunks else []
            study = _study(seed, study_number, patient.patient, sites, day, chunk, prior)
            patient.studies.append(study)
            prior = study
            study_number += 1
            day += datetime.timedelta(days=choice.randrange(30, 720))
        patient.studies[0].series.append(SeriesPlan(
            number=len(patient.studies[0].series) + 1,
            uid=new_uid(seed, "generated-sr-series", n), modality="SR", sources=[],
            generated=GENERATED_SR))
        plan.patients.append(patient)
    return plan


def _modality(group: Sequence[Source]) -> str:
    modalities = sorted({source.modality or "OT" for source in group})
    return modalities[0]


def _split(units: list[list[Source]], parts: int) -> list[list[list[Source]]]:
    """``units`` in ``parts`` contiguous, nearly equal runs (empty runs if too few units)."""
    if parts <= 0:
        return []
    size, extra = divmod(len(units), parts)
    chunks, start = [], 0
    for n in range(parts):
        end = start + size + (1 if n < extra else 0)
        chunks.append(units[start:end])
        start = end
    return chunks


def _study(seed: int, number: int, patient: fake.Patient, sites: list[fake.Site],
           day: datetime.date, units: list[list[Source]], prior: StudyPlan | None) -> StudyPlan:
    choice = rng(seed, "study", number)
    modalities = sorted({source.modality or "OT" for unit in units for source in unit})
    study_id = str(choice.randrange(1000, 99999))
    if choice.random() < 0.4:  # a date hidden in Study ID, as some scanners write it
        study_id = f"{day:%Y%m%d}{choice.randrange(1, 9)}"
    study = StudyPlan(
        number=number,
        patient=patient,
        site=sites[choice.randrange(len(sites))],
        date=day,
        time=f"{choice.randrange(7, 19):02d}{choice.randrange(60):02d}{choice.randrange(60):02d}",
        accession=fake.accession_number(seed, "study", number),
        study_id=study_id,
        uid=new_uid(seed, "study", number),
        modality=modalities[0] if modalities else "OT",
        old_uids=tuple(unit[0].study_uid for unit in units),
        prior=prior,
    )
    by_series: dict[str, list[Source]] = defaultdict(list)
    for unit in units:
        for source in unit:
            by_series[source.series_uid].append(source)
    for old_uid in sorted(by_series, key=lambda uid: min(s.origin for s in by_series[uid])):
        members = sorted(by_series[old_uid], key=_instance_order)
        study.series.append(SeriesPlan(
            number=len(study.series) + 1,
            uid=new_uid(seed, "series", old_uid),
            modality=members[0].modality or "OT",
            sources=members,
            old_uid=old_uid,
        ))
    return study
