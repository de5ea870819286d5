"""``medveil pull``: find studies on a source PACS and retrieve them through the gateway.

C-FIND (Study Root, STUDY level) selects studies by Study Instance UID,
Patient ID or a study date range; each study is then fetched with C-MOVE
whose destination is medveil's own Storage SCP, so the files come in
exactly as they do for ``medveil serve`` and take the same path: cleaned,
recorded, queued, forwarded.  The source must know medveil's AE title and
address (every PACS keeps such a list; for Orthanc it is
``DicomModalities``).

A C-MOVE's final response comes after all its sub-operations, and medveil
answers each sub-operation's C-STORE only after the file is in the outbox
or the quarantine, so when a study's move is over, all of it is in
medveil's custody.  Identifiers found by the query are never printed: the
caller gets counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from medveil.errors import MedveilError
from medveil.gateway.endpoints import DicomNode
from medveil.gateway.latency import requestor_handlers

_DATE = re.compile(r"^\d{8}$")
PENDING = {0xFF00, 0xFF01}


class PullError(MedveilError):
    """The source cannot be queried or a retrieval failed as a whole."""


@dataclass(frozen=True)
class Selection:
    """Which studies to pull; at least one criterion (a pull of a whole PACS is refused)."""

    study_uids: tuple[str, ...] = ()
    patient_id: str | None = None
    date_from: str | None = None
    date_to: str | None = None

    def __post_init__(self) -> None:
        if not (self.study_uids or self.patient_id or self.date_from or self.date_to):
            raise PullError("say which studies to pull: --study, --patient or --from-date/--to-date")
        for date in (self.date_from, self.date_to):
            if date is not None and not _DATE.match(date):
                raise PullError("study dates are written YYYYMMDD")

    def query(self) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyInstanceUID = "\\".join(self.study_uids) if self.study_uids else ""
        ds.PatientID = self.patient_id or ""
        if self.date_from or self.date_to:
            ds.StudyDate = f"{self.date_from or ''}-{self.date_to or ''}"
        else:
            ds.StudyDate = ""
        ds.NumberOfStudyRelatedInstances = ""  # asked for, so that progress can show a total
        return ds


@dataclass(frozen=True)
class FoundStudy:
    """A study the source has: its UID (kept in memory, never printed) and its size if the source said."""

    uid: str
    instances: int | None = None


@dataclass
class PullReport:
    studies_found: int = 0
    studies_moved: int = 0
    completed: int = 0
    failed: int = 0
    warning: int = 0
    problems: list[str] = field(default_factory=list)


def _associate(ae, source: DicomNode, contexts):
    tls = (source.tls.client_context(), source.host) if source.tls else None
    try:
        assoc = ae.associate(source.host, source.port, contexts=contexts, ae_title=source.ae_title,
                             tls_args=tls, evt_handlers=requestor_handlers())
    except (OSError, ValueError) as exc:
        raise PullError(f"cannot connect to the source ({type(exc).__name__})") from None
    if not assoc.is_established:
        raise PullError("the source refused the association (check its list of known AE titles)")
    return assoc


def find_studies(source: DicomNode, calling_ae: str, selection: Selection, *,
                 timeout: float = 120.0) -> list[FoundStudy]:
    """The studies the source has for *selection*, each once, in the order the source answered."""
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context(FIND)
    assoc = _associate(ae, source, None)
    found: dict[str, FoundStudy] = {}
    try:
        for status, identifier in assoc.send_c_find(selection.query(), FIND):
            code = int(getattr(status, "Status", -1))
            if code in PENDING and identifier is not None:
                uid = str(identifier.get("StudyInstanceUID", "") or "").strip()
                if uid and uid not in found:
                    found[uid] = FoundStudy(uid, _count(identifier))
            elif code != 0x0000:
                raise PullError(f"the source's C-FIND failed (status 0x{code & 0xFFFF:04X})"
                                if code >= 0 else "the source did not answer the C-FIND")
    finally:
        if assoc.is_established:
            assoc.release()
    return list(found.values())


def _count(identifier: Dataset) -> int | None:
    """Number of Study Related Instances as the source answered it (IS), or None if it did not."""
    try:
        value = identifier.get("NumberOfStudyRelatedInstances")
        return int(value) if value not in (None, "") and int(value) >= 0 else None
    except (TypeError, ValueError):
        return None


def move_studies(source: DicomNode, calling_ae: str, move_destination: str, studies: list[FoundStudy],
                 report: PullReport, *, timeout: float = 600.0) -> None:
    """C-MOVE each study to *move_destination* (medveil's own AE title), one association in all."""
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE

    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.network_timeout = 120.0
    ae.dimse_timeout = timeout
    ae.add_requested_context(MOVE)
    assoc = _associate(ae, source, None)
    try:
        for study in studies:
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            query.StudyInstanceUID = study.uid
            final = None
            for status, _ in assoc.send_c_move(query, move_destination, MOVE):
                if status is None or "Status" not in status:
                    final = None
                    break
                if int(status.Status) not in PENDING:
                    final = status
            if final is None:
                report.problems.append("a study's C-MOVE got no final answer (timeout or association lost)")
                if not assoc.is_established:
                    raise PullError("the association with the source was lost during C-MOVE")
                continue
            code = int(final.Status)
            report.completed += int(final.get("NumberOfCompletedSuboperations", 0) or 0)
            report.failed += int(final.get("NumberOfFailedSuboperations", 0) or 0)
            report.warning += int(final.get("NumberOfWarningSuboperations", 0) or 0)
            if code in (0x0000, 0xB000):
                report.studies_moved += 1
            else:
                report.problems.append(f"a study's C-MOVE ended with status 0x{code:04X}")
    finally:
        if assoc.is_established:
            assoc.release()
