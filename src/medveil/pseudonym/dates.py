"""Per-patient date shifting that keeps every interval.

Each patient gets one whole-day offset, derived from the key and the patient,
so all of a patient's dates move together (intervals, ages and the order of
visits survive) while the calendar dates themselves are gone.  Times of day,
fractions and UTC offsets are left alone: a whole-day shift does not change
them, and they matter clinically (contrast timing, injections).

Parsing is strict on purpose: a value that is not a valid DA or DT raises
:class:`InvalidValueError` (whose message never quotes the value), so the
caller can empty it instead of letting an unshifted real date through.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from medveil.errors import InvalidValueError, PolicyError
from medveil.pseudonym.keys import Key, derive

#: DICOM pads with spaces; NULs and other whitespace appear in broken files.
_PADDING = string.whitespace + "\x00"

_DA = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
#: ACR-NEMA 2.0 form, still written by old devices (PS3.5 6.2 note).
_DA_LEGACY = re.compile(r"([0-9]{4})\.([0-9]{2})\.([0-9]{2})")
_DT = re.compile(
    r"(?P<year>[0-9]{4})"
    r"(?:(?P<month>[0-9]{2})"
    r"(?:(?P<day>[0-9]{2})"
    r"(?:(?P<hour>[0-9]{2})"
    r"(?:(?P<minute>[0-9]{2})"
    r"(?:(?P<second>[0-9]{2})(?P<fraction>\.[0-9]{1,6})?)?)?)?)?)?"
    r"(?P<offset>[+-][0-9]{4})?"
)


@dataclass(frozen=True)
class ShiftRange:
    """The interval of whole days from which patient offsets are drawn.

    The default moves dates back by 1 day to 10 years: always a change, never
    into the future (a future date would reveal the shift's sign and confuse
    viewers).  An invalid range is a configuration mistake, hence
    :class:`PolicyError`.
    """

    min_days: int = -3650
    max_days: int = -1

    def __post_init__(self) -> None:
        for bound in (self.min_days, self.max_days):
            if not isinstance(bound, int) or isinstance(bound, bool):
                raise PolicyError("date shift bounds must be whole days")
        if self.min_days > self.max_days:
            raise PolicyError("date shift range: min_days must not exceed max_days")


def patient_offset(key: Key, patient_key: str, rng: ShiftRange) -> int:
    """The whole-day offset for one patient, in ``[rng.min_days, rng.max_days]``.

    Derived from the key alone, so every file of a patient gets the same
    offset on any machine, with no state shared between files.  256 HMAC bits
    reduced modulo the span are uniform up to a negligible bias.
    """
    span = rng.max_days - rng.min_days + 1
    return rng.min_days + int.from_bytes(derive(key, "date-offset", patient_key), "big") % span


def _clean(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidValueError("a date value must be text")
    return value.strip(_PADDING)


def _move(year: int, month: int, day: int, days: int) -> date:
    """``date(year, month, day) + days``, with every failure as InvalidValueError."""
    try:
        return date(year, month, day) + timedelta(days=days)
    except (ValueError, OverflowError):
        raise InvalidValueError("date is not a valid calendar date or leaves the years 1-9999") from None


def _ymd(moved: date) -> str:
    # strftime("%Y") does not zero-pad years before 1000 on every platform.
    return f"{moved.year:04d}{moved.month:02d}{moved.day:02d}"


def _shift_one_da(value: str, days: int) -> str:
    match = _DA.fullmatch(value) or _DA_LEGACY.fullmatch(value)
    if match is None:
        raise InvalidValueError("value is not a DA date (YYYYMMDD)")
    year, month, day = (int(group) for group in match.groups())
    return _ymd(_move(year, month, day, days))


def shift_da(value: str, days: int) -> str:
    """Shift a DA value by *days*; ranges "A-B", "-B", "A-" shift each side.

    Legacy "YYYY.MM.DD" is accepted and written back as YYYYMMDD.  An empty
    (or all-padding) value stays empty.
    """
    text = _clean(value)
    if not text:
        return ""
    if "-" not in text:
        return _shift_one_da(text, days)
    start, _, end = (part.strip(_PADDING) for part in text.partition("-"))
    if "-" in end or not (start or end):
        raise InvalidValueError("value is not a DA range")
    return "-".join(_shift_one_da(part, days) if part else "" for part in (start, end))


def _parse_dt(value: str) -> re.Match[str] | None:
    """The match for one valid DT value, or ``None`` when it is not one.

    Checks every component's range (calendar day, hour, minute, second up to
    a leap second 60, UTC offset up to 14 hours) so a range split can be
    chosen by validity and a nonsense value is never half-shifted.
    """
    match = _DT.fullmatch(value)
    if match is None:
        return None
    parts = match.groupdict()
    try:
        date(int(parts["year"]), int(parts["month"] or 1), int(parts["day"] or 1))
    except ValueError:
        return None
    limits = (("hour", 23), ("minute", 59), ("second", 60))
    if any(parts[name] is not None and int(parts[name]) > top for name, top in limits):
        return None
    offset = parts["offset"]
    if offset is not None and (int(offset[1:3]) > 14 or int(offset[3:]) > 59):
        return None
    return match


def _shift_parsed_dt(match: re.Match[str], days: int) -> str:
    parts = match.groupdict()
    # Partial precision: shift the first day of the year or month and keep
    # the precision, so no finer (and false) detail is invented.
    moved = _move(int(parts["year"]), int(parts["month"] or 1), int(parts["day"] or 1), days)
    out = f"{moved.year:04d}"
    if parts["month"] is not None:
        out += f"{moved.month:02d}"
    if parts["day"] is not None:
        out += f"{moved.day:02d}"
    tail = ("hour", "minute", "second", "fraction", "offset")
    return out + "".join(parts[name] for name in tail if parts[name] is not None)


def shift_dt(value: str, days: int) -> str:
    """Shift a DT value or range by *days*, keeping time, fraction, UTC offset and precision.

    A hyphen is a range separator only when the text is not a single valid
    DT (so "20140101120000-0500" is one value with a UTC offset) and both
    sides of it are valid DT values or empty.  When several hyphens qualify,
    the leftmost is taken; the standard leaves such text ambiguous.
    """
    text = _clean(value)
    if not text:
        return ""
    single = _parse_dt(text)
    if single is not None:
        return _shift_parsed_dt(single, days)
    for index, char in enumerate(text):
        if char != "-":
            continue
        start, end = text[:index].strip(_PADDING), text[index + 1:].strip(_PADDING)
        if not (start or end):
            continue
        left = _parse_dt(start) if start else None
        right = _parse_dt(end) if end else None
        if (left is not None or not start) and (right is not None or not end):
            return "-".join(_shift_parsed_dt(side, days) if side is not None else ""
                            for side in (left, right))
    raise InvalidValueError("value is not a DT date-time or range")


def shift_multi(value: str | Iterable[object] | None, days: int,
                fn: Callable[[str, int], str]) -> str | list[str] | None:
    """Apply *fn* to each value of a multi-valued DA/DT attribute.

    A string is split on the DICOM value separator "\\" and joined again; a
    list or pydicom ``MultiValue`` gives a plain list (pydicom accepts it as
    the new element value).  ``None`` (an empty element) is returned as is;
    ``None`` items become empty values.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return "\\".join(fn(part, days) for part in value.split("\\"))
    if isinstance(value, (bytes, bytearray)):
        raise InvalidValueError("a date value must be text, not bytes")
    try:
        items = list(value)
    except TypeError:
        raise InvalidValueError("a date value must be text or a list of texts") from None
    return [fn("" if item is None else str(item), days) for item in items]
