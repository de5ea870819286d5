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

from pydicom.dataset import Dataset

from medveil.engine import hidden_dates
from medveil.engine.actions import DATE_SHIFTERS, ActionTable, empty, remap, shift, tag_text, values_of, vr_of
from medveil.engine.dummy import dummy_for
from medveil.engine.hidden_dates import SEARCHED_VRS
from medveil.engine.state import WalkState
from medveil.engine.uids import is_class_keyword
from medveil.engine.vrs import KNOWN_VRS, TEXT_VRS, dictionary_vr, is_known
from medveil.errors import QuarantineError

_UNLISTED_ACTED_ON = frozenset({"SQ", "UI", "PN", "DA", "DT", "UN"})


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
            raise QuarantineError(f"unknown value representation in {tag_text(tag)}")
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
            _ACTIONS.apply(ds, tag, decision, ctx, depth, current)
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
    _ACTIONS.apply(ds, tag, decision, ctx, depth)
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
        if elem.VR in DATE_SHIFTERS:
            shift(elem, ctx)
            return True
        if elem.VR in TEXT_VRS and ctx.policy.cleaners:
            # A date written as text ("20140321", "2014-03-21 10:15"): the text cleaner
            # shifts the dates it recognises and removes whatever else identifies.
            cleaner = ctx.text_cleaner()
            values = [cleaner.clean(str(v)) for v in values_of(elem.value)]
            if not all(result.categories for result in values):
                return False  # no date found where one was promised: do not guess
            elem.value = [result.text for result in values] if len(values) > 1 else values[0].text
            return True
        return False
    if disposition == "oi":
        delta = ctx.date_offset * _SECONDS_PER_DAY
        if elem.VR in _INTEGER_VRS:
            low, high = _INTEGER_VRS[elem.VR]
            shifted = [int(v) + delta for v in values_of(elem.value)]
            if not all(low <= v <= high for v in shifted):
                return False
            elem.value = shifted if len(shifted) > 1 else shifted[0]
            return True
        if elem.VR == "IS":
            elem.value = [str(int(v) + delta) for v in values_of(elem.value)]
            return True
        if elem.VR in ("UN", "OB") and isinstance(elem.value, bytes) and len(elem.value) == 4:
            # A 32-bit little-endian timestamp read without its VR (implicit VR files).
            value = int.from_bytes(elem.value, "little", signed=True) + delta
            if not -2**31 <= value < 2**31:
                return False
            elem.value = value.to_bytes(4, "little", signed=True)
            return True
    return False


def _unlisted(ds: Dataset, tag: int, ctx: WalkState, depth: int, current=None) -> None:
    if not is_known(tag):
        del ds[tag]
        ctx.counts["X"] += 1
        ctx.event("unknown-attribute-removed", tag_text(tag))
        return
    # Only the VRs acted on below are converted: an element left raw is written back
    # byte for byte, which is both faster and the surest way to keep it as it was.
    vr = vr_of(ds, tag, current)
    if vr != "PN" and dictionary_vr(tag) == "PN" and vr in TEXT_VRS:
        vr = "PN"  # a person name the file stored as LO, SH or LT is a name all the same
    if ctx.cleaning_within is not None and vr in _CLEANED_TEXT_VRS and tag not in _CODED:
        _clean_unlisted_text(ds, tag, ctx)
        return
    if ctx.dummy_within and vr in _CLEANED_TEXT_VRS and tag not in _CODED:
        elem = ds[tag]
        if not elem.is_empty:
            elem.value = dummy_for(elem.VR)
            ctx.counts["D"] += 1
        return
    if vr not in _UNLISTED_ACTED_ON:
        if vr in SEARCHED_VRS and not tag >> 16 & 1:
            hidden_dates.handle(ds, tag, vr, tag_text(tag), ctx)
        return
    elem = ds[tag]
    if vr != "PN":
        vr = elem.VR
    if vr == "SQ":
        for item in elem.value or []:
            walk(item, ctx, depth + 1)
    elif vr == "UI":
        if not ctx.policy.retains_uids and not is_class_keyword(elem.keyword):
            remap(elem, ctx)
    elif vr == "PN":
        # Every person name is someone's identity, whether or not the table lists it.
        if not elem.is_empty:
            empty(elem)
            ctx.counts["Z"] += 1
            ctx.event("unlisted-person-name-emptied", elem.keyword or tag_text(tag))
    elif vr in DATE_SHIFTERS:
        # Dates the table does not list are still dates of this patient.
        if ctx.policy.modifies_dates:
            shift(elem, ctx)
            ctx.counts["C"] += 1
        elif not ctx.policy.keeps_dates and not elem.is_empty:
            empty(elem)
            ctx.counts["Z"] += 1
            ctx.event("unlisted-date-emptied", elem.keyword or tag_text(tag))


_CLEANED_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
#: Coded vocabulary inside content trees: identifiers of concepts, not of people
#: ("C0205307" is a UMLS concept, not an MRN), kept exactly so the codes still resolve.
_CODED = frozenset({0x00080100, 0x00080102, 0x00080103, 0x00080119, 0x00080120, 0x00080105,
                    0x0008010F})  # Code Value ... Mapping Resource, Context Identifier
REMOVED_TEXT = "(removed)"


def _clean_unlisted_text(ds: Dataset, tag: int, ctx: WalkState) -> None:
    within = ctx.cleaning_within
    cleaner = ctx.policy.cleaners.get(within) if within is not None else None
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


_ACTIONS = ActionTable(walk)
