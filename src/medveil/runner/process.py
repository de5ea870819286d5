"""Processing one file for the local runner: read it, de-identify it, write a temporary file.

A file either comes out complete and verified, or not at all: every failure
becomes a record with status "quarantined" and a reason that names no
value.  The cleaned bytes go to a temporary file beside the output tree; the
coordinating process renames it into place, so a crash never leaves a
half-written file under its final name.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from medveil.errors import QuarantineError, safe_reason
from medveil.policy import Policy
from medveil.pseudonym import Key
from medveil.records import FileRecord, Status
from medveil.runner.book import TMP_PREFIX
from medveil.pipeline import deidentify_bytes, output_relpath  # noqa: F401  (re-exported)
from medveil.runner.discover import InputTooLarge, read_regular
from medveil.runner.limits import file_limit


@dataclass
class Job:
    """What a worker needs to know about one input."""

    index: int
    #: The resolved path to read. Left out of the repr: paths carry names and MRNs, and Dask
    #: logs a failed task's arguments.
    path: str = field(repr=False)
    input_ref: str
    #: The sequential Patient ID, when the policy numbers patients.
    patient_id: str | None = None


def process(job: Job, policy: Policy, key: Key, tmp_dir: Path, memory_budget: int | None = None,
            tag: str = "") -> FileRecord:
    """De-identify one file into a temporary file in *tmp_dir* (named with *tag*, the run's)."""
    outcome = FileRecord(index=job.index, input_ref=job.input_ref)
    try:
        limit = file_limit(memory_budget) if memory_budget is not None else None
        try:
            data = read_regular(job.path, limit)
        except InputTooLarge as exc:
            raise QuarantineError(str(exc)) from None
        except OSError as exc:
            raise QuarantineError(f"unreadable: cannot be read ({type(exc).__name__})") from None
        out, record = deidentify_bytes(data, policy, key, patient_id=job.patient_id,
                                       memory_budget=memory_budget)
        del data
        outcome.input_sha256 = record.input_sha256
        if record.status is not Status.WRITTEN:
            outcome.reason = record.reason
            return outcome
        tmp_path = tmp_dir / f"{TMP_PREFIX}{tag}{job.index}-{os.getpid()}"
        try:
            tmp_path.write_bytes(out)
        except OSError as exc:
            tmp_path.unlink(missing_ok=True)
            outcome.reason = f"the output could not be written ({os.strerror(exc.errno or 0) or type(exc).__name__})"
            outcome.fatal = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            return outcome
        record.index, record.input_ref, record.tmp_path = job.index, job.input_ref, str(tmp_path)
        return record
    except Exception as exc:  # fail closed: every error ends in quarantine, never a crash
        return outcome.refused(safe_reason(exc))
