"""Shape detectors: phone, e-mail, SSN, record numbers, ages, addresses, institutions.

Each has positives and hard negatives: clinical strings that look like the shape."""

from __future__ import annotations

import pytest

from medveil.text.names import first_names
from medveil.text.patterns import (
    find_addresses,
    find_ages,
    find_emails,
    find_ids,
    find_institutions,
    find_phones,
    find_ssns,
)
from medveil.text.spans import merge


def found(detector, text: str) -> list[str]:
    return [text[s.start:s.end] for s in merge(detector(text))]


def institutions(text: str) -> list[str]:
    return found(lambda t: find_institutions(t, first_names()), text)


@pytest.mark.parametrize(("text", "expected"), [
    ("mail jsmith@example.org now", ["jsmith@example.org"]),
    ("mary.o'neil+rad@mail.hospital.co.uk", ["mary.o'neil+rad@mail.hospital.co.uk"]),
    ("Mary.Smith@Example.COM", ["Mary.Smith@Example.COM"]),
    ("<a_b-c@d-e.io>", ["a_b-c@d-e.io"]),
])
def test_emails(text, expected):
    assert found(find_emails, text) == expected


@pytest.mark.parametrize("text", ["user@host", "a@b.c", "@example.org", "T2@3T", "Dr. Smith @ 10:15"])
def test_not_emails(text):
    assert find_emails(text) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("(555) 123-4567", "(555) 123-4567"),
    ("555-123-4567", "555-123-4567"),
    ("555.123.4567", "555.123.4567"),
    ("+1 555 123 4567", "+1 555 123 4567"),
    ("+1-555-123-4567", "+1-555-123-4567"),
    ("1-555-123-4567", "1-555-123-4567"),
    ("call 555-123-4567 x204", "555-123-4567 x204"),
    ("tel 555 123 4567", "555 123 4567"),
    ("Tel.: 5551234567", "5551234567"),
    ("fax: 123-4567", "123-4567"),
    ("Ph (555)123-4567", "(555)123-4567"),
    ("phone: +44 20 7946 0958", "+44 20 7946 0958"),
])
def test_phones(text, expected):
    assert found(find_phones, text) == [expected]


@pytest.mark.parametrize("text", [
    "555 123 4567", "123-45-6789", "2014-03-21", "512x512", "1.2.840.113.6195", "TR 2000 TE 80",
    "120 100 2000", "ph 7.4", "tel 12", "-125.5", "P4^P101^S108^I0", "5551234567",
])
def test_not_phones(text):
    assert find_phones(text) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("SSN 123-45-6789", "123-45-6789"),
    ("123-45-6789", "123-45-6789"),
    ("SSN: 123456789", "123456789"),
    ("social security number 123 45 6789", "123 45 6789"),
])
def test_ssns(text, expected):
    assert found(find_ssns, text) == [expected]


@pytest.mark.parametrize("text", ["2014-03-21", "555-123-4567", "123-456-789", "1123-45-6789", "123-45-67890",
                                  "123456789"])
def test_not_ssns(text):
    assert find_ssns(text) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("MRN 12345", "12345"), ("MRN: A-12345", "A-12345"), ("MR# 998877", "998877"),
    ("ID: ABC123", "ABC123"), ("Acc# A79596346", "A79596346"), ("accession number 4478812", "4478812"),
    ("Patient ID 00123", "00123"), ("Med Rec No. 55123", "55123"), ("Visit #V123", "V123"),
    ("PT-4667-37", "PT-4667-37"), ("RAD225780X24", "RAD225780X24"), ("A79596346", "A79596346"),
    ("case 1234567 reviewed", "1234567"), ("12-3456-78", "12-3456-78"),
])
def test_ids(text, expected):
    assert found(find_ids, text) == [expected]


