"""``--dry-run``: what de-identification would do to one file, without writing anything.

The file goes through the per-file pipeline (:func:`medveil.pipeline.deidentify_bytes`)
exactly as a run would send it, burned-in gate, pixel cleaning and
``--verify`` included, so the preview is what the run would release (or the
reason it would not).  The changes shown are the record's header
differences (:mod:`medveil.review.capture`): every attribute, nested ones
included, with the value the output would hold.  Original values are never
shown: a dry run prints to a terminal, and terminals end up in screenshots
and logs.
"""

from __future__ import annotations

from pathlib import Path

from medveil.dicomio.discover import InputTooLarge, read_regular
from medveil.errors import MedveilError
from medveil.pipeline import deidentify_bytes
from medveil.policy import Policy
from medveil.pseudonym import Key
from medveil.records import FileRecord

#: The sequence number a dry run gives the patient when the policy numbers patients: a run would
#: number it in input order in the workspace's sequence table, which a dry run neither reads nor writes.
FIRST_PATIENT = 1


def dry_run(path: Path, policy: Policy, key: Key) -> FileRecord:
    """The record a run would make for *path* (its output not written anywhere)."""
    try:
        data = read_regular(path)
    except (InputTooLarge, OSError) as exc:
        raise MedveilError(f"the file for the dry run cannot be read ({type(exc).__name__})") from None
    patient_id = policy.patient_id_format.number(FIRST_PATIENT) if policy.sequential_patient_ids else None
    _, record = deidentify_bytes(data, policy, key, patient_id=patient_id)
    return record
