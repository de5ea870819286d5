"""Known private tags: TCIA's Private Tag Knowledge Base and PS3.15 Table E.3.10-1.

Private attributes are vendors' own; the standard cannot say what each holds, so its Basic
Profile removes them all.  TCIA's curators have judged thousands of them one by one
(keep, delete, hash a UID, shift a date), and the standard lists a few hundred as safe.
``tools/build_private_kb.py`` merges both into ``data/private_tags.json``; this module loads
that file and answers "what does the KB say about this element?".

An element is named as DICOM names private data: its odd group, the Private Creator that
reserved its block, and the low byte of its element number (the block is wherever the
creator landed in this file, so the high byte means nothing).  Entries may also carry the
sequence path they were seen under, as text steps like ``(0008,1115)`` or
``(0029,"SIEMENS CSA HEADER",10)`` (lower-case hexadecimal, outermost first).

Where one tag has several entries, the data file orders them so the first is the one to
follow: the standard's keep (E.3.10-1 says it is safe, so it wins over a KB delete), then
the KB's most protective disposition (d, h, oi, o, k).  The KB sometimes keeps an element
under its real VR and deletes it when it arrives as UN; :meth:`PrivateKB.matches` gives all
the entries to a caller that wants to decide by VR.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

DATA_FILE = "private_tags.json"
KB_SOURCE = "tcia-kb-2024-02-01"
STANDARD_SOURCE = "ps3.15-e.3.10-1"
DISPOSITIONS = frozenset({"k", "d", "h", "o", "oi"})

_Key = tuple[int, str, int]


@dataclass(frozen=True, slots=True)
class PrivateTagEntry:
    """One private tag as the KB or the standard lists it."""

    group: int  # e.g. 0x0019
    creator: str  # private creator string, stripped, as in the KB
    offset: int  # 0x00-0xFF, last two hex digits of the element
    vr: str  # as listed ("" if unknown)
    name: str  # tag_name
    disposition: str  # "k" | "d" | "h" | "o" | "oi"
    parents: tuple[str, ...]  # the sequence path prefix steps as text, () for top level
    source: str  # "tcia-kb-2024-02-01" or "ps3.15-e.3.10-1"


@dataclass(frozen=True)
class SkippedRow:
    """A KB row the generator could not turn into an entry (CSV line number, header = 1)."""

    row: int
    reason: str


@dataclass(frozen=True)
class PrivateKB:
    """The merged knowledge base, in the data file's order."""

    entries: tuple[PrivateTagEntry, ...]
    kb_name: str = ""
    kb_date: str = ""  # "2024-02-01"
    standard_edition: str = ""  # edition of Table E.3.10-1, e.g. "2026d"
    skipped: tuple[SkippedRow, ...] = ()
    metadata: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        exact: dict[_Key, list[PrivateTagEntry]] = {}
        folded: dict[_Key, list[PrivateTagEntry]] = {}
        for entry in self.entries:
            exact.setdefault((entry.group, entry.creator, entry.offset), []).append(entry)
            folded.setdefault((entry.group, entry.creator.casefold(), entry.offset),
                              []).append(entry)
        object.__setattr__(self, "_exact", {k: tuple(v) for k, v in exact.items()})
        object.__setattr__(self, "_folded", {k: tuple(v) for k, v in folded.items()})

    def __reduce__(self):
        # A policy travels to every worker process; the packaged KB travels by name
        # (each process loads it once) instead of as 1 MB of pickled entries.
        if self is load_private_kb():
            return (load_private_kb, ())
        return (PrivateKB, (self.entries, self.kb_name, self.kb_date, self.standard_edition,
                            self.skipped, self.metadata))

    def matches(self, group: int, creator: str, offset: int) -> tuple[PrivateTagEntry, ...]:
        """Every entry for the tag, at any sequence depth, in the data file's order.

        The creator is compared after ``strip()`` (DICOM pads LO values with spaces), exactly
        first; only when nothing matches exactly is case ignored, since creators are
        case-sensitive in DICOM but some devices change their case between versions.
        """
        creator = creator.strip()
        offset &= 0xFF
        found = self._exact.get((group, creator, offset))  # type: ignore[attr-defined]
        if found is None:
            found = self._folded.get((group, creator.casefold(), offset))  # type: ignore[attr-defined]
        return found or ()

    def lookup(self, group: int, creator: str, offset: int) -> PrivateTagEntry | None:
        """The entry to follow for the tag: a top-level one if any, else the first found."""
        found = self.matches(group, creator, offset)
        for entry in found:
            if not entry.parents:
                return entry
        return found[0] if found else None

    def disposition(self, group: int, creator: str, element: int) -> str | None:
        """k, d, h, o or oi for the element (full 16-bit or low byte), None if unknown."""
        entry = self.lookup(group, creator, element & 0xFF)
        return entry.disposition if entry else None

    def creators(self) -> frozenset[str]:
        """The Private Creator names listed (the KB's creator-less rows add none)."""
        return frozenset(entry.creator for entry in self.entries if entry.creator)

    def by_disposition(self, disposition: str) -> tuple[PrivateTagEntry, ...]:
        """Every entry with *disposition*, in the data file's order."""
        return tuple(entry for entry in self.entries if entry.disposition == disposition)


def parse(text: str) -> PrivateKB:
    """Build a :class:`PrivateKB` from the text of a data file."""
    data = json.loads(text)
    meta = data["metadata"]
    fields = meta["fields"]
    entries = []
    for row in data["entries"]:
        values = dict(zip(fields, row, strict=True))
        entries.append(PrivateTagEntry(
            group=int(values["group"], 16), creator=values["creator"],
            offset=int(values["offset"], 16), vr=values["vr"], name=values["name"],
            disposition=values["disposition"], parents=tuple(values["parents"]),
            source=values["source"]))
    return PrivateKB(
        entries=tuple(entries), kb_name=meta["kb"]["name"], kb_date=meta["kb"]["date"],
        standard_edition=meta["standard"]["edition"],
        skipped=tuple(SkippedRow(s["row"], s["reason"]) for s in meta["skipped"]),
        metadata=meta)


@cache
def load_private_kb() -> PrivateKB:
    """The packaged knowledge base (parsed once per process)."""
    package = resources.files("medveil.policy")
    return parse(package.joinpath("data", DATA_FILE).read_text("utf-8"))
