"""One handler per action code: what X, Z, D, K, C, U, U*, R and a pseudonym do to one element.

The walker (:mod:`medveil.engine.walker`) decides which attribute gets which
:class:`~medveil.policy.AttributeDecision`; the handlers here carry it out, one
class per code, each saying in :meth:`Action.describe` what it does (the legend
of ``medveil profiles``).  :meth:`ActionTable.apply` adds what holds across codes:
a C (clean) action that cannot vouch for its result falls back to the Basic
Profile's code, an identifier the policy pseudonymises gets its keyed pseudonym
whatever the code says (unless it is kept, replaced or removed), and an X on an
attribute that is Type 2C here (Responsible Person of an animal) empties it.

The walker builds one :class:`ActionTable` with its own walk, which K, D, U, U*
and C use to walk a sequence's items by the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from medveil.engine import hidden_dates
from medveil.engine.dummy import dummy_for
from medveil.engine.hidden_dates import SEARCHED_VRS
from medveil.engine.state import WalkState
from medveil.engine.uids import is_well_known
from medveil.engine.vrs import TEXT_VRS, dictionary_vr, keyword_of, stored
from medveil.errors import InvalidValueError
from medveil.policy import AttributeDecision, Option
from medveil.policy.iod import required_empty
from medveil.pseudonym import shift_da, shift_dt, shift_multi

#: Walks one dataset (a sequence item) at a depth: the walker's own entry point.
Descend = Callable[[Dataset, WalkState, int], None]

DATE_SHIFTERS = {"DA": shift_da, "DT": shift_dt}


# --- what several actions do -------------------------------------------------------------------

def empty(elem) -> None:
    """Zero-length value (action Z), of the type pydicom itself reads back."""
    elem.value = [] if elem.VR == "SQ" else "" if elem.VR in TEXT_VRS else None


def tag_text(tag: int) -> str:
    keyword = keyword_of(tag)
    return keyword or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def values_of(value: Any) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    return [value]


def vr_of(ds: Dataset, tag: int, current=None) -> str:
    """The element's VR without converting its value (implicit VR: from the dictionary).

    *current* is the element as the dataset holds it, when the caller has it already.
    """
    return (current if current is not None else stored(ds, tag)).VR or dictionary_vr(tag) or "UN"


def shift(elem, ctx: WalkState) -> None:
    """Move a DA or DT value by the patient's date offset; an unreadable date is emptied."""
    if elem.is_empty:
        return
    try:
        elem.value = shift_multi(elem.value, ctx.date_offset, DATE_SHIFTERS[elem.VR])
    except InvalidValueError:
        empty(elem)
        ctx.event("invalid-date-emptied", elem.keyword or tag_text(elem.tag))


def remap(elem, ctx: WalkState) -> None:
    """Replace each UID of the value by its keyed replacement (well-known UIDs stay)."""
    values = values_of(elem.value)
    if not values:
        return
    new = [str(v) if is_well_known(str(v)) else ctx.remap_uid(str(v)) for v in values]
    elem.value = new[0] if len(new) == 1 else new


_UID_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)+")


def remap_private_uid(elem, ctx: WalkState) -> bool:
    """A private 'h' (hash UID) element stored as text or as raw bytes: remap it like a UID.

    Vendors keep UIDs in LO, SH or untyped (UN) private elements; what does not
    look like a UID is left to the caller, which empties it.
    """
    if ctx.policy.retains_uids:
        return True
    value = elem.value
    raw = isinstance(value, (bytes, bytearray))
    text = bytes(value).decode("latin-1").rstrip("\x00 ") if raw else value
    values = [str(v).strip() for v in values_of(text.split("\\") if raw else text)]
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


# --- the handlers -------------------------------------------------------------------------------

