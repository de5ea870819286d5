"""Per-dataset state of one de-identification run.

Everything the walker learns or produces while cleaning one dataset lives
here: the patient's date offset, the UID pairs for the mapping file, counts
of actions and safe event records for the audit store.  Nothing here is
shared between files, which is what lets files be processed in any order,
on any number of processes or machines, with identical results.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from medveil.policy import Option, Policy
from medveil.pseudonym import Key, pseudonymize_id, pseudonymize_uid
from medveil.text import KnownIdentifiers, TextCleaner


@dataclass
class WalkState:
    """What the walk of one dataset knows and has done so far (the walker's ``ctx``)."""

    policy: Policy
    key: Key
    sop_class_uid: str
    date_offset: int
    new_patient_id: str
    uid_pairs: dict[str, str] = field(default_factory=dict)
    patient_pairs: dict[str, str] = field(default_factory=dict)
    #: Sequential Patient IDs given by the runner (original -> pseudonym), if any.
    assigned_patient_ids: dict[str, str] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    events: list[tuple[str, str]] = field(default_factory=list)
    #: The file's own identifying values, collected before the walk changes them;
    #: the text cleaner removes them wherever they are copied into free text.
    known: KnownIdentifiers | None = None
    #: The clean option whose sequence is being walked (content tree, graphics), if any.
    cleaning_within: Option | None = None
    #: A sequence whose action is D (dummy) is being walked: its unlisted free text is dummied.
    dummy_within: bool = False
    _cleaner: TextCleaner | None = field(default=None, repr=False)

    def text_cleaner(self) -> TextCleaner:
        """The span cleaner for this file, built on first use (most files never need it)."""
        if self._cleaner is None:
            offset = self.date_offset if self.policy.modifies_dates else None
            self._cleaner = TextCleaner(self.known or KnownIdentifiers(), date_offset=offset)
        return self._cleaner

    def remap_uid(self, uid: str) -> str:
        """Keyed replacement for *uid*, remembered for the mapping file."""
        original = uid.strip().rstrip("\x00")
        if not original:
            return original
        new = self.uid_pairs.get(original)
        if new is None:
            new = pseudonymize_uid(self.key, original)
            self.uid_pairs[original] = new
        return new

    def pseudonym(self, kind: str, value: str) -> str:
        """Keyed replacement for an identifier such as a Patient ID or accession number."""
        original = value.strip().rstrip("\x00")
        if not original:
            return original
        fmt = self.policy.patient_id_format if kind == "patient-id" else self.policy.other_id_format
        new = self.assigned_patient_ids.get(original) if kind == "patient-id" else None
        if new is None:
            new = pseudonymize_id(self.key, kind, original, fmt)
        if kind == "patient-id":
            self.patient_pairs[original] = new
        return new

    def event(self, category: str, detail: str) -> None:
        """Record a decision; *detail* names attributes, never values."""
        self.events.append((category, detail))
