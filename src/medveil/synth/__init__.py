"""Synthetic test sets in the style of MIDI-B: real DICOM files, synthetic PHI, an answer key.

``synthesize`` takes real files (by default pydicom's test files and the
``pydicom-data`` and ``deid-data`` packages), groups them into synthetic
patients, studies and series with fresh UIDs, plants synthetic PHI wherever
real exports carry it, and writes ``input/``, ``answer_key.db`` (MIDI-B's
schema) and ``manifest.json``.  The answer key says what a de-identification
by the TCIA profile must do to each planted value; ``medveil validate``
scores a tool's output against it.
"""

from medveil.synth.build import SynthError, SynthSummary, synthesize
from medveil.synth.corpus import default_corpora

__all__ = ["SynthError", "SynthSummary", "default_corpora", "synthesize"]
