"""Date shifting: intervals kept, reversible, strict parsing, safe errors."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue

from medveil.errors import InvalidValueError, PolicyError
from medveil.pseudonym import Key, ShiftRange, patient_offset, shift_da, shift_dt, shift_multi

KEY = Key(b"k" * 32)
OTHER = Key(b"z" * 32)

#: Dates far enough from years 1 and 9999 that any tested shift stays inside.
safe_dates = st.dates(min_value=date(200, 1, 1), max_value=date(9800, 12, 31))
shifts = st.integers(min_value=-36_500, max_value=36_500)
fractions = st.one_of(st.just(""), st.integers(1, 6).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n).map(lambda f: "." + f)))
utc_offsets = st.one_of(
    st.just(""),
    st.tuples(st.sampled_from("+-"), st.integers(0, 14), st.sampled_from([0, 30, 45])).map(
        lambda t: f"{t[0]}{t[1]:02d}{t[2]:02d}"),
)


def da(d: date) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def parse_da(text: str) -> date:
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


@st.composite
def full_dts(draw: st.DrawFn) -> tuple[str, str, str]:
    """A full-precision DT string and its time and UTC-offset parts."""
    moment = draw(st.datetimes(min_value=datetime(200, 1, 1), max_value=datetime(9800, 12, 31)))
    time_part = f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}" + draw(fractions)
    offset = draw(utc_offsets)
    return da(moment.date()) + time_part + offset, time_part, offset


# --- patient offsets -------------------------------------------------------------------------


@given(st.text(), st.integers(-100_000, 100_000), st.integers(0, 100_000))
def test_offset_within_range_and_deterministic(patient: str, low: int, width: int) -> None:
    rng = ShiftRange(low, low + width)
    offset = patient_offset(KEY, patient, rng)
    assert isinstance(offset, int)
    assert rng.min_days <= offset <= rng.max_days
    assert patient_offset(Key(b"k" * 32), patient, rng) == offset


def test_offset_default_range_and_spread() -> None:
    offsets = [patient_offset(KEY, f"patient-{i}", ShiftRange()) for i in range(4000)]
    assert all(-3650 <= o <= -1 for o in offsets)
    # 4000 uniform draws from 3650 days give about 2430 distinct values.
    assert len(set(offsets)) > 2250
    assert min(offsets) < -3500 and max(offsets) > -150
    assert abs(sum(offsets) / len(offsets) - (-1825.5)) < 100


def test_offset_depends_on_key_and_patient() -> None:
    rng = ShiftRange()
    keyed = [patient_offset(KEY, f"p{i}", rng) != patient_offset(OTHER, f"p{i}", rng) for i in range(50)]
    assert sum(keyed) >= 45
    assert len({patient_offset(KEY, f"p{i}", rng) for i in range(50)}) >= 45


def test_single_day_range() -> None:
    assert patient_offset(KEY, "anyone", ShiftRange(-7, -7)) == -7


@pytest.mark.parametrize("kwargs", [{"min_days": 1, "max_days": 0}, {"min_days": 1.5},
                                    {"max_days": "3"}, {"min_days": True}])
def test_invalid_shift_range(kwargs: dict) -> None:
    with pytest.raises(PolicyError):
        ShiftRange(**kwargs)


# --- DA ----------------------------------------------------------------------------------------


@given(safe_dates, safe_dates, shifts)
def test_da_intervals_preserved(d1: date, d2: date, days: int) -> None:
    s1, s2 = parse_da(shift_da(da(d1), days)), parse_da(shift_da(da(d2), days))
    assert (s2 - s1) == (d2 - d1)
    assert s1 - d1 == timedelta(days=days)


@given(safe_dates, shifts)
def test_da_shift_then_unshift_is_identity(d: date, days: int) -> None:
    assert shift_da(shift_da(da(d), days), -days) == da(d)


@given(safe_dates, safe_dates, shifts)
def test_da_range(d1: date, d2: date, days: int) -> None:
    expected = f"{da(d1 + timedelta(days))}-{da(d2 + timedelta(days))}"
    assert shift_da(f"{da(d1)}-{da(d2)}", days) == expected
    assert shift_da(f"-{da(d2)}", days) == f"-{da(d2 + timedelta(days))}"
    assert shift_da(f"{da(d1)}-", days) == f"{da(d1 + timedelta(days))}-"


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("20140101", -1, "20131231"),
        ("20120229", 366, "20130301"),
        ("20140301", -1, "20140228"),
        ("20140101", 0, "20140101"),
        (" 20140101 ", 1, "20140102"),
        ("20140101\x00", 1, "20140102"),
        ("2014.01.02", 1, "20140103"),
        ("2014.01.02-2014.01.05", 1, "20140103-20140106"),
        ("20140101 - 20140105", 1, "20140102-20140106"),
        ("10000101", -1, "09991231"),
        ("00010102", -1, "00010101"),
        ("", 5, ""),
        ("   ", 5, ""),
    ],
)
def test_da_examples(value: str, days: int, expected: str) -> None:
    assert shift_da(value, days) == expected


@pytest.mark.parametrize(
    "value",
    ["20140230", "2014", "abcd", "20141301", "20140001", "20140100", "00000101", "201401011",
     "2014-01-01", "20140101-20140102-20140103", "-", " - ", "2014.1.2", "٢٠١٤٠١٠١",
     "20140101120000", "2014/01/01", "20140101\\20140102"],
)
def test_da_invalid(value: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        shift_da(value, 10)
    assert value.strip() not in str(info.value) or len(value.strip()) < 3


@pytest.mark.parametrize(("value", "days"), [("00010101", -1), ("99991231", 1), ("20140101", 10**30),
                                              ("20140101", -(10**30)), ("20140101", 3_000_000)])
def test_da_out_of_calendar(value: str, days: int) -> None:
    with pytest.raises(InvalidValueError):
        shift_da(value, days)


def test_non_text_rejected_safely() -> None:
    for fn in (shift_da, shift_dt):
        with pytest.raises(InvalidValueError):
            fn(20140101, 1)  # type: ignore[arg-type]
        with pytest.raises(InvalidValueError):
            fn(b"20140101", 1)  # type: ignore[arg-type]


# --- DT ----------------------------------------------------------------------------------------


@given(full_dts(), shifts)
def test_dt_keeps_time_fraction_offset(dt: tuple[str, str, str], days: int) -> None:
    value, time_part, offset = dt
    shifted = shift_dt(value, days)
    assert shifted[8:] == time_part + offset
    assert parse_da(shifted[:8]) - parse_da(value[:8]) == timedelta(days=days)
    assert shift_dt(shifted, -days) == value


@given(full_dts(), full_dts(), shifts)
def test_dt_intervals_preserved(a: tuple[str, str, str], b: tuple[str, str, str], days: int) -> None:
    sa, sb = shift_dt(a[0], days), shift_dt(b[0], days)
    assert parse_da(sb[:8]) - parse_da(sa[:8]) == parse_da(b[0][:8]) - parse_da(a[0][:8])


@given(full_dts(), full_dts(), shifts)
def test_dt_ranges(a: tuple[str, str, str], b: tuple[str, str, str], days: int) -> None:
    sa, sb = shift_dt(a[0], days), shift_dt(b[0], days)
    assert shift_dt(f"{a[0]}-{b[0]}", days) == f"{sa}-{sb}"
    assert shift_dt(f"-{b[0]}", days) == f"-{sb}"
    assert shift_dt(f"{a[0]}-", days) == f"{sa}-"


@given(st.dates(min_value=date(200, 1, 1), max_value=date(9800, 12, 31)), shifts)
def test_dt_partial_precision(d: date, days: int) -> None:
    year_first = date(d.year, 1, 1) + timedelta(days=days)
    month_first = date(d.year, d.month, 1) + timedelta(days=days)
    assert shift_dt(f"{d.year:04d}", days) == f"{year_first.year:04d}"
    assert shift_dt(f"{d.year:04d}{d.month:02d}", days) == f"{month_first.year:04d}{month_first.month:02d}"
    assert shift_dt(da(d), days) == da(d + timedelta(days))
    assert shift_dt(da(d) + "07", days) == da(d + timedelta(days)) + "07"
    assert shift_dt(da(d) + "0730", days) == da(d + timedelta(days)) + "0730"


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("2014", -400, "2012"),
        ("201403", -1, "201402"),
        ("201401", 31, "201402"),
        ("20140101", -1, "20131231"),
        ("2014010112", -1, "2013123112"),
        ("20140101120000.123456+0100", 1, "20140102120000.123456+0100"),
        ("20140101120000.1", 1, "20140102120000.1"),
        ("20161231235960", 1, "20170101235960"),
        ("20140101120000-0500", 1, "20140102120000-0500"),
        ("2014-0500", 1, "2014-0500"),
        ("2014+1400", 365, "2015+1400"),
        ("20140101120000-0500-20140102120000-0500", 1, "20140102120000-0500-20140103120000-0500"),
        ("20140101120000+0100-20140102120000-0500", -1, "20131231120000+0100-20140101120000-0500"),
        ("20140101-20140102", 1, "20140102-20140103"),
        # Not a valid UTC offset (-15 hours), so the hyphen separates a range to the year 1500.
        ("20140101120000-1500", 0, "20140101120000-1500"),
        ("2014-2015", 0, "2014-2015"),
        ("-20140101120000-0500", 1, "-20140102120000-0500"),
        ("20140101120000-0500-", 1, "20140102120000-0500-"),
        ("2014-", 1, "2014-"),
        ("-2014", 1, "-2014"),
        (" 20140101120000 - 20140102 ", 1, "20140102120000-20140103"),
        ("20140101\x00", 1, "20140102"),
        ("", 3, ""),
        (" ", 3, ""),
    ],
)
def test_dt_examples(value: str, days: int, expected: str) -> None:
    assert shift_dt(value, days) == expected


@pytest.mark.parametrize(
    "value",
    ["20140230", "20141301", "abcd", "201", "20140", "2014013", "20140100", "00000101",
     "2014010124", "201401011260", "20140101120061", "20140101120000+1500", "20140101120000+0160",
     "2014.5", "20140101.5", "20140101120000.", "20140101120000.1234567", "20140101120000+01",
     "-", "--", "2014--2015", "2014-2015-2016", "2014 2015", "2014-01-01", "2014-01-01T12:00:00",
     "٢٠١٤", "20140101120000Z", "+0100"],
)
def test_dt_invalid(value: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        shift_dt(value, 1)
    assert value.strip() not in str(info.value) or len(value.strip()) < 3


@pytest.mark.parametrize(("value", "days"), [("0001", -1), ("9999", 365), ("99991231235959", 1),
                                              ("2014", 10**30)])
def test_dt_out_of_calendar(value: str, days: int) -> None:
    with pytest.raises(InvalidValueError):
        shift_dt(value, days)


# --- robustness: arbitrary input either shifts or raises InvalidValueError ------------------------

date_like = st.text(alphabet="0123456789.-+ \x00", max_size=45)


@given(st.one_of(st.text(max_size=60), date_like), st.integers(-(10**12), 10**12))
def test_arbitrary_text_only_invalid_value_error(value: str, days: int) -> None:
    for fn in (shift_da, shift_dt):
        try:
            result = fn(value, days)
        except InvalidValueError as exc:
            message = str(exc)
            stripped = value.strip(" \x00")
            if len(stripped) >= 8:
                assert stripped not in message
        else:
            assert isinstance(result, str)
            assert set(result) <= set("0123456789.-+")


@given(date_like)
def test_valid_results_are_valid_again(value: str) -> None:
    try:
        shifted = shift_dt(value, 17)
    except InvalidValueError:
        return
    assert shift_dt(shifted, 0) == shifted


# --- multi-valued attributes --------------------------------------------------------------------


def test_shift_multi_string() -> None:
    assert shift_multi("20140101\\20140201", 1, shift_da) == "20140102\\20140202"
    assert shift_multi("20140101", 1, shift_da) == "20140102"
    assert shift_multi("20140101\\", 1, shift_da) == "20140102\\"
    assert shift_multi("20140101120000-0500\\2014", 1, shift_dt) == "20140102120000-0500\\2014"


def test_shift_multi_lists() -> None:
    assert shift_multi(["20140101", "20140201"], -1, shift_da) == ["20131231", "20140131"]
    assert shift_multi(("20140101",), -1, shift_da) == ["20131231"]
    multi = MultiValue(str, ["20140101120000", "20140201"])
    result = shift_multi(multi, 1, shift_dt)
    assert isinstance(result, list) and result == ["20140102120000", "20140202"]
    assert shift_multi([], 1, shift_da) == []
    assert shift_multi(["20140101", None], 1, shift_da) == ["20140102", ""]
    assert shift_multi(None, 1, shift_da) is None


def test_shift_multi_with_pydicom_element() -> None:
    elem = DataElement(0x00080020, "DA", ["20200310", "20200311"])
    elem.value = shift_multi(elem.value, -10, shift_da)
    assert list(elem.value) == ["20200229", "20200301"]
    assert elem.VM == 2


def test_shift_multi_invalid_component() -> None:
    with pytest.raises(InvalidValueError):
        shift_multi("20140101\\20140230", 1, shift_da)
    with pytest.raises(InvalidValueError):
        shift_multi(["20140101", "garbage"], 1, shift_da)
    with pytest.raises(InvalidValueError):
        shift_multi(20140101, 1, shift_da)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError):
        shift_multi(b"20140101", 1, shift_da)  # type: ignore[arg-type]
