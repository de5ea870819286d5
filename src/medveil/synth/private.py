"""Private blocks from TCIA's knowledge base, filled with safe values and with PHI.

Retain Safe Private keeps a private element only when the knowledge base
says it is safe (k), removes the ones it marks for deletion (d) and shifts
the ones that hold dates (o, oi).  To test that, a synthetic file needs
private blocks a de-identifier can recognise: real creators, at real element
offsets, in a block number that differs from file to file (as it does in
real data), with clinical numbers where the KB keeps and identifying text
where it deletes.  Only explicit-VR files get them: in implicit VR a private
element's VR is not recorded, so its value would come back as bytes.
"""

from __future__ import annotations

import datetime
import functools
from collections import defaultdict
from dataclasses import dataclass

from pydicom.dataset import Dataset

from medveil.evaluate.paths import private
from medveil.policy.private_kb import PrivateKB, PrivateTagEntry, load_private_kb
from medveil.synth import expect as E
from medveil.synth.expect import Expect
from medveil.synth.fake import Patient, Site

KEEP_VRS = frozenset({"DS", "IS", "US", "SS", "UL", "SL", "FL", "FD", "CS", "LO", "SH"})
PHI_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "DA"})
DATE_VRS = {"o": frozenset({"LO", "SH", "DT", "DA"}), "oi": frozenset({"SL", "UL"})}
_MAX = {"SH": 16, "LO": 64, "PN": 64, "CS": 16, "DS": 16, "IS": 12}


@dataclass(frozen=True)
class Block:
    """A creator's block with the entries the generator may fill."""

    group: int
    creator: str
    keep: tuple[PrivateTagEntry, ...]
    delete: tuple[PrivateTagEntry, ...]
    dates: tuple[PrivateTagEntry, ...]


def _followed(kb: PrivateKB, entry: PrivateTagEntry) -> bool:
    """True when ``entry`` carries the disposition a de-identifier following the KB applies."""
    chosen = kb.lookup(entry.group, entry.creator, entry.offset)
    return chosen is not None and chosen.disposition == entry.disposition and not entry.parents


@functools.cache
def blocks() -> tuple[Block, ...]:
    """Creators usable for injection, sorted: with safe entries and PHI entries, or date entries."""
    kb = load_private_kb()
    grouped: dict[tuple[int, str], dict[tuple[str, int], PrivateTagEntry]] = defaultdict(dict)
    for entry in kb.entries:
        if not entry.creator or entry.parents or not _followed(kb, entry):
            continue
        # one entry per offset; the KB lists some tags under several VRs
        key = (entry.disposition, entry.offset)
        wanted = _wanted_vr(entry)
        if wanted and key not in grouped[(entry.group, entry.creator)]:
            grouped[(entry.group, entry.creator)][key] = entry
    found = []
    for (group, creator), entries in sorted(grouped.items()):
        if len(creator) > 64 or not creator.isprintable() or "\\" in creator:
            continue
        keep = tuple(e for (d, _), e in sorted(entries.items()) if d == "k")
        delete = tuple(e for (d, _), e in sorted(entries.items()) if d == "d")
        dates = tuple(e for (d, _), e in sorted(entries.items()) if d in DATE_VRS)
        if (len(keep) >= 2 and delete) or dates:
            found.append(Block(group, creator, keep, delete, dates))
    return tuple(found)


def _wanted_vr(entry: PrivateTagEntry) -> bool:
    if entry.disposition == "k":
        return entry.vr in KEEP_VRS
    if entry.disposition == "d":
        return entry.vr in PHI_VRS
    return entry.vr in DATE_VRS.get(entry.disposition, ())


