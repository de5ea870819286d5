"""Per-patient date shifting that keeps every interval.

Each patient gets one whole-day offset, derived from the key and the
patient, so all of a patient's dates move together (intervals, ages and
sequences of visits survive) while the calendar dates themselves are gone.
Times of day are left alone: a whole-day shift does not change them, and
they matter clinically (contrast timing, injections).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

from medveil.errors import InvalidValueError
from medveil.pseudonym.keys import Key, derive


@dataclass(frozen=True)
class ShiftRange:
    min_days: int = -3650
    max_days: int = -1

    def __post_init__(self) -> None:
        if not (isinstance(self.min_days, int) and isinstance(self.max_days, int)):
            raise InvalidValueError("date shift bounds must be whole days")
        if self.min_days > self.max_days:
            raise InvalidValueError("date shift range: min_days must not exceed max_days")


def patient_offset(key: Key, patient_key: str, rng: ShiftRange) -> int:
    span = rng.max_days - rng.min_days + 1
    return rng.min_days + int.from_bytes(derive(key, "date-offset", patient_key), "big") % span


_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DA_LEGACY = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?([+-]\d{4})?$")
_DT_SINGLE = r"\d{4}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?)?)?(?:[+-]\d{4})?"
_DT_RANGE = re.compile(rf"^({_DT_SINGLE})?-({_DT_SINGLE})?$")


def _move(year: int, month: int, day: int, days: int) -> date:
    try:
        moved = date(year, month, day) + timedelta(days=days)
    except (ValueError, OverflowError):
        raise InvalidValueError("date is not a valid calendar date or leaves years 1-9999") from None
    return moved


def _shift_one_da(value: str, days: int) -> str:
    match = _DA.match(value) or _DA_LEGACY.match(value)
    if not match:
        raise InvalidValueError("value is not a DA date (YYYYMMDD)")
    return _move(*(int(g) for g in match.groups()), days).strftime("%Y%m%d").zfill(8)


def shift_da(value: str, days: int) -> str:
    """Shift a DA value or DA range ("A-B", "-B", "A-") by *days*."""
    text = value.strip()
    if not text:
        return ""
    if "-" in text:
        start, _, end = text.partition("-")
        if "-" in end or not (start or end):
            raise InvalidValueError("value is not a DA range")
        return "-".join(_shift_one_da(part.strip(), days) if part.strip() else "" for part in (start, end))
    return _shift_one_da(text, days)


def _shift_one_dt(value: str, days: int) -> str:
    match = _DT.match(value)
    if not match:
        raise InvalidValueError("value is not a DT date-time")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if hour is not None and int(hour) > 23 or minute is not None and int(minute) > 59 \
            or second is not None and int(second) > 60:
        raise InvalidValueError("DT time of day is out of range")
    if offset is not None and (int(offset[1:3]) > 14 or int(offset[3:]) > 59):
        raise InvalidValueError("DT UTC offset is out of range")
    moved = _move(int(year), int(month or 1), int(day or 1), days)
    out = f"{moved.year:04d}"
    if month is not None:
        out += f"{moved.month:02d}"
    if day is not None:
        out += f"{moved.day:02d}"
    return out + "".join(g for g in (hour, minute, second, fraction, offset) if g is not None)


def shift_dt(value: str, days: int) -> str:
    """Shift a DT value or range, keeping time of day, fraction, UTC offset and precision."""
    text = value.strip()
    if not text:
        return ""
    if _DT.match(text):
        return _shift_one_dt(text, days)
    match = _DT_RANGE.match(text)
    if not match or not (match.group(1) or match.group(2)):
        raise InvalidValueError("value is not a DT date-time or range")
    return "-".join(_shift_one_dt(part, days) if part else "" for part in match.groups())


def shift_multi(value, days: int, fn: Callable[[str, int], str]):
    """Apply *fn* to each value of a multi-valued attribute (string with '\\' or a list)."""
    if isinstance(value, str):
        return "\\".join(fn(part, days) for part in value.split("\\"))
    return [fn(str(part), days) for part in value]
