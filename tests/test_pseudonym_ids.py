"""Identifier pseudonyms: format, determinism, keying and padding normalisation."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medveil.errors import MedveilError, PolicyError
from medveil.pseudonym import IdFormat, Key, pseudonymize_id

KEY = Key(b"k" * 32)
OTHER = Key(b"z" * 32)
DEFAULT = IdFormat()


def test_default_format() -> None:
    assert DEFAULT == IdFormat(prefix="", digits=12)
    assert re.fullmatch(r"[0-9]{12}", pseudonymize_id(KEY, "patient-id", "MRN-0099123", DEFAULT))


@given(st.text(alphabet="ABCxyz019_-", max_size=10), st.integers(min_value=4, max_value=30), st.text())
def test_format_prefix_and_digits(prefix: str, digits: int, value: str) -> None:
    if len(prefix) + digits > 64:
        return
    fmt = IdFormat(prefix=prefix, digits=digits)
    result = pseudonymize_id(KEY, "accession", value, fmt)
    assert result.startswith(prefix)
    assert re.fullmatch(r"[0-9]+", result[len(prefix):])
    assert len(result) == len(prefix) + digits


def test_known_value() -> None:
    digest = hmac.new(b"k" * 32, b"patient-id\x00123", hashlib.sha256).digest()
    expected = "P" + str(int.from_bytes(digest, "big") % 10**8).zfill(8)
    assert pseudonymize_id(KEY, "patient-id", "123", IdFormat("P", 8)) == expected


@given(st.text(min_size=1))
def test_deterministic_and_keyed(value: str) -> None:
    first = pseudonymize_id(KEY, "patient-id", value, DEFAULT)
    assert first == pseudonymize_id(Key(b"k" * 32), "patient-id", value, DEFAULT)
    assert first != pseudonymize_id(OTHER, "patient-id", value, DEFAULT)


def test_kind_separates_domains() -> None:
    assert (pseudonymize_id(KEY, "patient-id", "12345", DEFAULT)
            != pseudonymize_id(KEY, "accession", "12345", DEFAULT))


@given(st.text(alphabet=st.characters(blacklist_characters=" \x00"), min_size=1).filter(str.strip))
def test_padding_normalised(value: str) -> None:
    expected = pseudonymize_id(KEY, "patient-id", value, DEFAULT)
    for padded in (value + " ", " " + value, "  " + value + "  ", value + "\x00", value + " \x00", value + "\x00 "):
        assert pseudonymize_id(KEY, "patient-id", padded, DEFAULT) == expected


def test_leading_zeros_and_inner_spaces_significant() -> None:
    plain = pseudonymize_id(KEY, "patient-id", "123", DEFAULT)
    assert pseudonymize_id(KEY, "patient-id", "0123", DEFAULT) != plain
    assert pseudonymize_id(KEY, "patient-id", "00123", DEFAULT) != pseudonymize_id(KEY, "patient-id", "0123", DEFAULT)
    assert pseudonymize_id(KEY, "patient-id", "1 23", DEFAULT) != plain
    assert pseudonymize_id(KEY, "patient-id", "123 ", DEFAULT) == plain


def test_few_collisions_in_sample() -> None:
    values = [f"MRN{i:07d}" for i in range(20_000)]
    assert len({pseudonymize_id(KEY, "patient-id", v, DEFAULT) for v in values}) == len(values)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"digits": 3},
        {"digits": 31},
        {"digits": 0},
        {"digits": -12},
        {"digits": "12"},
        {"digits": 12.0},
        {"digits": True},
        {"prefix": "ID "},
        {"prefix": "ID\n"},
        {"prefix": "ID/"},
        {"prefix": "ID\\"},
        {"prefix": "ÄB"},
        {"prefix": "١"},
        {"prefix": 5},
        {"prefix": "X" * 40, "digits": 25},
        {"prefix": "X" * 61, "digits": 4},
    ],
)
def test_invalid_formats_rejected(kwargs: dict) -> None:
    with pytest.raises(PolicyError):
        IdFormat(**kwargs)


def test_boundary_formats_accepted() -> None:
    assert IdFormat(digits=4).digits == 4
    assert IdFormat(digits=30).digits == 30
    assert IdFormat(prefix="X" * 34, digits=30).prefix == "X" * 34
    assert IdFormat(prefix="a-Z_9", digits=8).prefix == "a-Z_9"


def test_format_errors_are_medveil_errors() -> None:
    with pytest.raises(MedveilError):
        IdFormat(digits=2)
