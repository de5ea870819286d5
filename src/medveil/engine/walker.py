"""Walking a dataset and applying each attribute's decision, at any depth.

The walker visits every data element of a dataset and of every sequence
item inside it.  Standard attributes get the policy's decision (recipe,
option column or Basic Profile); attributes the table does not list are kept,
except that dates follow the date options, instance UIDs are remapped and
attributes unknown to the data dictionary are removed (an unknown attribute
may hold anything).  Private attributes are removed unless the policy keeps
them, and a private creator survives only if something in its block does.
"""

from __future__ import annotations

import re
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from medveil.engine import hidden_dates
from medveil.engine.dummy import dummy_for
from medveil.engine.hidden_dates import SEARCHED_VRS
from medveil.engine.state import WalkState
from medveil.engine.uids import is_class_keyword, is_well_known
from medveil.engine.vrs import KNOWN_VRS, TEXT_VRS, dictionary_vr, is_known, keyword_of, stored
from medveil.errors import InvalidValueError, QuarantineError
from medveil.policy import AttributeDecision, Option
from medveil.policy.iod import required_empty
from medveil.pseudonym import shift_da, shift_dt, shift_multi

_DATE_SHIFTERS = {"DA": shift_da, "DT": shift_dt}
_UNLISTED_ACTED_ON = frozenset({"SQ", "UI", "PN", "DA", "DT", "UN"})


def _empty(elem) -> None:
    """Zero-length value (action Z), of the type pydicom itself reads back."""
    elem.value = [] if elem.VR == "SQ" else "" if elem.VR in TEXT_VRS else None


def _tag_text(tag: int) -> str:
    keyword = keyword_of(tag)
    return keyword or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _values(value: Any) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    return [value]


def walk(ds: Dataset, ctx: WalkState, depth: int = 0) -> None:
    """De-identify *ds* in place (the file meta group is handled elsewhere)."""
    creators: dict[tuple[int, int], str] = {}
    creator_tags: list[int] = []
    kept_blocks: set[tuple[int, int]] = set()
    elements = ds._dict
    for key in sorted(ds.keys()):
        # The dataset is looked up by its own key object (found by identity) and everything
        # else by the plain int: an int lookup into pydicom's BaseTag-keyed dict costs a
        # Python-level BaseTag.__eq__ call, on every element of every item.
        tag = int(key)
        group, element = tag >> 16, tag & 0xFFFF
        if 0x6000 <= group <= 0x60FF and key not in elements:  # removed with its overlay group
            continue
        if group == 0x0002:
            continue
        if element == 0x0000:  # group lengths are retired and recomputed by readers
            del ds[key]
            continue
        current = elements[key]
        raw_vr = current.VR
        if raw_vr is not None and raw_vr not in KNOWN_VRS:
            # Neither readable nor safely writable; what it holds cannot be judged.
            raise QuarantineError(f"unknown value representation in {_tag_text(tag)}")
        if group & 1:
            if 0x0010 <= element <= 0x00FF:
                creator_tags.append(tag)
                value = ds[tag].value
                creators[(group, element)] = value if isinstance(value, str) else ""
            else:
                _private(ds, tag, creators, kept_blocks, ctx, depth)
            continue
        decision = ctx.policy.decide(tag, ctx.sop_class_uid)
        if decision is None:
            _unlisted(ds, tag, ctx, depth, current)
        else:
            _apply(ds, tag, decision, ctx, depth, current)
    for tag in creator_tags:
        if ((tag >> 16), tag & 0xFF) not in kept_blocks:
            del ds[tag]
            ctx.counts["X"] += 1


def _private(ds: Dataset, tag: int, creators: dict, kept_blocks: set, ctx: WalkState, depth: int) -> None:
    group, element = tag >> 16, tag & 0xFFFF
    if element < 0x1000:  # (gggg,0001-000F) and (gggg,0100-0FFF) are not valid private data elements
        del ds[tag]
        ctx.counts["X"] += 1
        return
    block = element >> 8
    creator = creators.get((group, block)) or None
    decision = ctx.policy.decide_private(group, creator, element & 0xFF)
    if decision.action == "X":
        del ds[tag]
        ctx.counts["X"] += 1
        return
    if decision.action == "C" and decision.origin == "private-dictionary":
        # 'o' (a date) and 'oi' (an integer timestamp) entries of the private
        # dictionary move with the patient's other dates, or go.
        if ctx.policy.modifies_dates and _shift_private(ds[tag], decision.value, ctx):
            ctx.counts["C"] += 1
            kept_blocks.add((group, block))
        else:
            del ds[tag]
            ctx.counts["X"] += 1
        return
    _apply(ds, tag, decision, ctx, depth)
    if tag in ds:
        kept_blocks.add((group, block))