def inject_private(ds: Dataset, choice, patient: Patient, site: Site, when: datetime.datetime) -> list[Expect]:
    """Add one or two KB blocks (safe values and PHI) and sometimes a date block to ``ds``."""
    available = blocks()
    mixed = [b for b in available if b.keep and b.delete]
    dated = [b for b in available if b.dates]
    expects: list[Expect] = []
    used: set[tuple[int, str]] = set()
    for _ in range(choice.randint(1, 2)):
        block = mixed[choice.randrange(len(mixed))] if mixed else None
        if block is None or (block.group, block.creator) in used:
            continue
        used.add((block.group, block.creator))
        base = _reserve(ds, block, choice)
        if base is None:
            continue
        for entry in choice.sample(block.keep, min(len(block.keep), choice.randint(2, 4))):
            value = _safe_value(entry.vr, choice)
            ds.add_new((block.group << 16) | (base << 8) | entry.offset, entry.vr, value)
            expects.append(Expect((private(block.group, block.creator, entry.offset),), "tag_retained",
                                  E.SAFE_PRIVATE))
        for entry in choice.sample(block.delete, min(len(block.delete), choice.randint(1, 2))):
            value = _phi_value(entry.vr, choice, patient, site)
            ds.add_new((block.group << 16) | (base << 8) | entry.offset, entry.vr, value)
            category = E.DATE if entry.vr == "DA" else E.PRIVATE_PHI
            expects.append(Expect((private(block.group, block.creator, entry.offset),), "text_removed",
                                  category, action_text=str(value)))
    if dated and choice.random() < 0.6:
        block = dated[choice.randrange(len(dated))]
        if (block.group, block.creator) not in used:
            base = _reserve(ds, block, choice)
            if base is not None:
                entry = block.dates[choice.randrange(len(block.dates))]
                value = _date_value(entry, when)
                ds.add_new((block.group << 16) | (base << 8) | entry.offset, entry.vr, value)
                expects.append(Expect((private(block.group, block.creator, entry.offset),), "date_shifted",
                                      E.PRIVATE_DATE, value=str(value)))
    return expects


def _reserve(ds: Dataset, block: Block, choice) -> int | None:
    """Write the creator into a free block number of the group (0x10-0x4F) and return it."""
    in_group = [tag for tag in ds.keys() if tag.group == block.group]  # noqa: SIM118  (tags, not elements)
    taken = {tag.element for tag in in_group if tag.element <= 0xFF}
    if any(0x10 <= tag.element <= 0xFF and str(ds[tag].value).strip() == block.creator for tag in in_group):
        return None  # the file already has this creator: leave its block alone
    used = {tag.element >> 8 for tag in in_group}
    free = [n for n in range(0x10, 0x50) if n not in taken and n not in used]
    if not free:
        return None
    number = free[choice.randrange(min(len(free), 8))]
    ds.add_new((block.group << 16) | number, "LO", block.creator)
    return number


def _safe_value(vr: str, choice) -> object:
    if vr == "DS":
        return f"{choice.uniform(0.5, 500.0):.3f}"
    if vr == "IS":
        return str(choice.randrange(0, 5000))
    if vr in ("US", "UL"):
        return choice.randrange(0, 4096)
    if vr in ("SS", "SL"):
        return choice.randrange(-1024, 4096)
    if vr in ("FL", "FD"):
        return round(choice.uniform(0.1, 100.0), 3)
    if vr == "CS":
        return choice.choice(("AXIAL", "HELICAL", "PRIMARY", "STANDARD"))
    text = choice.choice(("BODY FILTER", "STANDARD", "HEAD FIRST", "SOFT TISSUE", "RECON 2"))
    return text[:_MAX.get(vr, 64)]


def _phi_value(vr: str, choice, patient: Patient, site: Site) -> str:
    if vr == "PN":
        return patient.pn
    if vr == "DA":
        return f"{patient.birth_date:%Y%m%d}"
    if vr == "SH":
        return choice.choice((patient.patient_id, patient.phone))
    if vr == "LO":
        return choice.choice((patient.name.spoken(), patient.patient_id, site.institution, patient.address))
    return f"Patient {patient.name.spoken()} MRN {patient.patient_id} tel {patient.phone}"


def _date_value(entry: PrivateTagEntry, when: datetime.datetime) -> object:
    if entry.disposition == "oi":
        return int(when.replace(tzinfo=datetime.UTC).timestamp())
    if entry.vr == "DA":
        return f"{when:%Y%m%d}"
    return f"{when:%Y%m%d%H%M%S}"
