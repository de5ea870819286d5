"""One received file: through the per-file pipeline, into the ledger, and into the outbox.

This is the gateway's whole de-identification path, and it is the batch
runner's: :func:`medveil.pipeline.deidentify_bytes` with the same policy
and key, the same sequential Patient IDs, the same quarantine.  A file that
was already released and forwarded in identical form is not sent again
(resume); anything else goes through the pipeline again, which gives the same
bytes for the same input, so a re-sent study is idempotent at the
destination.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID

from medveil.engine.deidentify import IMPLEMENTATION_CLASS_UID
from medveil.gateway.ledger import Admitted, Ledger, instance_ref
from medveil.pipeline import deidentify_bytes
from medveil.policy import Policy
from medveil.pseudonym import Key
from medveil.quiet import silenced
from medveil.records import Status


def part10(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str, dataset: bytes) -> bytes:
    """A Part 10 file around a dataset received over the network, as it was encoded.

    The meta group holds only what PS3.10 requires and what the sender told
    the association, so the same instance received twice gives the same
    bytes (and the same input hash), whoever sent it.  The pipeline rewrites the
    meta group of the output in any case.
    """
    # A sender that left a UID out of its request still gets its file judged (and, lacking the
    # dataset's own UIDs too, quarantined with a reason) rather than refused for lack of resources,
    # which it would retry for ever.  pydicom's warnings about a malformed UID quote it: silenced.
    with silenced():
        meta = FileMetaDataset()
        if sop_class_uid:
            meta.MediaStorageSOPClassUID = UID(sop_class_uid)
        if sop_instance_uid:
            meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
        meta.TransferSyntaxUID = UID(transfer_syntax)
        meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
        buffer = DicomBytesIO()
        buffer.write(bytes(128) + b"DICM")
        write_file_meta_info(buffer, meta, enforce_standard=bool(sop_class_uid and sop_instance_uid))
    return buffer.getvalue() + dataset


class Intake:
    """De-identifies received files and hands them to the ledger; thread-safe."""

    def __init__(self, ledger: Ledger, policy: Policy, key: Key, *, resume: bool = True,
                 memory_budget: int | None = None, on_queued: Callable[[], None] = lambda: None) -> None:
        self.ledger = ledger
        self.policy = policy
        self.key = key
        self.resume = resume
        #: Per association, as per batch worker: a deflate bomb or a few bytes of JPEG declaring a huge
        #: image are refused before they are inflated or decoded (:mod:`medveil.runner.limits`).
        self.memory_budget = memory_budget
        self.on_queued = on_queued

    def receive(self, data: bytes, sop_instance_uid: str, label: str) -> Admitted:
        """Clean *data* (a Part 10 file) and queue it, or quarantine it; never raises for bad input.

        *label* is what the audit store keeps as the original location when
        the workspace records originals (the calling AE and the instance).
        """
        digest = hashlib.sha256(data).hexdigest()
        ref = instance_ref(self.key, sop_instance_uid or f"sha256:{digest}")  # no UID: one ref per content
        if self.resume and self.ledger.already_forwarded(ref, digest):
            return self.ledger.unchanged(ref, digest, label)
        patient_id = self.ledger.sequential_patient_id(data)
        cleaned, record = deidentify_bytes(data, self.policy, self.key, patient_id=patient_id,
                                           memory_budget=self.memory_budget)
        if record.status is not Status.WRITTEN:
            return self.ledger.quarantine(ref, data, record.reason or "unknown", record.input_sha256, label)
        assert isinstance(cleaned, bytes)  # a written record comes with the cleaned file
        admitted = self.ledger.release(ref, data, cleaned, record, label)
        if admitted.status is Status.WRITTEN:
            self.on_queued()
        return admitted