_SECONDS_PER_DAY = 86400
_INTEGER_VRS = {"SL": (-2**31, 2**31 - 1), "UL": (0, 2**32 - 1), "SS": (-2**15, 2**15 - 1),
                "US": (0, 2**16 - 1), "SV": (-2**63, 2**63 - 1), "UV": (0, 2**64 - 1)}


def _shift_private(elem, disposition: str | None, ctx: WalkState) -> bool:
    """Shift a private date ('o') or Unix timestamp ('oi'); False when it cannot be done safely."""
    if elem.is_empty:
        return True
    if disposition == "o":
        if elem.VR in _DATE_SHIFTERS:
            _shift(elem, ctx)
            return True
        if elem.VR in TEXT_VRS and ctx.policy.cleaners:
            # A date written as text ("20140321", "2014-03-21 10:15"): the text cleaner
            # shifts the dates it recognises and removes whatever else identifies.
            cleaner = ctx.text_cleaner()
            values = [cleaner.clean(str(v)) for v in _values(elem.value)]
            if not all(result.categories for result in values):
                return False  # no date found where one was promised: do not guess
            elem.value = [result.text for result in values] if len(values) > 1 else values[0].text
            return True
        return False
    if disposition == "oi":
        delta = ctx.date_offset * _SECONDS_PER_DAY
        if elem.VR in _INTEGER_VRS:
            low, high = _INTEGER_VRS[elem.VR]
            shifted = [int(v) + delta for v in _values(elem.value)]
            if not all(low <= v <= high for v in shifted):
                return False
            elem.value = shifted if len(shifted) > 1 else shifted[0]
            return True
        if elem.VR == "IS":
            elem.value = [str(int(v) + delta) for v in _values(elem.value)]
            return True
        if elem.VR in ("UN", "OB") and isinstance(elem.value, bytes) and len(elem.value) == 4:
            # A 32-bit little-endian timestamp read without its VR (implicit VR files).
            value = int.from_bytes(elem.value, "little", signed=True) + delta
            if not -2**31 <= value < 2**31:
                return False
            elem.value = value.to_bytes(4, "little", signed=True)
            return True
    return False


def _vr(ds: Dataset, tag: int, current=None) -> str:
    """The element's VR without converting its value (implicit VR: from the dictionary).

    *current* is the element as the dataset holds it, when the caller has it already.
    """
    return (current if current is not None else stored(ds, tag)).VR or dictionary_vr(tag) or "UN"


def _unlisted(ds: Dataset, tag: int, ctx: WalkState, depth: int, current=None) -> None:
    if not is_known(tag):
        del ds[tag]
        ctx.counts["X"] += 1
        ctx.event("unknown-attribute-removed", _tag_text(tag))
        return
    # Only the VRs acted on below are converted: an element left raw is written back
    # byte for byte, which is both faster and the surest way to keep it as it was.
    vr = _vr(ds, tag, current)
    if vr != "PN" and dictionary_vr(tag) == "PN" and vr in TEXT_VRS:
        vr = "PN"  # a person name the file stored as LO, SH or LT is a name all the same
    if ctx.cleaning_within is not None and vr in _CLEANED_TEXT_VRS and tag not in _CODED:
        _clean_unlisted_text(ds, tag, ctx)
        return
    if vr not in _UNLISTED_ACTED_ON:
        if vr in SEARCHED_VRS and not tag >> 16 & 1:
            hidden_dates.handle(ds, tag, vr, _tag_text(tag), ctx)
        return
    elem = ds[tag]
    if vr != "PN":
        vr = elem.VR
    if vr == "SQ":
        for item in elem.value or []:
            walk(item, ctx, depth + 1)
    elif vr == "UI":
        if not ctx.policy.retains_uids and not is_class_keyword(elem.keyword):
            _remap(elem, ctx)
    elif vr == "PN":
        # Every person name is someone's identity, whether or not the table lists it.
        if not elem.is_empty:
            _empty(elem)
            ctx.counts["Z"] += 1
            ctx.event("unlisted-person-name-emptied", elem.keyword or _tag_text(tag))
    elif vr in _DATE_SHIFTERS:
        # Dates the table does not list are still dates of this patient.
        if ctx.policy.modifies_dates:
            _shift(elem, ctx)
            ctx.counts["C"] += 1
        elif not ctx.policy.keeps_dates and not elem.is_empty:
            _empty(elem)
            ctx.counts["Z"] += 1
            ctx.event("unlisted-date-emptied", elem.keyword or _tag_text(tag))


