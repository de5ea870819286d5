"""What the generator promises about each value it plants: the answer key's raw material.

Injection and checking are separate steps: injection changes a dataset and
records, for each value it planted, which check a correct de-identification
must pass (remove the name, keep the clinical words, shift the date); the
check builder later reads the file as written and turns those records into
answer-key checks with the values exactly as stored.

The category names follow MIDI-B's ``answer_category_v2``: the first element
is the rule family the validator weights (HIPAA identifiers, DICOM's own
profile and IOD rules, TCIA's curation practice), the rest say which rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from medveil.evaluate.paths import Step

Path = tuple[Step, ...]

NAME = ("HIPAA", "name")
ID = ("HIPAA", "id")
DATE = ("HIPAA", "date")
HIDDEN_DATE = ("HIPAA", "date", "hidden")
ADDRESS = ("HIPAA", "address")
PHONE = ("HIPAA", "phone")
DESCRIPTOR_PHI = ("HIPAA", "descriptor")
STRUCTURED_PHI = ("HIPAA", "structured-content")
PRIVATE_PHI = ("HIPAA", "private")
PRIVATE_DATE = ("HIPAA", "date", "private")
UID_CHANGED = ("HIPAA", "uid")
BURNED_IN = ("HIPAA", "burned-in")
INSTITUTION = ("DICOM", "basic-profile", "institution")
UID_CONSISTENT = ("DICOM", "uid-integrity")
IOD = ("DICOM", "iod")
PIXELS = ("DICOM", "pixels")
KEEP_DESCRIPTOR = ("TCIA", "keep-descriptor")
KEEP_STRUCTURED = ("TCIA", "keep-structured-content")
PATIENT_CHARACTERISTICS = ("TCIA", "patient-characteristics")
DEVICE_IDENTITY = ("TCIA", "device-identity")
SAFE_PRIVATE = ("TCIA", "safe-private")
PRIVATE_DELETE = ("TCIA", "private-delete")


@dataclass(frozen=True)
class Expect:
    """One promised check on the attribute at ``path``.

    ``value`` None means "the value as written"; it is given where the check
    is about part of a value (the date inside "CHEST ROUTINE 20140321").
    ``action_text`` is what the check compares with (see
    :class:`medveil.evaluate.answer_key.Check`).
    """

    path: Path
    action: str
    category: tuple[str, ...]
    action_text: str | None = None
    value: str | None = None
