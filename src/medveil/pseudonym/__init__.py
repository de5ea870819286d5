"""Keyed pseudonymisation: keys, UIDs, identifiers and dates, with no shared state."""

from medveil.pseudonym.dates import ShiftRange, patient_offset, shift_da, shift_dt, shift_multi
from medveil.pseudonym.ids import IdFormat, pseudonymize_id
from medveil.pseudonym.keys import Key, derive, generate_key_file, load_key, load_key_from_env, throwaway_key
from medveil.pseudonym.uids import is_valid_uid, pseudonymize_uid

__all__ = ["Key", "derive", "generate_key_file", "load_key", "load_key_from_env", "throwaway_key",
           "pseudonymize_uid", "is_valid_uid", "IdFormat", "pseudonymize_id", "ShiftRange",
           "patient_offset", "shift_da", "shift_dt", "shift_multi"]
