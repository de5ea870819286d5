#!/usr/bin/env python3
"""Write a small demo input tree from pydicom's bundled test files.

The tree looks like a real export: directory names carry a patient's name
and MRN, headers carry names, IDs, dates, an institution, physicians and a
private tag copying the patient's name.  The CT image has the patient's
name, MRN and birth date burned into its pixels and the secondary capture is
presumed to carry burned-in text: the ``tcia`` profile's Clean Pixel Data
option masks them.  One non-DICOM file shows what quarantine does.  All
identifiers here are invented.

Usage: python tools/make_sample.py OUT_DIR
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pydicom
import pydicom.data

from medveil.synth.burn import burn

# Only the files inside the pydicom wheel: asking pydicom for others may
# trigger a download, and the demo must work offline.
TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
FILES = {
    "CT_small.dcm": "SMITH^JOHN_MRN0042/CT_ABDOMEN_2019/IMG0001.dcm",
    "MR_small.dcm": "SMITH^JOHN_MRN0042/MR_HEAD_2020/IMG0001.dcm",
    "JPEG2000.dcm": "SMITH^JOHN_MRN0042/CT_J2K/IMG0001.dcm",
    "rtplan.dcm": "DOE^JANE_MRN0777/RT/plan.dcm",
    "rtdose.dcm": "DOE^JANE_MRN0777/RT/dose.dcm",
    "test-SR.dcm": "DOE^JANE_MRN0777/REPORT/sr.dcm",
    "SC_rgb_small_odd.dcm": "DOE^JANE_MRN0777/SCREENSHOT/sc.dcm",
}


def _inject(ds: pydicom.Dataset, name: str, mrn: str) -> None:
    ds.PatientName = name
    ds.PatientID = mrn
    ds.PatientBirthDate = "19610412"
    ds.PatientAddress = "12 Elm Street, Springfield"
    ds.InstitutionName = "Springfield General Hospital"
    ds.ReferringPhysicianName = "HOUSE^GREGORY"
    ds.AccessionNumber = "ACC20190412"
    ds.StudyDate = "20190412"
    ds.OtherPatientIDs = mrn + "-OLD"
    block = ds.private_block(0x0029, "DEMO_VENDOR 1.0", create=True)
    block.add_new(0x10, "LO", name)


def main(out: Path) -> int:
    if out.exists():
        shutil.rmtree(out)
    for source, target in FILES.items():
        path = out / target
        path.parent.mkdir(parents=True, exist_ok=True)
        ds = pydicom.dcmread(TEST_FILES / source)
        name, mrn = ("SMITH^JOHN", "MRN0042") if target.startswith("SMITH") else ("DOE^JANE", "MRN0777")
        _inject(ds, name, mrn)
        if source == "CT_small.dcm":
            burn(ds, [("", "SMITH, JOHN"), ("ID: ", mrn), ("DOB: ", "04/12/1961")])
        ds.save_as(path)
    (out / "SMITH^JOHN_MRN0042" / "README.txt").write_text("exported by PACS for SMITH^JOHN\n")
    print(f"demo input written to {out} ({len(FILES)} DICOM files, 1 text file)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(main(Path(sys.argv[1])))
