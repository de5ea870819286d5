"""Dates the table does not see: a plausible date in an attribute that is not a DA or DT.

Scanners and exports put dates where no date belongs: Series Number set to the
study date (``20010925``), Software Versions ``"VE11C [20010925]"``, an ID that
starts with the acquisition date.  The table keeps those attributes as they are,
which releases the true date and with it the patient's offset.  So every
attribute the walk keeps (public, in a VR that can hold digits) is searched for
a date in any common written form, not only the file's own dates:

* under Retain Longitudinal Temporal Information with Modified Dates the date
  is shifted with the patient's offset, at the precision it was written in;
* under Full Dates it stays;
* otherwise it is cut out of text, and a value that was nothing but the date is
  removed, emptied or given a dummy by the attribute's IOD Type.

A date must be real (month 1-12, a day that exists in it, years 1900-2099) and not
glued to other digits, so counts, measurements and UID components are left alone.
Coded values (Code Value and its kin) are never touched: a code is not a date.
"""

from __future__ import annotations

import re

from medveil.engine.repair import repair_element
from medveil.engine.vrs import keyword_of, stored
from medveil.pseudonym import shift_da

#: VRs whose values can hold a date written as digits or text (DA/DT are the walker's own).
NUMBER_VRS = frozenset({"IS", "DS"})
CODE_VRS = frozenset({"CS", "UN", "AE"})
TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
SEARCHED_VRS = NUMBER_VRS | CODE_VRS | TEXT_VRS
_COMPACT = rb"(?<![0-9.])(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_COMPACT_BYTES = re.compile(_COMPACT)
_YEAR_BYTES = re.compile(rb"(?<![0-9])(?:19|20)[0-9]{2}(?![0-9])|(?<![0-9])'[0-9]{2}(?![0-9])")
_WHOLE_DATE = re.compile(r"\s*((?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01]))(?:\.0*)?\s*")
#: Coded vocabulary and records of what was done: never dates.
_NEVER = frozenset({0x00080100, 0x00080102, 0x00080103, 0x00080119, 0x00080120, 0x00080105,
                    0x0008010F, 0x00120063, 0x00120062, 0x00120064, 0x00280301, 0x00080005,
                    0x00020010, 0x00080060, 0x00281040, 0x00280004})
WHY = "held a date"


def _as_text(raw) -> str | None:
    value = raw.value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def may_hold_date(raw, vr: str) -> bool:
    """Cheap test on the value as stored: digits of a year (or a compact date) somewhere."""
    value = raw.value if raw is not None else None
    if isinstance(value, bytes):
        data = value
    else:
        text = _as_text(raw) if raw is not None else None
        if not text:
            return False
        data = text.encode("latin-1", "replace")
    if _COMPACT_BYTES.search(data):
        return True
    return vr in TEXT_VRS and bool(_YEAR_BYTES.search(data))


def handle(ds, tag: int, vr: str, path: str, ctx) -> None:
    """Shift or remove any date in the kept element ``ds[tag]`` (see the module docstring)."""
    if tag in _NEVER or tag >> 16 & 1 or vr not in SEARCHED_VRS:
        return
    policy = ctx.policy
    if policy.keeps_dates:
        return
    raw = stored(ds, tag)
    if raw is None or not may_hold_date(raw, vr):
        return
    if vr == "UN":  # untyped bytes cannot be rewritten safely: a date there removes the value
        if _found(_as_text(raw) or "", vr):
            _repair(ds, tag, path, ctx)
        return
    elem = ds[tag]
    values = _listed(elem.value)
    if not values:
        return
    changed = False
    new_values: list[str] = []
    for value in values:
        text = str(value)
        new = _rewrite(text, vr, ctx)
        changed |= new != text
        new_values.append(new)
    if not changed:
        return
    kept = [v for v in new_values if v.strip()]
    if not kept or (len(kept) < len(new_values) and vr not in TEXT_VRS):
        _repair(ds, tag, path, ctx)  # the value was nothing but the date
        return
    elem.value = kept[0] if len(kept) == 1 else kept
    ctx.counts["C"] += 1
    ctx.event("hidden-date-shifted" if policy.modifies_dates else "hidden-date-removed",
              keyword_of(tag) or path)


def _found(text: str, vr: str) -> bool:
    from medveil.text.dates import find_dates

    if vr in TEXT_VRS:
        return bool(find_dates(text))
    return bool(re.search(_COMPACT.decode(), text))


def _rewrite(text: str, vr: str, ctx) -> str:
    """*text* with each date shifted (Modified Dates) or cut out ("" when nothing else is left)."""
    offset = ctx.date_offset if ctx.policy.modifies_dates else None
    if vr in NUMBER_VRS or vr == "CS":
        whole = _WHOLE_DATE.fullmatch(text)
        if whole is None:
            return text
        if offset is None:
            return ""
        try:
            return shift_da(whole.group(1), offset)
        except Exception:  # noqa: BLE001  (a date that cannot be shifted is removed)
            return ""
    from medveil.text.dates import find_dates, shift_date_text
    from medveil.text.spans import Span, merge
    from medveil.text.tidy import remove_spans

    spans = merge(find_dates(text))
    if not spans:
        return text
    if offset is not None:
        shifted = []
        for span in spans:
            new = shift_date_text(text[span.start:span.end], offset)
            shifted.append(Span(span.start, span.end, "date", new) if new is not None else span)
        spans = shifted
    return remove_spans(text, spans)


def _repair(ds, tag: int, path: str, ctx) -> None:
    repaired = repair_element(ds, tag, path, ctx.sop_class_uid, WHY)
    if repaired is None:  # e.g. a Type 1 coded string: no valid object without the value
        from medveil.errors import QuarantineError

        raise QuarantineError(f"a date in {keyword_of(tag) or path} cannot be removed")
    else:
        ctx.event("hidden-date-removed", keyword_of(tag) or path)
        ctx.counts["X" if repaired.action == "removed" else "Z" if repaired.action == "emptied" else "D"] += 1


def _listed(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return list(value)
    return [value]
