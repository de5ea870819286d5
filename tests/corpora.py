"""Where the real DICOM test corpora live: only files that are on disk, never downloads.

The logic lives in :mod:`medveil.synth.corpus` so that the tests and ``medveil
synth`` find the same corpora the same way; this module keeps the names the
tests import.
"""

from __future__ import annotations

from medveil.synth.corpus import (  # noqa: F401  (re-exported for the tests)
    default_corpora,
    deid_data_files,
    installed_corpora,
    pydicom_data_files,
    pydicom_files,
    shared_corpora,
)


def all_corpora():
    """The pip-installable corpora present here (not ../shared: those tests skip on their own)."""
    return installed_corpora()
