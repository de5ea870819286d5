"""De-identifying one dataset: the engine's entry point.

:func:`deidentify_dataset` changes a pydicom Dataset in place according to a
:class:`~medveil.policy.Policy` and a pseudonymisation key, records what was
done in the dataset itself (Patient Identity Removed, De-identification
Method and its Code Sequence, Longitudinal Temporal Information Modified) and
refuses, with :class:`~medveil.errors.QuarantineError`, to hand back a
dataset in which an original identifier survived.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import UID

from medveil._version import __version__
from medveil.engine.identifiers import KnownSource, resolve_known
from medveil.engine.repair import repair_element
from medveil.engine.residuals import Identifiers, collect_identifiers, locate_residuals, sop_class_of
from medveil.engine.state import WalkState
from medveil.engine.walker import walk
from medveil.errors import QuarantineError
from medveil.policy import BASIC_PROFILE_CODE, Option, Policy
from medveil.policy.options import PIXEL_OPTIONS
from medveil.pseudonym import Key, patient_offset, pseudonymize_id
from medveil.text.spans import Span

ENCAPSULATED_DOCUMENT = 0x00420011
IMPLEMENTATION_CLASS_UID = "2.25.143132137200271179821943504715000441957"
IMPLEMENTATION_VERSION_NAME = ("MEDVEIL_" + __version__.replace(".", "_"))[:16]

_CODE_VALUE, _CODING_SCHEME, _CODE_MEANING = Tag(0x00080100), Tag(0x00080102), Tag(0x00080104)
#: File meta elements that survive; the rest (source/sending/receiving AE titles,
#: private information) can identify a device, a site or a person.
_META_KEPT = {0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013}


@dataclass
class Result:
    """What :func:`deidentify_dataset` did to one dataset."""

    dataset: Dataset
    new_patient_id: str
    uid_pairs: dict[str, str]
    patient_pairs: dict[str, str]
    counts: Counter
    events: list[tuple[str, str]] = field(default_factory=list)
    applied_options: frozenset[Option] = frozenset()


def _text(value) -> str:
    return "" if value is None else str(value).strip().rstrip("\x00")


def patient_key(ds: Dataset) -> str:
    """What identifies the patient for pseudonyms and date offsets.

    The original Patient ID when there is one; otherwise name and birth date,
    otherwise the study, so that at least one study stays internally
    consistent.
    """
    pid = _text(ds.get("PatientID"))
    if pid:
        return pid
    name = _text(ds.get("PatientName"))
    if name:
        return f"name:{name}|{_text(ds.get('PatientBirthDate'))}"
    return f"study:{_text(ds.get('StudyInstanceUID'))}"


def deidentify_dataset(ds: Dataset, policy: Policy, key: Key, *,
                       pixel_options_applied: frozenset[Option] = frozenset(),
                       assigned_patient_id: str | None = None,
                       identifiers: Identifiers | None = None,
                       known: KnownSource | None = None) -> Result:
    """De-identify *ds* in place and return what was done.

    *assigned_patient_id* is the sequential Patient ID the runner numbered
    this patient with (policy.sequential_patient_ids); otherwise the Patient
    ID is a keyed pseudonym.  Raises QuarantineError when the result would
    still carry an original identifier; the dataset must then not be written
    anywhere.  *identifiers* are the dataset's own, when the caller collected
    them (with :func:`collect_identifiers`) before changing anything; *known*
    likewise the identifiers the text cleaner looks for (or a function that
    collects them once: :func:`medveil.engine.identifiers.known_once`).
    """
    sop_class_uid = sop_class_of(ds)
    if ENCAPSULATED_DOCUMENT in ds:
        # A PDF, CDA or 3D model carries its own text and metadata that the table's
        # dummy replacement would only hide inside an unusable object: not released.
        raise QuarantineError("encapsulated document (PDF, CDA, STL, ...) cannot be cleaned: not released")
    if identifiers is None:
        identifiers = collect_identifiers(ds, policy, sop_class_uid)
    pkey = patient_key(ds)
    if policy.sequential_patient_ids and assigned_patient_id is None:
        raise QuarantineError("sequential Patient IDs need a number from the batch runner's store")
    new_pid = assigned_patient_id or pseudonymize_id(key, "patient-id", pkey, policy.patient_id_format)
    ctx = WalkState(policy=policy, key=key, sop_class_uid=sop_class_uid,
                  date_offset=patient_offset(key, pkey, policy.shift_range), new_patient_id=new_pid)
    if policy.cleaners:
        ctx.known = resolve_known(known, ds, policy)
    original_pid = _text(ds.get("PatientID"))
    if assigned_patient_id is not None and original_pid:
        ctx.assigned_patient_ids[original_pid] = assigned_patient_id
    walk(ds, ctx)
    _set_patient(ds, ctx)
    # Checked before medveil's own records and the recipe's additions go in: those are
    # chosen text, and a patient called "Patient" must not trip over "Retain Patient ...".
    old_uids = set() if policy.retains_uids else set(ctx.uid_pairs)
    _repair_residuals(ds, identifiers, old_uids, ctx)
    applied = _applied_options(policy, pixel_options_applied)
    _record_method(ds, policy, applied)
    for addition in policy.additions:
        ds.add_new(addition.tag, addition.vr, addition.value)
    if getattr(ds, "file_meta", None) is not None:
        _clean_file_meta(ds)
    return Result(dataset=ds, new_patient_id=new_pid, uid_pairs=ctx.uid_pairs,
                  patient_pairs=ctx.patient_pairs, counts=ctx.counts, events=ctx.events,
                  applied_options=applied)


_WHY_IDENTIFIER = "held one of the file's own identifiers"
_WHY_UID = "held an original UID"


def _repair_residuals(ds: Dataset, identifiers: Identifiers, old_uids: set[str], ctx: WalkState) -> None:
    """Repair each attribute that still holds an original identifier; quarantine only what stays.

    Each repair is the smallest change that leaves the object valid (see
    :mod:`medveil.engine.repair`); the check then runs again, so a repair that did
    not remove the identifier (or one that revealed another) still stops the file.
    """
    residual = locate_residuals(ds, identifiers, old_uids)
    if not residual:
        return
    pattern = identifiers.any

    def spans_of(text: str) -> list[Span]:
        if not pattern:
            return []
        return [Span(m.start(), m.end(), "other") for m in pattern.finditer(text) if m.end() > m.start()]

    for hit in residual:
        repaired = repair_element(hit.holder, hit.tag, hit.path, ctx.sop_class_uid,
                                  _WHY_UID if hit.uid else _WHY_IDENTIFIER, uid=hit.uid,
                                  remap_uid=ctx.remap_uid, spans_of=None if hit.vr == "CS" else spans_of)
        if repaired is not None:
            ctx.event(*repaired.event())
    remaining = locate_residuals(ds, identifiers, old_uids)
    if remaining:
        names = ", ".join(sorted({r.path.rsplit(".", 1)[-1] for r in remaining})[:5])
        raise QuarantineError(f"original identifier still present after de-identification in: {names}")


def _set_patient(ds: Dataset, ctx: WalkState) -> None:
    policy = ctx.policy
    pid_decision = policy.decide(0x00100020, ctx.sop_class_uid)
    if pid_decision is None or pid_decision.action not in ("K", "R"):
        ds.PatientID = ctx.new_patient_id
    name_decision = policy.decide(0x00100010, ctx.sop_class_uid)
    if name_decision is None or name_decision.action not in ("K", "R"):
        ds.PatientName = policy.patient_name.format(patient_id=ctx.new_patient_id)


def _applied_options(policy: Policy, pixel_options_applied: frozenset[Option]) -> frozenset[Option]:
    return frozenset(o for o in policy.options if o not in PIXEL_OPTIONS) | (
        pixel_options_applied & policy.options)


_TEMPORAL_RANK = {"UNMODIFIED": 0, "MODIFIED": 1, "REMOVED": 2}


def _record_method(ds: Dataset, policy: Policy, applied: frozenset[Option]) -> None:
    """Record what was done, after what earlier de-identifications recorded.

    PS3.3 C.12.1.1.5 makes De-identification Method multi-valued "in the case that
    the object was anonymized more than once", and its Code Sequence likewise: a
    file that was refaced or de-identified before keeps those values and items,
    and medveil's follow them.  Longitudinal Temporal Information Modified never
    claims less than an earlier run did (dates once shifted or removed stay so);
    Recognizable Visual Features, where the file states it, is kept as stated.
    """
    ds.PatientIdentityRemoved = "YES"
    earlier = [str(v) for v in _listed(ds.get("DeidentificationMethod")) if str(v).strip()]
    ds.DeidentificationMethod = earlier + [f"medveil {__version__}", f"PS3.15 E.1-1 {policy.table.edition}",
                                           f"profile {policy.name}"]
    codes = [BASIC_PROFILE_CODE] + sorted((o.code for o in applied), key=lambda c: c.value)
    # Items built from their elements directly: add_new's checks cost more than the rest
    # of recording the method, on every released file.
    items = [Dataset({_CODE_VALUE: DataElement(_CODE_VALUE, "SH", code.value),
                      _CODING_SCHEME: DataElement(_CODING_SCHEME, "SH", code.scheme),
                      _CODE_MEANING: DataElement(_CODE_MEANING, "LO", code.meaning)})
             for code in codes]
    previous = ds.get("DeidentificationMethodCodeSequence")
    earlier_items = [item for item in previous or [] if isinstance(item, Dataset)]
    ds.DeidentificationMethodCodeSequence = Sequence(earlier_items + items)
    if policy.modifies_dates:
        ours = "MODIFIED"
    elif policy.keeps_dates:
        ours = "UNMODIFIED"
    else:
        ours = "REMOVED"
    before = str(ds.get("LongitudinalTemporalInformationModified", "") or "").strip().upper()
    if _TEMPORAL_RANK.get(before, -1) > _TEMPORAL_RANK[ours]:
        ours = before
    ds.LongitudinalTemporalInformationModified = ours


def _listed(value) -> list:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]


def _clean_file_meta(ds: Dataset) -> None:
    meta: FileMetaDataset = ds.file_meta
    for tag in list(meta.keys()):
        if int(tag) not in _META_KEPT:
            del meta[tag]
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
