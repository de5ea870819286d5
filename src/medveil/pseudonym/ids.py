"""Keyed pseudonyms for Patient IDs, accession numbers and other identifiers.

An identifier is replaced by a prefix plus a fixed number of decimal digits
taken from an HMAC of the original, so the same original always gets the same
pseudonym under one key and the pseudonym fits the LO/SH value limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medveil.errors import PolicyError
from medveil.pseudonym.keys import Key, derive

_PREFIX = re.compile(r"[A-Za-z0-9_-]*")
_MIN_DIGITS = 4
_MAX_DIGITS = 30
#: LO, the longest VR used for identifiers, holds 64 characters.
_MAX_LENGTH = 64


@dataclass(frozen=True)
class IdFormat:
    """How a pseudonymous identifier looks: *prefix* + *digits* zero-padded decimals.

    With the default 12 digits, collisions stay below one in a million up to
    about 1,400 distinct originals; the batch runner checks for them anyway.
    Fewer than 4 digits would collide almost at once, more than 30 adds
    nothing over the HMAC's strength.  The prefix is restricted to characters
    that are safe in every string VR and in file names.  Invalid formats are
    configuration mistakes, hence :class:`PolicyError`.
    """

    prefix: str = ""
    digits: int = 12

    def __post_init__(self) -> None:
        if (not isinstance(self.digits, int) or isinstance(self.digits, bool)
                or not _MIN_DIGITS <= self.digits <= _MAX_DIGITS):
            raise PolicyError(f"an ID format needs between {_MIN_DIGITS} and {_MAX_DIGITS} digits")
        if not isinstance(self.prefix, str) or _PREFIX.fullmatch(self.prefix) is None:
            raise PolicyError("an ID prefix may only use letters, digits, '_' and '-'")
        if len(self.prefix) + self.digits > _MAX_LENGTH:
            raise PolicyError(f"an ID prefix and its digits must fit in {_MAX_LENGTH} characters")

    def number(self, value: int) -> str:
        """The identifier for sequence number *value* (sequential pseudonyms)."""
        if not 0 <= value < 10 ** self.digits:
            raise PolicyError(f"sequence number does not fit in {self.digits} digits")
        return f"{self.prefix}{value:0{self.digits}d}"


def _normalize(value: str) -> str:
    """*value* without DICOM padding: surrounding spaces and trailing NULs.

    Padding is not part of an identifier, so "123 " and "123" must stay
    linked; leading zeros and inner spaces are kept because IDs are strings
    ("0123" and "123" are different patients).
    """
    return value.rstrip(" \x00").lstrip(" ")


def pseudonymize_id(key: Key, kind: str, value: str, fmt: IdFormat) -> str:
    """The keyed pseudonym of identifier *value* of the given *kind*.

    *kind* ("patient-id", "accession", ...) is the HMAC purpose, so equal
    text in different roles gets unrelated pseudonyms.  Reducing 256 HMAC
    bits modulo 10**digits has a negligible bias (at most 10**30 / 2**256).
    """
    number = int.from_bytes(derive(key, kind, _normalize(value)), "big") % (10 ** fmt.digits)
    return f"{fmt.prefix}{number:0{fmt.digits}d}"
