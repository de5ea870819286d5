"""Keyed pseudonyms for Patient IDs, accession numbers and other identifiers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from medveil.errors import InvalidValueError
from medveil.pseudonym.keys import Key, derive

_PREFIX = re.compile(r"^[A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class IdFormat:
    """prefix + zero-padded decimal digits (the default 12 digits keep collisions
    below one in a million up to ~1,400 patients and are checked at run time)."""

    prefix: str = ""
    digits: int = 12

    def __post_init__(self) -> None:
        if not isinstance(self.digits, int) or not 4 <= self.digits <= 30:
            raise InvalidValueError("an ID format needs between 4 and 30 digits")
        if not _PREFIX.match(self.prefix) or len(self.prefix) + self.digits > 64:
            raise InvalidValueError("an ID prefix may use letters, digits, '_' and '-' (64 characters in all)")


def pseudonymize_id(key: Key, kind: str, value: str, fmt: IdFormat) -> str:
    """The keyed pseudonym of *value*; leading zeros and inner spaces are significant."""
    normalized = value.strip(" ").rstrip("\x00").strip(" ")
    number = int.from_bytes(derive(key, kind, normalized), "big") % (10 ** fmt.digits)
    return f"{fmt.prefix}{number:0{fmt.digits}d}"
