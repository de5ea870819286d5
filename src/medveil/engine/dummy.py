"""Dummy values (action D) per Value Representation.

A dummy must be valid for its VR (so Type 1 attributes stay valid) and
carry no information; the same constant is used everywhere so that outputs
are reproducible.
"""

from __future__ import annotations

from typing import Any

from medveil.engine.vrs import BINARY_VRS

DUMMY_TEXT = "ANONYMIZED"
DUMMY_DATE = "19000101"

_DUMMIES: dict[str, Any] = {
    "AE": DUMMY_TEXT, "CS": DUMMY_TEXT, "LO": DUMMY_TEXT, "LT": DUMMY_TEXT, "PN": DUMMY_TEXT,
    "SH": DUMMY_TEXT, "ST": DUMMY_TEXT, "UC": DUMMY_TEXT, "UT": DUMMY_TEXT,
    "AS": "000Y", "DA": DUMMY_DATE, "DT": DUMMY_DATE + "000000", "TM": "000000",
    "DS": "0", "IS": "0", "UR": "",
    "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0, "SV": 0, "UL": 0, "US": 0, "UV": 0,
    "AT": 0,
}


def dummy_for(vr: str) -> Any:
    """The dummy value for *vr*; binary VRs get an empty value."""
    return _DUMMIES.get(vr, b"" if vr in BINARY_VRS else "")


#: Values that the engine itself writes; the residual check ignores them.
GENERATED_VALUES = frozenset(v for v in _DUMMIES.values() if isinstance(v, str) and v)