@pytest.mark.parametrize("text", [
    "120 kVp", "512", "512x512", "1024x1024x300", "100000ms", "24627-2", "123456", "T2W_TSE_320",
    "1.2.840.10008.5.1.4.1.1.2", "ID 7", "MRN pending", "ep2d_diff_3scan_trace_p2", "B1000",
    "P4^P101^S108^I0", "-125.5", "3.0T", "ID: ANON", "Series 1201",
])
def test_not_ids(text):
    assert find_ids(text) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("92 years", "92 years"), ("95 yo F", "95 yo"), ("95yo", "95yo"), ("93 y/o", "93 y/o"),
    ("92-year-old male", "92-year-old"), ("age 91", "age 91"), ("Aged 104", "Aged 104"),
    ("093Y", "093Y"), ("ninety-two year old", "ninety-two year old"), ("91 years old", "91 years old"),
    ("Age: 90", "Age: 90"),
])
def test_ages_over_89(text, expected):
    assert found(find_ages, text) == [expected]


@pytest.mark.parametrize("text", [
    "89 years", "45 yo", "TR 2000 TE 80", "age 45", "090M", "095D", "95%", "120 kVp", "95 mm",
    "92 images", "age 200", "071Y", "Page 91",
])
def test_ages_not_flagged(text):
    assert find_ages(text) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("123 Main St", ["123 Main St"]),
    ("lives at 45 Elm Street Apt 4 with", ["45 Elm Street Apt 4"]),
    ("12B North Oak Avenue, Suite 200", ["12B North Oak Avenue, Suite 200"]),
    ("1600 Pennsylvania Ave.", ["1600 Pennsylvania Ave."]),
    ("PO Box 12", ["PO Box 12"]),
    ("P.O. Box 4471", ["P.O. Box 4471"]),
    ("Springfield, IL 62704", ["Springfield, IL 62704"]),
    ("Springfield IL 62704-1234", ["Springfield IL 62704-1234"]),
    ("New York, New York 10001", ["New York, New York 10001"]),
    ("IL 62704", ["IL 62704"]),
    ("zip 62704-1234", ["62704-1234"]),
    ("from Houston, TX today", ["Houston, TX"]),
])
def test_addresses(text, expected):
    assert found(find_addresses, text) == expected


@pytest.mark.parametrize("text", [
    "1 CHEST CT", "5 MIN DR", "CHEST, PA", "3 PHASE LIVER CT", "21 Mar 2014 Dr. Patel", "Smith, MD",
    "HEAD, CT", "Knee, OR", "62704", "2 VIEWS PA", "CT HEAD, NM BONE", "seen 3 times", "PA 2 views",
    "Boston, MA",
])
def test_not_addresses(text):
    assert find_addresses(text) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("Springfield General Hospital", ["Springfield General Hospital"]),
    ("from Mercy Medical Center today", ["Mercy Medical Center"]),
    ("Mayo Clinic", ["Mayo Clinic"]),
    ("CT HEAD SPRINGFIELD GENERAL HOSPITAL", ["SPRINGFIELD GENERAL HOSPITAL"]),
    ("Intermountain Health System", ["Intermountain Health System"]),
    ("University of Chicago", ["University of Chicago"]),
    ("Stanford University", ["Stanford University"]),
    ("St. Mary's", ["St. Mary's"]),
    ("St Luke's Hospital", ["St Luke's Hospital"]),
    ("ST JOSEPH", ["ST JOSEPH"]),
    ("Radiology Associates", ["Radiology Associates"]),
    ("Hospital of the University of Pennsylvania", ["Hospital of the University of Pennsylvania"]),
    ("Hôpital Européen Georges-Pompidou", ["Hôpital Européen Georges-Pompidou"]),
    ("Hospital of Springfield CT HEAD", ["Hospital of Springfield"]),
])
def test_institutions(text, expected):
    assert institutions(text) == expected


@pytest.mark.parametrize("text", [
    "OUTSIDE HOSPITAL", "outside hospital", "CT HEAD OUTSIDE HOSPITAL", "hospital course",
    "ST SEGMENT ELEVATION", "Clinical history", "clinic visit", "ST 5mm", "Transferred from Outside Hospital",
    "Hospital", "CLINIC", "University", "Imaging Center", "Department of Radiology", "STAT",
])
def test_not_institutions(text):
    assert institutions(text) == []
