"""Repairing the attribute, not refusing the file: the smallest change that makes it safe.

When the residual check (or the ``--verify`` rescan) finds one of the file's own
identifiers in an attribute the policy kept, the whole file used to be
quarantined: a series could vanish from a release for one coded string that a
scanner filled with the patient ID.  Instead the attribute is repaired, by the
least destructive change that leaves the object valid:

* an original UID still in a UI value is replaced by its keyed pseudonym;
* in free text (LO, SH, ST, LT, UT, UC) the identifier is cut out and the rest kept;
* otherwise the attribute's Type in the object's IOD decides, as PS3.15 E.3.1
  does for the compound actions: Type 1 gets a dummy value, Type 2 (and a 2C
  whose condition holds) is emptied, Type 3 or unknown is removed;
* a private element is removed.

Some attributes cannot be repaired without breaking the object or what it means
(the character set, the SOP Class, a Type 1 coded string such as Modality):
a hit there is left for the caller, which quarantines the file.  Every repair
is recorded as a "repair" event naming the attribute, the action and why,
never the value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from medveil.engine.dummy import dummy_for
from medveil.engine.uids import is_well_known
from medveil.engine.vrs import TEXT_VRS
from medveil.policy.iod import load_attribute_types, required_empty

REPAIR = "repair"
#: Attributes whose value the object cannot do without or whose meaning a dummy would
#: falsify: a hit there cannot be repaired.
_STRUCTURAL = frozenset({
    0x00080005,  # Specific Character Set
    0x00080016,  # SOP Class UID
    0x00080018,  # SOP Instance UID
    0x00020010,  # Transfer Syntax UID
    0x00080060,  # Modality
    0x00280004,  # Photometric Interpretation
    0x7FE00010,  # Pixel Data
})
FREE_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
#: Dummies exist for these VRs, but a coded string or a UID made up by the de-identifier
#: would claim a meaning (a defined term, an object) it does not have.
_NO_DUMMY = frozenset({"CS", "UI", "SQ"})


@dataclass(frozen=True)
class Repaired:
    """One repair: the attribute's path, what was done, and why (fixed text)."""

    path: str
    action: str  # "removed", "emptied", "dummy" or "replaced"
    why: str

    def event(self) -> tuple[str, str]:
        return REPAIR, json.dumps({"attribute": self.path, "action": self.action, "why": self.why},
                                  sort_keys=True)


def _values(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    return [value]


def _cut(text: str, spans_of: Callable[[str], list]) -> str:
    from medveil.text.tidy import remove_spans

    spans = spans_of(text)
    return remove_spans(text, spans) if spans else text


def repair_element(holder: Dataset, tag: int, path: str, sop_class_uid: str, why: str, *,
                   uid: bool = False, remap_uid: Callable[[str], str] | None = None,
                   spans_of: Callable[[str], list] | None = None) -> Repaired | None:
    """Repair ``holder[tag]``; the repair made, or None when the attribute cannot be repaired.

    *uid*: the hit is an original UID (remapped with *remap_uid* when the VR is UI).
    *spans_of*: finds the offending spans in a free-text value, so that only they are cut.
    """
    if tag not in holder:
        return None
    if tag >> 16 & 1:  # private: nothing in the object depends on it
        del holder[tag]
        return Repaired(path, "removed", why)
    if tag in _STRUCTURAL:
        return None
    elem = holder[tag]
    vr = elem.VR
    if uid and vr == "UI" and remap_uid is not None:
        new = [str(v) if is_well_known(str(v)) else remap_uid(str(v)) for v in _values(elem.value)]
        elem.value = new[0] if len(new) == 1 else new
        return Repaired(path, "replaced", why)
    if not uid and vr in FREE_TEXT_VRS and spans_of is not None and isinstance(elem.value, (str, list, MultiValue)):
        before = [str(v) for v in _values(elem.value)]
        cleaned = [_cut(v, spans_of) for v in before]
        kept = [c for c in cleaned if c.strip()]
        # Nothing cut (the identifier was found in a reading of the bytes that the
        # decoded value does not show): the attribute goes by its Type below.
        if kept and cleaned != before:
            elem.value = kept[0] if len(kept) == 1 else kept
            return Repaired(path, "replaced", why)
    attr_type = load_attribute_types().type_of(tag, sop_class_uid)
    if attr_type == 1:
        if vr in _NO_DUMMY or vr not in TEXT_VRS | {"FL", "FD", "SL", "SS", "UL", "US"}:
            return None
        elem.value = dummy_for(vr)
        return Repaired(path, "dummy", why)
    if attr_type == 2 or required_empty(tag, holder):
        elem.value = [] if vr == "SQ" else "" if vr in TEXT_VRS else None
        return Repaired(path, "emptied", why)
    del holder[tag]
    return Repaired(path, "removed", why)


def resolve(ds: Dataset, path: str) -> tuple[Dataset, int] | None:
    """The (dataset, tag) a path such as ``Sequence[0].Keyword`` or ``(0009,1001)`` names."""
    from pydicom.datadict import tag_for_keyword

    holder = ds
    parts = path.split(".")
    for number, part in enumerate(parts):
        name, _, index = part.partition("[")
        if name.startswith("("):
            try:
                group, element = name.strip("()").split(",")
                tag = int(group, 16) << 16 | int(element, 16)
            except ValueError:
                return None
        else:
            known = tag_for_keyword(name)
            if known is None:
                return None
            tag = known
        if number == len(parts) - 1:
            return (holder, tag) if not index else None
        if tag not in holder:
            return None
        try:
            items = holder[tag].value
            holder = items[int(index.rstrip("]"))]
        except (ValueError, IndexError, TypeError):
            return None
    return None
