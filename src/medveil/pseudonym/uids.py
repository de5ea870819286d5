"""Keyed UID pseudonyms under the 2.25 root.

PS3.5 B.2 lets anyone form a UID as "2.25." followed by the decimal value of
a 128-bit UUID.  The first 128 bits of an HMAC are as good as a random UUID
for uniqueness (a collision is about 2^-64 likely even across 2^32 UIDs), so
keyed pseudonyms need no registry and no shared state, and every file that
references a UID gets the same replacement independently.
"""

from __future__ import annotations

import re

from medveil.pseudonym.keys import Key, derive

#: PS3.5 9.1: components of digits, no leading zero unless the component is "0".
_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
_MAX_UID_LENGTH = 64


def pseudonymize_uid(key: Key, uid: str) -> str:
    """The keyed replacement for *uid*: ``2.25.<decimal of 128 HMAC bits>``.

    Padding (surrounding spaces, trailing NULs from the UI value padding) is
    removed first so a padded and an unpadded copy of one UID stay linked.
    The result is at most 44 characters (2^128 has 39 decimal digits) and a
    decimal integer never has a leading zero, so it is always a valid UID.
    """
    digest = derive(key, "uid", uid.strip().rstrip("\x00"))
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def is_valid_uid(value: str) -> bool:
    """Whether *value* has the UID syntax of PS3.5 9.1.

    Dotted decimal components, no leading zeros (except a lone "0"), no empty
    components, 1 to 64 characters.  Only ASCII digits count: Python's ``\\d``
    would also accept other scripts' digits.
    """
    return (isinstance(value, str) and 0 < len(value) <= _MAX_UID_LENGTH
            and _UID.fullmatch(value) is not None)
