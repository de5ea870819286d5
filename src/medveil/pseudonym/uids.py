"""Keyed UID pseudonyms under the 2.25 root.

PS3.5 B.2 lets anyone form a UID as "2.25." followed by the decimal value of
a 128-bit UUID.  The first 128 bits of an HMAC are as good as a random UUID
for uniqueness (collisions are ~2^-64 likely across 2^32 UIDs), so keyed
pseudonyms need no registry and no shared state.
"""

from __future__ import annotations

import re

from medveil.pseudonym.keys import Key, derive

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def pseudonymize_uid(key: Key, uid: str) -> str:
    digest = derive(key, "uid", uid.strip().rstrip("\x00"))
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def is_valid_uid(value: str) -> bool:
    """UID syntax of PS3.5 9.1: dotted decimal, no leading zeros, at most 64 characters."""
    return 0 < len(value) <= 64 and bool(_UID.match(value))