_CLEANED_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
#: Coded vocabulary inside content trees: identifiers of concepts, not of people
#: ("C0205307" is a UMLS concept, not an MRN), kept exactly so the codes still resolve.
_CODED = frozenset({0x00080100, 0x00080102, 0x00080103, 0x00080119, 0x00080120, 0x00080105,
                    0x0008010F})  # Code Value ... Mapping Resource, WalkState Identifier
REMOVED_TEXT = "(removed)"


def _clean_unlisted_text(ds: Dataset, tag: int, ctx: WalkState) -> None:
    cleaner = ctx.policy.cleaners.get(ctx.cleaning_within)
    elem = ds[tag]
    cleaned = cleaner(elem.keyword, elem.VR, elem.value, ctx) if cleaner is not None else None
    if cleaned is None:
        del ds[tag]
        ctx.counts["X"] += 1
        return
    if cleaned == "" and not elem.is_empty:
        # Text Value and its kin are Type 1 inside their content items: an item whose
        # whole text was PHI keeps a neutral word rather than becoming invalid.
        cleaned = REMOVED_TEXT
    elem.value = cleaned
    ctx.counts["C"] += 1


def _apply(ds: Dataset, tag: int, decision: AttributeDecision, ctx: WalkState, depth: int, current=None) -> None:
    action = decision.action
    if action == "C":
        if _clean(ds, tag, decision, ctx, depth, current):
            ctx.counts["C"] += 1
            return
        action = decision.fallback or "X"
        ctx.event("clean-fallback", f"{_tag_text(tag)}: {action}")
    keyword = keyword_of(tag)
    if action not in ("K", "R", "X") and keyword in ctx.policy.pseudonymize:
        elem = ds[tag]
        kind = ctx.policy.pseudonymize[keyword]
        elem.value = [ctx.pseudonym(kind, str(v)) for v in _values(elem.value)] or None
        if isinstance(elem.value, list) and len(elem.value) == 1:
            elem.value = elem.value[0]
        ctx.counts["P"] += 1
        return
    if action == "X" and required_empty(tag, ds):
        action = "Z"  # Type 2C here (e.g. Responsible Person of an animal patient)
    if action == "X":
        if tag & 0xFF00FFFF == 0x60003000:
            # Overlay Data gone: the rest of that overlay's group is meaningless.
            group = tag >> 16
            for other in [t for t in ds.keys() if t >> 16 == group]:
                del ds[other]
        elif tag in ds:
            del ds[tag]
        ctx.counts["X"] += 1
        return
    if action == "K" and (vr := _vr(ds, tag, current)) != "SQ":
        ctx.counts["K"] += 1
        if vr in SEARCHED_VRS and not tag >> 16 & 1:
            hidden_dates.handle(ds, tag, vr, _tag_text(tag), ctx)
        return
    elem = ds[tag]
    if action == "K" or action == "U*":
        if elem.VR == "SQ":
            for item in elem.value or []:
                walk(item, ctx, depth + 1)
        elif action == "U*":
            _remap(elem, ctx)
        ctx.counts[action] += 1
    elif action == "Z":
        _empty(elem)
        ctx.counts["Z"] += 1
    elif action == "D":
        if elem.VR == "SQ":
            for item in elem.value or []:
                walk(item, ctx, depth + 1)
        elif elem.VR == "UI":
            _remap(elem, ctx)
        elif not elem.is_empty:
            elem.value = dummy_for(elem.VR)
        ctx.counts["D"] += 1
    elif action == "U":
        if elem.VR == "UI":
            if not ctx.policy.retains_uids:
                _remap(elem, ctx)
        elif decision.origin == "private-dictionary" and _remap_private_uid(elem, ctx):
            pass
        elif elem.VR == "SQ":
            for item in elem.value or []:
                walk(item, ctx, depth + 1)
        else:
            _empty(elem)
        ctx.counts["U"] += 1
    elif action == "R":
        elem.value = decision.value
        ctx.counts["R"] += 1
    else:  # pragma: no cover - AttributeDecision() only carries known actions
        raise InvalidValueError(f"unknown action {action} for {_tag_text(tag)}")


