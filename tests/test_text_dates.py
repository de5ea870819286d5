"""Dates, date-times and timestamps in free text: what is found, what is not, how it shifts."""

from __future__ import annotations

import pytest

from medveil.text.dates import (
    find_dates,
    find_timestamps,
    own_date_forms,
    shift_date_text,
    shift_timestamp,
)
from medveil.text.spans import merge


def whole_dates(text: str) -> list[str]:
    return [text[s.start:s.end] for s in merge(find_dates(text))]


@pytest.mark.parametrize("text", [
    "20140321", "2014-03-21", "2014/03/21", "2014.03.21", "03/21/2014", "3/21/14", "21-MAR-2014",
    "21 Mar 2014", "21MAR2014", "21-Mar-14", "March 21, 2014", "Mar 21 2014", "Mar. 21, 2014",
    "21.03.2014", "21st March 2014", "21st of March 2014", "Sept 3, 2014", "March 2014", "MARCH 2014",
    "03/2014", "March 21", "21 March", "20140321101500", "20140321101500.123456", "201403211015",
    "20140321101500+0100", "2014-03-21T10:15:00", "2014-03-21 10:15", "03/21/2014 10:15",
    "03/21/2014 10:15 PM", "03/21/2014 at 10:15", "2014-03-21T10:15:00Z", "21/03/2014",
])
def test_common_formats_are_found_whole(text):
    assert whole_dates(text) == [text]


@pytest.mark.parametrize(("text", "date"), [
    ("Exam 03/21/2014 follow-up", "03/21/2014"),
    ("DOB: 1948-03-21.", "1948-03-21"),
    ("(21-MAR-2014)", "21-MAR-2014"),
    ("seen on March 21, 2014 for pain", "March 21, 2014"),
])
def test_dates_inside_text(text, date):
    assert whole_dates(text) == [date]


@pytest.mark.parametrize("text", [
    "0.0%", "1.2.3", "P4^P101^S108^I0", "-125.5", "512x512", "3.0T", "TR 2000 TE 80", "120 kVp",
    "1.2.840.10008.20140321.1", "20141399", "13/45/2014", "1-2-10", "may 2014", "2014", "12/24",
    "10:15", "1/2/3", "ratio 3/4", "Series 1201", "ID 12345678", "T2 2000/80", "5 mg/kg",
    "SE 3 IM 21", "Feb 30, 2014", "31.02.2014", "18991231", "21001231",
])
def test_numbers_that_are_not_dates(text):
    assert find_dates(text) == []


@pytest.mark.parametrize(("text", "days", "expected"), [
    ("20140321", -10, "20140311"),
    ("03/21/2014", -10, "03/11/2014"),
    ("3/21/14", -10, "3/11/14"),
    ("2014-03-21", -10, "2014-03-11"),
    ("2014/3/21", -10, "2014/3/11"),
    ("21-MAR-2014", -10, "11-MAR-2014"),
    ("21 Mar 2014", -30, "19 Feb 2014"),
    ("21 march 2014", -30, "19 february 2014"),
    ("March 21, 2014", -10, "March 11, 2014"),
    ("Sept 3, 2014", -10, "Aug 24, 2014"),
    ("21st March 2014", -19, "2nd March 2014"),
    ("21.03.2014", -10, "11.03.2014"),
    ("01/05/2014", -10, "12/26/2013"),
    ("2016-03-01", -1, "2016-02-29"),
    ("20140321101500.5+0100", -10, "20140311101500.5+0100"),
    ("2014-03-21T10:15:00", 3650, "2024-03-18T10:15:00"),
    ("03/21/2014 10:15 PM", -10, "03/11/2014 10:15 PM"),
    ("March 2014", -20, "February 2014"),
    ("March 21", -21, "February 29"),
    ("21/03/2014", -10, "11/03/2014"),
])
def test_shifting_keeps_the_format(text, days, expected):
    assert shift_date_text(text, days) == expected


@pytest.mark.parametrize("text", ["not a date", "140321", "2014-03-21 and more", "20140399"])
def test_shifting_refuses_what_is_not_one_known_date(text):
    assert shift_date_text(text, -10) is None


def test_a_month_the_shift_does_not_leave_is_not_kept():
    """"March 2014" moved by -10 days is still March 2014 at its precision: written so, it would
    show the true month, so the caller removes it instead (issue 14)."""
    assert shift_date_text("March 2014", -10) is None


def test_shifting_never_leaves_the_four_digit_year_range():
    assert shift_date_text("19000105", -10) is None


def test_own_date_forms():
    forms = own_date_forms("20140321")
    for form in ("20140321", "140321", "032114", "210314", "03212014", "21032014", "3/21/14",
                 "21/3/14", "21.03.14", "2014-3-21", "03-21-2014", "21 03 2014"):
        assert form in forms
    assert own_date_forms("20140321101500.000") == forms
    assert own_date_forms("") == set() and own_date_forms("2014") == set()
    assert own_date_forms("20140231") == set()


@pytest.mark.parametrize(("text", "value"), [
    ("1395396900", "1395396900"),
    ("  1395396900  ", "1395396900"),
    ("epoch: 1395396900", "1395396900"),
    ("Unix timestamp=1395396900.25", "1395396900.25"),
    ("created 1395396900123 ms", "1395396900123"),
    ("ts 1395396900", "1395396900"),
])
def test_timestamps(text, value):
    assert [text[s.start:s.end] for s in find_timestamps(text)] == [value]


@pytest.mark.parametrize("text", [
    "CT 1395396900 HEAD", "9999999999", "0946684799", "epoch: 2082758400", "1395396900 1395396901",
    "timestamp 139539690",
])
def test_not_timestamps(text):
    assert find_timestamps(text) == []


def test_shifting_timestamps():
    assert shift_timestamp("1395396900", -10) == "1394532900"
    assert shift_timestamp("1395396900123", 1) == "1395483300123"
    assert shift_timestamp("1395396900.25", 1) == "1395483300.25"
    assert shift_timestamp("12", 1) is None and shift_timestamp("abc", 1) is None
