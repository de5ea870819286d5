"""The file's own identifiers, found in every written form."""

from __future__ import annotations

import pytest

from medveil.text.forms import Person, parse_person
from medveil.text.known import KnownIdentifiers, KnownMatcher


def found(known: KnownIdentifiers, text: str) -> list[tuple[str, str]]:
    return [(text[s.start:s.end], s.category) for s in KnownMatcher(known).find(text)]


def names_found(value: str, text: str) -> list[str]:
    return [t for t, category in found(KnownIdentifiers(names=(value,)), text) if category == "name"]


@pytest.mark.parametrize("text", [
    "SMITH^JOHN^A", "SMITH^JOHN", "John Smith", "Smith, John", "J. Smith", "J Smith", "Smith J",
    "Smith, J.", "JOHN A SMITH", "John A. Smith", "John Adam Smith", "J.A. Smith", "smith john",
    "John S.",
])
def test_every_written_form_of_a_person_name(text):
    assert names_found("SMITH^JOHN^ADAM", text) == [text]


def test_forms_inside_text():
    assert names_found("SMITH^JOHN^A", "CT HEAD for John A Smith today") == ["John A Smith"]
    assert names_found("SMITH^JOHN", "reviewed by SMITH J, attending") == ["SMITH J"]


def test_components_alone():
    assert names_found("SMITH^JOHN", "Smith") == ["Smith"]
    assert names_found("SMITH^JOHN", "Johnny Smithers") == []
    assert names_found("SMITH^JOHN", "JOHN") == ["JOHN"]


def test_short_components_match_alone_only_capitalised():
    assert names_found("LI^WEI", "Li") == ["Li"]
    assert names_found("LI^WEI", "LI") == ["LI"]
    assert names_found("LI^WEI", "li") == []
    assert names_found("LI^WEI", "Wei Li") == ["Wei Li"]


def test_clinical_components_match_only_in_full_forms():
    assert names_found("HEAD^JOHN", "HEAD ROUTINE") == []
    assert names_found("HEAD^JOHN", "John Head") == ["John Head"]


def test_initials_only_as_a_whole_non_clinical_token():
    assert names_found("SMITH^JOHN", "read by JS") == ["JS"]
    assert names_found("SMITH^JOHN^ADAM", "JAS") == ["JAS"]
    assert names_found("SMITH^JOHN", "js") == []
    assert names_found("SMITH^JOHN", "JSX") == []
    assert names_found("THOMAS^CHARLES", "CT HEAD") == []  # Charles Thomas's "CT" stays a CT
    assert names_found("THOMAS^CHARLES", "Charles Thomas") == ["Charles Thomas"]


def test_placeholders_and_empty_names_give_nothing():
    assert not KnownMatcher(KnownIdentifiers(names=("NAME^PATIENT", "ANONYMIZED", "^", "")))
    assert not KnownMatcher(KnownIdentifiers())


@pytest.mark.parametrize(("value", "people"), [
    ("SMITH^JOHN^A^DR^JR", [Person("SMITH", "JOHN", "A")]),
    ("John Smith", [Person("Smith", "John", "")]),
    ("Dr. John A. Smith, MD", [Person("Smith", "John", "A.")]),
    ("Smith, John A", [Person("Smith", "John", "A")]),
    ("SMITH", [Person("SMITH", "", "")]),
    ("^JOHN", [Person("JOHN", "", "")]),
    ("Yamada^Tarou=山田^太郎", [Person("Yamada", "Tarou", ""), Person("山田", "太郎", "")]),
    ("VAN DER BERG^ANNA", [Person("VAN DER BERG", "ANNA", "")]),
    ("NAME^PATIENT", []),
    ("Last Name^First Name", []),
    ("BYRN^MD", [Person("BYRN", "MD", "")]),
    ("Kari Byrn", [Person("Byrn", "Kari", "")]),
    ("Ms. Kari Olsen Jr.", [Person("Olsen", "Kari", "")]),
])
def test_parse_person(value, people):
    assert parse_person(value) == people


def test_multi_word_family_names():
    assert names_found("VAN DER BERG^ANNA", "Anna van der Berg") == ["Anna van der Berg"]
    assert names_found("SMITH-JONES^MARY", "Mary Smith Jones") == ["Mary Smith Jones"]


@pytest.mark.parametrize(("value", "text", "expected"), [
    ("00123456", "ID 00123456", "00123456"),
    ("00123456", "ID 123456", "123456"),
    ("123456", "ID 00123456", "00123456"),
    ("PT-4667-37", "PT466737", "PT466737"),
    ("PT466737", "PT-4667-37", "PT-4667-37"),
    ("PT-4667-37", "pt 4667 37", "pt 4667 37"),
    ("MRN-0099123", "mrn0099123", "mrn0099123"),
])
def test_ids_with_and_without_zeros_and_separators(value, text, expected):
    assert found(KnownIdentifiers(ids=(value,)), text) == [(expected, "id")]


@pytest.mark.parametrize("value", ["1", "12", "001", "CT", "ANONYMIZED"])
def test_short_or_meaningless_ids_are_not_searched(value):
    assert not KnownMatcher(KnownIdentifiers(ids=(value,)))


def test_ids_do_not_match_inside_longer_numbers():
    assert found(KnownIdentifiers(ids=("123456",)), "91234567 and 1234567") == []


def test_own_dates_in_any_format():
    known = KnownIdentifiers(dates=("20140321",))
    for text in ("20140321", "140321", "3/21/14", "21.03.14", "2014-3-21"):
        assert found(known, f"CT {text} HEAD") == [(text, "date")], text
    assert found(known, "20140322") == []


def test_institution_variants():
    known = KnownIdentifiers(institutions=("Saint Mary's Hospital & Medical Center",))
    assert found(known, "St Marys Hospital and Medical Center") == [
        ("St Marys Hospital and Medical Center", "institution")]
    springfield = KnownIdentifiers(institutions=("Springfield General Hospital",))
    for text in ("SPRINGFIELD GENERAL HOSPITAL", "Springfield General Hosp", "Springfield General", "SGH"):
        assert found(springfield, text) == [(text, "institution")], text
    assert found(springfield, "sgh") == []


@pytest.mark.parametrize("value", ["RADIOLOGY", "Department of Radiology", "CT", "MR1", "The Clinic"])
def test_institution_values_that_identify_nothing_are_not_searched(value):
    assert not KnownMatcher(KnownIdentifiers(institutions=(value,)))


def test_station_names_are_searched_verbatim():
    assert found(KnownIdentifiers(institutions=("CTAWP73396",)), "from CTAWP73396") == [
        ("CTAWP73396", "institution")]


def test_addresses_whole_and_by_part():
    known = KnownIdentifiers(addresses=("742 Evergreen Terrace^Springfield^IL^62704",))
    for text in ("742 Evergreen Terrace", "742 EVERGREEN TERR", "Springfield", "62704"):
        assert [t for t, _ in found(known, f"lives at {text} now")] == [text], text
    assert found(known, "IL") == []


def test_phones_in_any_grouping():
    known = KnownIdentifiers(phones=("+1 (217) 555-0134",))
    for text in ("217-555-0134", "(217) 555 0134", "2175550134", "+1 217 555 0134", "555-0134"):
        assert [t for t, _ in found(known, f"call {text}")] == [text], text
    assert found(known, "55501345") == []


def test_other_values_are_removed_verbatim():
    assert found(KnownIdentifiers(other=("Bluebird",)), "bluebird cohort") == [("bluebird", "other")]