def _clean(ds: Dataset, tag: int, decision: AttributeDecision, ctx: WalkState, depth: int, current=None) -> bool:
    """Apply a C action; False when nothing can vouch for a cleaned value."""
    vr = _vr(ds, tag, current)  # decided before converting: a value left alone stays encoded
    if decision.source is Option.RETAIN_LONG_MODIFIED_DATES:
        if vr == "TM":  # whole-day shifts leave times of day as they were
            return True
        if vr not in _DATE_SHIFTERS and vr not in ("SQ", "UN"):
            return False
        elem = ds[tag]
        if elem.VR == "SQ":
            for item in elem.value or []:
                walk(item, ctx, depth + 1)
            return True
        if elem.VR in _DATE_SHIFTERS:
            _shift(elem, ctx)
            return True
        return elem.VR == "TM"
    cleaner = ctx.policy.cleaners.get(decision.source or Option.CLEAN_DESCRIPTORS)
    if cleaner is None:
        return False
    if vr == "SQ":
        # Cleaning a sequence (a content tree, graphic annotations) means cleaning
        # each item by the table (names replaced, dates shifted, UIDs remapped) and
        # cleaning the free text the table does not list (Text Value, Code Meaning,
        # Unformatted Text Value): inside such a tree, text is content.
        outer = ctx.cleaning_within
        ctx.cleaning_within = decision.source
        try:
            for item in ds[tag].value or []:
                walk(item, ctx, depth + 1)
        finally:
            ctx.cleaning_within = outer
        return True
    elem = ds[tag]
    cleaned = cleaner(elem.keyword, elem.VR, elem.value, ctx)
    if cleaned is None:
        return False
    if cleaned in ("", []) and not elem.is_empty:
        # Nothing but PHI: the Basic Profile's action for this attribute says what an
        # emptied value must become (D: a dummy for Type 1, Z: empty, X: removed).
        return False
    elem.value = cleaned
    return True


def _shift(elem, ctx: WalkState) -> None:
    if elem.is_empty:
        return
    try:
        elem.value = shift_multi(elem.value, ctx.date_offset, _DATE_SHIFTERS[elem.VR])
    except InvalidValueError:
        _empty(elem)
        ctx.event("invalid-date-emptied", elem.keyword or _tag_text(elem.tag))


_UID_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)+")


def _remap_private_uid(elem, ctx: WalkState) -> bool:
    """A private 'h' (hash UID) element stored as text or as raw bytes: remap it like a UID.

    Vendors keep UIDs in LO, SH or untyped (UN) private elements; what does not
    look like a UID is left to the caller, which empties it.
    """
    if ctx.policy.retains_uids:
        return True
    value = elem.value
    raw = isinstance(value, (bytes, bytearray))
    text = bytes(value).decode("latin-1").rstrip("\x00 ") if raw else value
    values = [str(v).strip() for v in _values(text.split("\\") if raw else text)]
    if not values or not all(_UID_TEXT.fullmatch(v) for v in values):
        return False
    new = "\\".join(v if is_well_known(v) else ctx.remap_uid(v) for v in values)
    if raw:
        encoded = new.encode("ascii")
        elem.value = encoded + (b"\x00" if len(encoded) % 2 else b"")
    else:
        parts = new.split("\\")
        elem.value = parts[0] if len(parts) == 1 else parts
    return True


def _remap(elem, ctx: WalkState) -> None:
    values = _values(elem.value)
    if not values:
        return
    new = [str(v) if is_well_known(str(v)) else ctx.remap_uid(str(v)) for v in values]
    elem.value = new[0] if len(new) == 1 else new