class Action:
    """Carries out one action code on the element *tag* of *ds*.

    *current* is the element as the dataset holds it (raw or converted) when the
    walker has it; handlers that need only the VR read it from there without
    converting the value, so an element left alone is written back byte for byte.
    """

    code = ""

    def __init__(self, table: ActionTable) -> None:
        self._table = table

    @classmethod
    def describe(cls) -> str:
        """What the action does, in one line."""
        raise NotImplementedError

    def apply(self, ds: Dataset, tag: int, decision: AttributeDecision, ctx: WalkState, depth: int,
              current=None) -> None:
        raise NotImplementedError

    def _items(self, elem, ctx: WalkState, depth: int) -> None:
        descend = self._table.descend
        for item in elem.value or []:
            descend(item, ctx, depth + 1)


class Remove(Action):
    code = "X"

    @classmethod
    def describe(cls) -> str:
        return "remove the attribute (an overlay's whole group with its Overlay Data)"

    def apply(self, ds, tag, decision, ctx, depth, current=None) -> None:
        if tag & 0xFF00FFFF == 0x60003000:
            # Overlay Data gone: the rest of that overlay's group is meaningless.
            group = tag >> 16
            for other in [t for t in ds.keys() if t >> 16 == group]:
                del ds[other]
        elif tag in ds:
            del ds[tag]
        ctx.counts["X"] += 1


class Empty(Action):
    code = "Z"

    @classmethod
    def describe(cls) -> str:
        return "keep the attribute with an empty value"

    def apply(self, ds, tag, decision, ctx, depth, current=None) -> None:
        empty(ds[tag])
        ctx.counts["Z"] += 1


class Dummy(Action):
    code = "D"

    @classmethod
    def describe(cls) -> str:
        return "replace the value with a dummy of its VR (UIDs remapped, sequences walked)"

    def apply(self, ds, tag, decision, ctx, depth, current=None) -> None:
        elem = ds[tag]
        if elem.VR == "SQ":
            # A dummy sequence keeps its items' structure (codes, references, numbers,
            # each attribute by the table) but none of the free text the table does not
            # list: a report's Text Value or an annotation's text is dummied, not kept.
            outer = ctx.cleaning_within, ctx.dummy_within
            ctx.cleaning_within, ctx.dummy_within = None, True
            try:
                self._items(elem, ctx, depth)
            finally:
                ctx.cleaning_within, ctx.dummy_within = outer
        elif elem.VR == "UI":
            remap(elem, ctx)
        elif not elem.is_empty:
            elem.value = dummy_for(elem.VR)
        ctx.counts["D"] += 1


class Keep(Action):
    code = "K"

    @classmethod
    def describe(cls) -> str:
        return "keep the value (dates hidden in it still follow the date options; sequences walked)"

    def apply(self, ds, tag, decision, ctx, depth, current=None) -> None:
        vr = vr_of(ds, tag, current)
        if vr != "SQ":
            ctx.counts["K"] += 1
            if vr in SEARCHED_VRS and not tag >> 16 & 1:
                hidden_dates.handle(ds, tag, vr, tag_text(tag), ctx)
            return
        self._items(ds[tag], ctx, depth)
        ctx.counts["K"] += 1


class RemapReferences(Action):
    code = "U*"

    @classmethod
    def describe(cls) -> str:
        return "keep the reference sequence, replace the instance UIDs in it"

    def apply(self, ds, tag, decision, ctx, depth, current=None) -> None:
        elem = ds[tag]
        if elem.VR == "SQ":
            self._items(elem, ctx, depth)
        else:
            remap(elem, ctx)
        ctx.counts["U*"] += 1


class ReplaceUid(Action):
    code = "U"

    @classmethod
    def describe(cls) -> str:
        return "replace UIDs with keyed replacements (a private UID by its knowledge-base entry)"

    def apply(self, ds, tag, decision, ctx, depth, current=None) -> None:
        elem = ds[tag]
        if elem.VR == "UI":
            if not ctx.policy.retains_uids:
                remap(elem, ctx)
        elif decision.origin == "private-dictionary" and remap_private_uid(elem, ctx):
            pass
        elif elem.VR == "SQ":
            self._items(elem, ctx, depth)
        else:
            empty(elem)
        ctx.counts["U"] += 1


