"""Kitware's dicom-anonymizer, doing per file what ``dicom-anonymizer IN OUT`` does.

The CLI lists only the top level of IN (no recursion) and writes a flat OUT,
so on a nested tree it would see nothing; the driver therefore walks the tree
itself and, for each file, does exactly what the CLI's loop does: skip files
without the "DICM" magic at offset 128 (counted as skipped, since the tool
would leave them out), then ``anonymize_dicom_file`` with no extra rules and
private tags deleted (the CLI's default without ``--keepPrivateTags``).
"""

from __future__ import annotations

from . import Peer

DRIVER = '''
from dicomanonymizer.anonymizer import isDICOMType
from dicomanonymizer.simpledicomanonymizer import anonymize_dicom_file


def setup():
    return None


def process(_state, src, dst):
    if not isDICOMType(str(src)):
        raise Skipped("no DICM magic")
    anonymize_dicom_file(str(src), str(dst), {}, True)
'''

PEER = Peer(
    name="anonymizer",
    requirement="dicom-anonymizer==2.1.0",
    distribution="dicom-anonymizer",
    driver=DRIVER,
    default="the CLI's per-file step: anonymize_dicom_file, no extra rules, private tags deleted",
)
