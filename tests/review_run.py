"""A small real run for the review tests: a burned-in CT, a clean MR, and two quarantined inputs.

- ``PATIENT_SMITH/CT/ct.dcm``: pydicom's CT with a name, MRN and birth date burned
  into its pixels (masked by the tcia profile's Clean Pixel Data option);
- ``PATIENT_SMITH/MR/mr.dcm``: pydicom's MR, released with header changes only;
- ``PATIENT_SMITH/MR/broken.dcm``: an MR without Study Instance UID, quarantined
  ("cannot be named") and fixable by adding one: the release test's file;
- ``PATIENT_SMITH/MR/torn.dcm``: a DICOM prefix and nothing readable after it, quarantined:
  the drop test's file;
- ``PATIENT_SMITH/notes.txt``: not DICOM, skipped.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

from medveil import deidentify_path, get_profile
from medveil.pseudonym import generate_key_file
from medveil.synth.burn import burn

NAME, MRN = "SMITHERS^WAYLON", "MRN0099123"
PHI_WORDS = ("SMITHERS", "WAYLON", "MRN0099123", "Springfield", "PATIENT_SMITH")
BROKEN = "broken.dcm"


@dataclass
class ReviewRun:
    root: Path
    input: Path
    output: Path
    workspace: Path
    key_file: Path
    summary: object

    def copy_to(self, target: Path) -> ReviewRun:
        """An independent copy (decisions change the workspace and the release tree)."""
        shutil.copytree(self.root, target, symlinks=True)
        return ReviewRun(target, target / "input", target / "output", target / "workspace", target / "key",
                         self.summary)


def _header(ds: pydicom.Dataset) -> None:
    ds.PatientName = NAME
    ds.PatientID = MRN
    ds.PatientBirthDate = "19480215"
    ds.InstitutionName = "Springfield Nuclear Clinic"


def make_run(root: Path) -> ReviewRun:
    """Write the inputs and de-identify them with the tcia profile into *root*."""
    source = root / "input" / "PATIENT_SMITH"
    (source / "CT").mkdir(parents=True)
    (source / "MR").mkdir(parents=True)
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    _header(ct)
    burn(ct, [("", "SMITHERS, WAYLON"), ("ID: ", MRN), ("DOB: ", "02/15/1948")])
    ct.save_as(source / "CT" / "ct.dcm")
    mr = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    _header(mr)
    mr.save_as(source / "MR" / "mr.dcm")
    del mr.StudyInstanceUID
    mr.SOPInstanceUID = mr.SOPInstanceUID + ".9"
    mr.save_as(source / "MR" / BROKEN)
    (source / "notes.txt").write_text(f"export for {NAME} {MRN}\n")
    (source / "MR" / "torn.dcm").write_bytes(bytes(128) + b"DICM" + bytes(range(256)) * 4)
    key_file = root / "key"
    key = generate_key_file(key_file)
    summary = deidentify_path(root / "input", root / "output", policy=get_profile("tcia"), key=key,
                              workspace=root / "workspace")
    return ReviewRun(root, root / "input", root / "output", root / "workspace", key_file, summary)
