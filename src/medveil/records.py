"""What became of one input: the one record every path hands on, and the statuses it can have.

The per-file pipeline (:mod:`medveil.pipeline`) fills a :class:`FileRecord`;
an executor (a worker process, a thread, a Dask task) adds where the output
went; the run (:mod:`medveil.runner.base`) and the gateway decide what is
released and write it to the audit store.  One type all the way, so a field
added for the workspace reaches it from every runner.

The statuses are the audit store's words: :class:`Status` is a ``str``
enum whose values are what the store's ``files.status`` column holds, so
workspaces written before it existed resume unchanged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """The outcome of one input; the value is the text the audit store keeps."""

    #: Released: its output was written (or rewritten) in this run.
    WRITTEN = "written"
    #: Released before (or by an earlier input of this run) with these exact bytes; nothing was written.
    UNCHANGED = "unchanged"
    #: Not released: a reason says why, and a private copy waits in the workspace's quarantine.
    QUARANTINED = "quarantined"
    #: Not a DICOM instance to release (not DICOM, a DICOMDIR, a device, a link leading out of INPUT).
    SKIPPED = "skipped"

    @property
    def released(self) -> bool:
        """True for the statuses whose output is in the release."""
        return self in (Status.WRITTEN, Status.UNCHANGED)


@dataclass
class FileRecord:
    """What the audit store, the mapping files and the review page need to know about one input.

    It holds pseudonyms, hashes, counts and the original identifiers' mapping
    pairs (which only ever go to the mapping files), never other values: the
    pairs, fingerprints and review pictures are left out of the repr, since
    runners log records (Dask logs a failed task's results).
    """

    status: Status = Status.QUARANTINED
    reason: str | None = None
    #: The job's position in the run's input order, and the audit store's opaque reference to the input.
    index: int | None = None
    input_ref: str | None = None
    #: ``PatientID/StudyUID/SeriesUID/SOPUID.dcm`` (pseudonyms) within OUTPUT.
    relpath: str | None = None
    #: Where an executor left the output for the run to move into place (None: written in place).
    tmp_path: str | None = None
    input_sha256: str | None = None
    output_sha256: str | None = None
    #: Original identifiers (for the mapping files only): never in a repr.
    uid_pairs: dict[str, str] = field(default_factory=dict, repr=False)
    patient_pairs: dict[str, str] = field(default_factory=dict, repr=False)
    counts: Counter = field(default_factory=Counter)
    events: list[tuple[str, str]] = field(default_factory=list)
    #: Keyed fingerprints of the input's identifiers (never the identifiers), for ``medveil verify``.
    fingerprints: list[str] = field(default_factory=list, repr=False)
    #: Header differences and before/after pictures of masked pixels, for the workspace only
    #: (a :class:`medveil.review.capture.ReviewMaterial`).
    review: Any = field(default=None, repr=False)
    #: The output's file system is full: no later file can be written either, the run stops.
    fatal: bool = False

    def refused(self, reason: str) -> FileRecord:
        """Mark the input as not released, for *reason* (text that names no value); returns self."""
        self.status = Status.QUARANTINED
        self.reason = reason
        return self