class RecipeValue(Action):
    code = "R"

    @classmethod
    def describe(cls) -> str:
        return "replace the value with the recipe's"

    def apply(self, ds, tag, decision, ctx, depth, current=None) -> None:
        ds[tag].value = decision.value
        ctx.counts["R"] += 1


class Pseudonymize(Action):
    code = "P"

    @classmethod
    def describe(cls) -> str:
        return "replace an identifier (Patient ID, Accession Number) with its keyed pseudonym"

    def apply(self, ds, tag, decision, ctx, depth, current=None) -> None:
        elem = ds[tag]
        kind = ctx.policy.pseudonymize[keyword_of(tag)]
        elem.value = [ctx.pseudonym(kind, str(v)) for v in values_of(elem.value)] or None
        if isinstance(elem.value, list) and len(elem.value) == 1:
            elem.value = elem.value[0]
        ctx.counts["P"] += 1


class Clean(Action):
    code = "C"

    @classmethod
    def describe(cls) -> str:
        return ("clean: shift dates (Modified Dates), cut PHI out of text, walk a content tree; "
                "where nothing can vouch for the result, the Basic Profile's action")

    def apply(self, ds, tag, decision, ctx, depth, current=None) -> None:
        if self.clean(ds, tag, decision, ctx, depth, current):
            ctx.counts["C"] += 1
            return
        fallback = decision.fallback or "X"
        ctx.event("clean-fallback", f"{tag_text(tag)}: {fallback}")
        if fallback == "C":  # a recipe's C/C: nothing left to fall back to
            raise InvalidValueError(f"unknown action C for {tag_text(tag)}")
        self._table.apply(ds, tag, replace(decision, action=fallback), ctx, depth, current)

    def clean(self, ds: Dataset, tag: int, decision: AttributeDecision, ctx: WalkState, depth: int,
              current=None) -> bool:
        """Apply a C action; False when nothing can vouch for a cleaned value."""
        vr = vr_of(ds, tag, current)  # decided before converting: a value left alone stays encoded
        if decision.source is Option.RETAIN_LONG_MODIFIED_DATES:
            if vr == "TM":  # whole-day shifts leave times of day as they were
                return True
            if vr not in DATE_SHIFTERS and vr not in ("SQ", "UN"):
                return False
            elem = ds[tag]
            if elem.VR == "SQ":
                self._items(elem, ctx, depth)
                return True
            if elem.VR in DATE_SHIFTERS:
                shift(elem, ctx)
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
            outer = ctx.cleaning_within, ctx.dummy_within
            ctx.cleaning_within, ctx.dummy_within = decision.source, False
            try:
                self._items(ds[tag], ctx, depth)
            finally:
                ctx.cleaning_within, ctx.dummy_within = outer
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


ACTIONS: dict[str, type[Action]] = {cls.code: cls for cls in (
    Remove, Empty, Dummy, Keep, Clean, ReplaceUid, RemapReferences, RecipeValue, Pseudonymize)}


def describe(code: str) -> str:
    """What the action *code* does, in one line."""
    return ACTIONS[code].describe()


class ActionTable:
    """The handlers by code, walking sequences with *descend* (the walker's own walk)."""

    def __init__(self, descend: Descend) -> None:
        self.descend = descend
        self.by_code: dict[str, Action] = {code: cls(self) for code, cls in ACTIONS.items()}

    def apply(self, ds: Dataset, tag: int, decision: AttributeDecision, ctx: WalkState, depth: int,
              current=None) -> None:
        """Carry out *decision* on element *tag* of *ds*, with the rules that hold across codes."""
        action = decision.action
        if action != "C" and action not in ("K", "R", "X") and keyword_of(tag) in ctx.policy.pseudonymize:
            action = "P"
        elif action == "X" and required_empty(tag, ds):
            action = "Z"  # Type 2C here (e.g. Responsible Person of an animal patient)
        handler = self.by_code.get(action)
        if handler is None:  # pragma: no cover - AttributeDecision() only carries known actions
            raise InvalidValueError(f"unknown action {action} for {tag_text(tag)}")
        handler.apply(ds, tag, decision, ctx, depth, current)
