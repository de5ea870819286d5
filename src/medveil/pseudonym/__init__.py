"""Keyed pseudonymisation: keys, UIDs, identifiers and dates, with no shared state.

Every function here is a pure function of the key and its input, so files can
be de-identified in any order, in parallel or on different machines, and
still get consistent pseudonyms and date offsets.
"""

from medveil.pseudonym.dates import (
           ShiftRange,
           patient_offset,
           shift_da,
           shift_dt,
           shift_multi,
)
from medveil.pseudonym.ids import IdFormat, pseudonymize_id
from medveil.pseudonym.keys import (
           Key,
           derive,
           generate_key_file,
           key_file_warnings,
           load_key,
           load_key_from_env,
           throwaway_key,
)
from medveil.pseudonym.uids import is_valid_uid, pseudonymize_uid

__all__ = [
           "IdFormat",
           "Key",
           "ShiftRange",
           "derive",
           "generate_key_file",
           "is_valid_uid",
           "key_file_warnings",
           "load_key",
           "load_key_from_env",
           "patient_offset",
           "pseudonymize_id",
           "pseudonymize_uid",
           "shift_da",
           "shift_dt",
           "shift_multi",
           "throwaway_key",
]
