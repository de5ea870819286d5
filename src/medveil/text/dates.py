"""Dates, date-times and Unix timestamps in free text: finding them and shifting them.

A date in a description is as identifying as the Study Date itself, so every common written
form is found: DICOM's own (``20140321``, ``20140321101500``), ISO (``2014-03-21``,
``2014-03-21T10:15:00``), US and European numeric forms (``03/21/2014``, ``3/21/14``,
``21.03.2014``) and forms with month names (``21-MAR-2014``, ``March 21, 2014``,
``March 2014``, ``March 21``).  Numbers that only look similar are left alone: a year needs
four digits in 1900-2099 (two only in ``M/D/YY`` and with month names), a month 1-12, a day
that exists in that month, and a date may not be glued to other digits, letters or dots
(so ``1.2.3``, ``0.0%``, ``-125.5``, ``3.0T`` and UID components never match).

Numeric dates are read month-first (US) unless the first number cannot be a month; dotted
dates (``21.03.2014``) are read day-first, as Europe writes them.

When the caller gives a whole-day offset, a date is rewritten in its own format (padding,
two- or four-digit year, month-name spelling and case, ordinal suffix, time of day) instead of
removed, the same way :mod:`medveil.pseudonym.dates` shifts DA values: intervals survive.
A date without a year is shifted within the leap year 2000; a month without a day is shifted
as its 15th.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from medveil.text.spans import Span

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
_MONTH_NUMBER = {name[:3]: number for number, name in enumerate(MONTHS, start=1)}
_MONTH_NUMBER["sept"] = 9
#: Any spelling, any case ("MAR", "Mar.", "march", "Sept").
_MON = (r"(?P<mon>(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
        r"|sep(?:t(?:ember)?|tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?))")


def _cased(words: Iterable[str]) -> str:
    """Title-case or upper-case spellings only: "may" and "march" are also ordinary words."""
    forms = sorted({f for w in words for f in (w.title(), w.upper())}, key=lambda f: (-len(f), f))
    return "|".join(forms)


#: Month names where a lone month+year or month+day must look like a name, not a verb.
_MON_CASED = "(?P<mon>" + _cased(MONTHS + tuple(m[:3] for m in MONTHS) + ("sept",)) + ")"
_MON_FULL_CASED = "(?P<mon>" + _cased(MONTHS) + ")"

_LEFT = r"(?<![\w.+\-/])"
_RIGHT = r"(?![\w]|[.\-/:][0-9])"
_YEAR4 = r"(?:19|20)[0-9]{2}"
_ORD = r"(?P<ord>(?i:st|nd|rd|th))?"
_TIME = (r"(?P<time>(?:[ \t]*T[ \t]*|[ \t]+(?:at[ \t]+|@[ \t]*)?|[ \t]*,[ \t]*|[ \t]*@[ \t]*)"
         r"(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
         r"(?:[ \t]*(?i:[ap]\.?m\.?))?(?:[ \t]*(?:Z|[+-](?:0[0-9]|1[0-4]):?[0-5][0-9]))?)?")


@dataclass(frozen=True)
class DateFormat:
    """One written form.  *order* says how the numeric groups ``a`` and ``b`` are read:
    "md" month first unless impossible, "dm" day first unless impossible."""

    name: str
    pattern: re.Pattern
    order: str = ""


def _format(name: str, body: str, order: str = "") -> DateFormat:
    return DateFormat(name, re.compile(_LEFT + body + _RIGHT), order)


FORMATS = (
    _format("dicom", r"(?P<y>" + _YEAR4 + r")(?P<m>0[1-9]|1[0-2])(?P<d>0[1-9]|[12][0-9]|3[01])"
            r"(?P<hms>(?:[01][0-9]|2[0-3])(?:[0-5][0-9](?:[0-5][0-9](?:\.[0-9]{1,6})?)?)?)?"
            r"(?P<tz>[+-](?:0[0-9]|1[0-4])[0-5][0-9])?"),
    _format("iso", r"(?P<y>" + _YEAR4 + r")(?P<s>[-/.])(?P<m>0?[1-9]|1[0-2])(?P=s)"
            r"(?P<d>0?[1-9]|[12][0-9]|3[01])" + _TIME),
    _format("numeric", r"(?P<a>[0-9]{1,2})(?P<s>[/-])(?P<b>[0-9]{1,2})(?P=s)"
            r"(?P<y>" + _YEAR4 + r"|[0-9]{2})" + _TIME, order="md"),
    _format("dotted", r"(?P<a>[0-9]{1,2})\.(?P<b>[0-9]{1,2})\.(?P<y>" + _YEAR4 + r")" + _TIME,
            order="dm"),
    _format("day-month-year", r"(?P<d>[0-9]{1,2})" + _ORD + r"(?:[ \t]+of[ \t]+|[ \t\-/.]*)" + _MON
            + r"\.?[ \t\-/.,]*(?P<y>" + _YEAR4 + r"|[0-9]{2})" + _TIME),
    _format("month-day-year", _MON + r"\.?[ \t\-]*(?P<d>[0-9]{1,2})" + _ORD + r"(?:,[ \t]*|[ \t\-]+)"
            r"(?P<y>" + _YEAR4 + r")" + _TIME),
    _format("month-year", _MON_CASED + r"\.?,?[ \t]*(?P<y>" + _YEAR4 + r")"),
    _format("month-'yy", _MON_CASED + r"\.?,?[ \t]*['’](?P<y>[0-9]{2})"),
    _format("mm/yyyy", r"(?P<m>0[1-9]|1[0-2])[/\-.](?P<y>" + _YEAR4 + r")"),
    _format("yyyy-mm", r"(?P<y>" + _YEAR4 + r")[\-/](?P<m>0[1-9]|1[0-2])"),
    _format("quarter", r"(?P<q>(?i:Q)[1-4])[ \t/\-]*(?P<y>" + _YEAR4 + r")"),
    _format("month-day", _MON_FULL_CASED + r"[ \t]+(?P<d>[0-9]{1,2})" + _ORD),
    _format("day-month", r"(?P<d>[0-9]{1,2})" + _ORD + r"[ \t]+(?:of[ \t]+)?" + _MON_FULL_CASED),
)

#: Reference year for dates written without one: a leap year, so "Feb 29" stays valid.
_NO_YEAR = 2000


def _year(text: str) -> int:
    value = int(text)
    if len(text) == 4:
        return value
    return 2000 + value if value <= 35 else 1900 + value


def _month_day(fmt: DateFormat, m: re.Match) -> tuple[int, int, str, str] | None:
    """(month, day, month group, day group) for the match, or None when impossible."""
    groups = m.groupdict()
    if fmt.order:
        a, b = int(groups["a"]), int(groups["b"])
        if fmt.order == "md":
            return (a, b, "a", "b") if a <= 12 else (b, a, "b", "a")
        return (b, a, "b", "a") if b <= 12 else (a, b, "a", "b")
    if groups.get("q"):  # a quarter stands for its middle month
        return 3 * int(groups["q"][1]) - 1, 15, "q", ""
    month = int(groups["m"]) if groups.get("m") else _MONTH_NUMBER.get(groups["mon"].lower()[:3], 0)
    if groups.get("mon") and groups["mon"].lower().startswith("sept"):
        month = 9
    day = int(groups["d"]) if groups.get("d") else 15
    return month, day, "m" if groups.get("m") else "mon", "d" if groups.get("d") else ""


def interpret(fmt: DateFormat, m: re.Match) -> date | None:
    """The calendar date a match stands for, or None if it is not a real date."""
    groups = m.groupdict()
    if fmt.name == "numeric" and groups["s"] == "-" and len(groups["y"]) == 2:
        return None  # "1-2-10" is a range or a code far more often than a date
    parts = _month_day(fmt, m)
    if parts is None:
        return None
    month, day = parts[0], parts[1]
    year = _year(groups["y"]) if groups.get("y") else _NO_YEAR
    try:
        return date(year, month, day)
    except ValueError:
        return None


def find_dates(text: str) -> list[Span]:
    """Every date or date-time in *text* (category "date")."""
    spans = []
    for fmt in FORMATS:
        for m in fmt.pattern.finditer(text):
            if interpret(fmt, m) is not None:
                spans.append(Span(m.start(), m.end(), "date"))
    return spans


def _ordinal(day: int, like: str) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return suffix.upper() if like.isupper() else suffix


def _month_name(month: int, like: str) -> str:
    full = MONTHS[month - 1]
    bare = like.rstrip(".").lower()
    if bare in MONTHS:
        name = full
    elif bare == "sept" and month == 9:
        name = "sept"
    else:
        name = full[:3]
    if like.isupper():
        return name.upper()
    return name if like.islower() else name.title()


def _render(fmt: DateFormat, m: re.Match, new: date) -> str:
    found = _month_day(fmt, m)
    assert found is not None  # only a match whose month and day were read is rendered
    month_group, day_group = found[2:]
    values = {month_group: new.month}
    if day_group:
        values[day_group] = new.day
    if m.groupdict().get("y"):
        values["y"] = new.year
    edits = []
    for group, value in values.items():
        original = m.group(group)
        if group == "q":
            text = original[0] + str((value - 1) // 3 + 1)
        elif group == "mon":
            text = _month_name(value, original)
        elif group == "y":
            text = f"{value:04d}" if len(original) == 4 else f"{value % 100:02d}"
        elif m.groupdict().get("mon"):  # "21st March": padded only if it was ("02 Mar")
            text = f"{value:02d}" if original.startswith("0") else str(value)
        else:  # numeric forms: two digits stay two digits
            text = f"{value:02d}" if len(original) == 2 else str(value)
        edits.append((m.start(group), m.end(group), text))
    if m.groupdict().get("ord"):
        edits.append((m.start("ord"), m.end("ord"), _ordinal(new.day, m.group("ord"))))
    out = m.group(0)
    base = m.start()
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start - base] + text + out[end - base:]
    return out


def shift_date_text(text: str, days: int) -> str | None:
    """*text*, which must be one whole date in a known format, moved by *days* and written
    the same way; None when it is not such a date (the caller then removes it)."""
    for fmt in FORMATS:
        m = fmt.pattern.fullmatch(text)
        if m is None:
            continue
        original = interpret(fmt, m)
        if original is None:
            continue
        try:
            new = original + timedelta(days=days)
        except OverflowError:
            return None
        if m.groupdict().get("y") and not 1900 <= new.year <= 2099 and len(m.group("y")) == 4:
            return None
        rendered = _render(fmt, m, new)
        if days and rendered == text:
            # A month or quarter the shift did not leave would show the true one: removed instead.
            return None
        return rendered
    return None


# --- the file's own dates -------------------------------------------------------------------

@lru_cache(maxsize=4096)
def own_date_forms(value: str) -> frozenset[str]:
    """Ways the DA (or DT) *value* may be written in text (cached: a series repeats its dates)."""
    return frozenset(_own_date_forms(value))


def _own_date_forms(value: str) -> set[str]:
    """Ways the DA (or DT) *value* may be written in text, including compact ones that the
    generic formats leave alone because, for a date not known in advance, they would match
    too much ("140321", "032114", "21/03/14")."""
    m = re.match(r"\s*((?:19|20)[0-9]{2})([01][0-9])([0-3][0-9])", value or "")
    if not m:
        return set()
    try:
        day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return set()
    y4, y2 = f"{day.year:04d}", f"{day.year % 100:02d}"
    months, days = {f"{day.month:02d}", str(day.month)}, {f"{day.day:02d}", str(day.day)}
    forms = {y4 + f"{day.month:02d}{day.day:02d}", y2 + f"{day.month:02d}{day.day:02d}",
             f"{day.month:02d}{day.day:02d}" + y4, f"{day.day:02d}{day.month:02d}" + y4,
             f"{day.month:02d}{day.day:02d}" + y2, f"{day.day:02d}{day.month:02d}" + y2}
    for sep in "-/. ":
        for mm in months:
            for dd in days:
                forms.add(sep.join((y4, mm, dd)))
                for yy in (y4, y2):
                    forms.add(sep.join((mm, dd, yy)))
                    forms.add(sep.join((dd, mm, yy)))
    return forms


# --- Unix timestamps -----------------------------------------------------------------------

#: 2000-01-01T00:00:00Z to 2035-12-31T23:59:59Z: the years a scan in a current archive has.
_EPOCH_MIN, _EPOCH_MAX = 946_684_800, 2_082_758_399
_TIMESTAMP_LABELLED = re.compile(
    r"(?<![\w])(?i:unix[ \t]*time(?:[ \t]*stamp)?|posix[ \t]*time|time[ \t]*stamp|epoch|ts|time"
    r"|created|modified|acquired)[ \t]*[:=#]?[ \t]*"
    r"(?P<v>[0-9]{10}(?:[0-9]{3})?(?:\.[0-9]{1,6})?)" + _RIGHT)
_TIMESTAMP_ALONE = re.compile(r"\s*(?P<v>[0-9]{10}(?:[0-9]{3})?(?:\.[0-9]{1,6})?)\s*")


def _epoch_scale(digits: str) -> int | None:
    """1 for seconds, 1000 for milliseconds; None outside the plausible range."""
    whole = digits.split(".")[0]
    scale = 1000 if len(whole) == 13 else 1
    return scale if _EPOCH_MIN * scale <= int(whole) <= _EPOCH_MAX * scale else None


def find_timestamps(text: str) -> list[Span]:
    """Unix timestamps: labelled ("epoch: 1395396900") or the whole value by itself."""
    spans = [Span(m.start("v"), m.end("v"), "timestamp") for m in _TIMESTAMP_LABELLED.finditer(text)
             if _epoch_scale(m.group("v"))]
    alone = _TIMESTAMP_ALONE.fullmatch(text)
    if alone and _epoch_scale(alone.group("v")):
        spans.append(Span(alone.start("v"), alone.end("v"), "timestamp"))
    return spans


def shift_timestamp(text: str, days: int) -> str | None:
    """The timestamp *text* moved by whole *days*, same unit and fraction; None if invalid."""
    scale = _epoch_scale(text) if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", text) else None
    if scale is None:
        return None
    whole, dot, fraction = text.partition(".")
    return str(int(whole) + days * 86_400 * scale) + dot + fraction
