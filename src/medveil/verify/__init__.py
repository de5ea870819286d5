"""The verification gate: rescan de-identified output for PHI that got through.

Header text, private values, structured-report text, overlay planes and the
pixels themselves (by OCR) are searched for the identifiers the inputs
carried and for generic PHI patterns. Used by ``medveil verify`` on a
release tree and by ``medveil deidentify --verify`` on each object before it
is written.
"""

from medveil.verify.fingerprints import (
    Fingerprints,
    WordMatcher,
    identifier_words,
    normalise,
)
from medveil.verify.scan import Finding, scan_dataset

__all__ = ["Finding", "Fingerprints", "WordMatcher", "identifier_words", "normalise", "scan_dataset"]
