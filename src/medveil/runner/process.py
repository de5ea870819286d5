"""Processing one file for the local runner: read it, de-identify it, write a temporary file.

A file either comes out complete and verified, or not at all: every failure
becomes an outcome with status "quarantined" and a reason that names no
value.  The cleaned bytes go to a temporary file beside the output tree; the
coordinating process renames it into place, so a crash never leaves a
half-written file under its final name.
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from medveil.errors import QuarantineError, safe_reason
from medveil.policy import Policy
from medveil.pseudonym import Key
from medveil.runner.book import TMP_PREFIX
from medveil.runner.core import deidentify_bytes, output_relpath  # noqa: F401  (re-exported)
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


@dataclass
class Outcome:
    index: int
    input_ref: str
    status: str  # "written" (tmp file ready to move) or "quarantined"
    reason: str | None = None
    relpath: str | None = None
    tmp_path: str | None = None
    input_sha256: str | None = None
    output_sha256: str | None = None
    #: Original identifiers (for the mapping files only): never in a repr.
    uid_pairs: dict[str, str] = field(default_factory=dict, repr=False)
    patient_pairs: dict[str, str] = field(default_factory=dict, repr=False)
    counts: Counter = field(default_factory=Counter)
    events: list[tuple[str, str]] = field(default_factory=list)
    #: Keyed fingerprints of the input's identifiers, for ``medveil verify`` later.
    fingerprints: list[str] = field(default_factory=list)
    #: The output's file system is full: no later file can be written either.
    fatal: bool = False
    #: Header differences and pictures of masked pixels, for the workspace (medveil.review.keep).
    review: object = field(default=None, repr=False)


def process(job: Job, policy: Policy, key: Key, tmp_dir: Path, memory_budget: int | None = None,
            tag: str = "") -> Outcome:
    """De-identify one file into a temporary file in *tmp_dir* (named with *tag*, the run's)."""
    outcome = Outcome(index=job.index, input_ref=job.input_ref, status="quarantined")
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
        if record.status != "written":
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
        outcome.status = "written"
        outcome.relpath = record.relpath
        outcome.tmp_path = str(tmp_path)
        outcome.output_sha256 = record.output_sha256
        outcome.uid_pairs = record.uid_pairs
        outcome.patient_pairs = record.patient_pairs
        outcome.counts = record.counts
        outcome.events = record.events
        outcome.fingerprints = record.fingerprints
        outcome.review = record.review
    except Exception as exc:  # fail closed: every error ends in quarantine, never a crash
        outcome.status = "quarantined"
        outcome.reason = safe_reason(exc)
    return outcome

