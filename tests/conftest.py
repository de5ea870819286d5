"""Shared fixtures: keys, datasets with known PHI, and the ../shared data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from medveil.pseudonym import Key

# No per-example deadline (a loaded CI machine is slow, not wrong); in CI the examples are
# derandomised so that a run is reproducible, while local runs keep exploring.
settings.register_profile("medveil", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("medveil")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

#: Values planted in :func:`phi_dataset`; none may survive de-identification.
PHI = {
    "PatientName": "SMITHERS^WAYLON^Q",
    "PatientID": "MRN-0099123",
    "PatientBirthDate": "19480215",
    "InstitutionName": "Springfield Nuclear Clinic",
    "ReferringPhysicianName": "HIBBERT^JULIUS",
    "AccessionNumber": "ACC7781234",
    "OtherPatientIDs": "OLD-55123",
}
STUDY_UID = "1.2.826.0.1.3680043.8.498.1001"
SERIES_UID = "1.2.826.0.1.3680043.8.498.1002"
SOP_UID = "1.2.826.0.1.3680043.8.498.1003"
FOR_UID = "1.2.826.0.1.3680043.8.498.1004"
REF_UID = "1.2.826.0.1.3680043.8.498.1005"


@pytest.fixture
def key() -> Key:
    return Key(b"k" * 32)


@pytest.fixture
def other_key() -> Key:
    return Key(b"z" * 32)


def phi_dataset() -> Dataset:
    """A CT-like dataset carrying every kind of header PHI the engine must handle."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = SOP_UID
    ds.file_meta.SourceApplicationEntityTitle = "SPRINGFIELD_CT"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = SOP_UID
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = SERIES_UID
    ds.FrameOfReferenceUID = FOR_UID
    ds.Modality = "CT"
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    ds.StudyDate = "20200310"
    ds.SeriesDate = "20200310"
    ds.AcquisitionDateTime = "20200310101500.123456+0100"
    ds.StudyTime = "101500"
    ds.PatientSex = "M"
    ds.PatientAge = "072Y"
    ds.StationName = "CT01"
    ds.Manufacturer = "ACME"
    ds.StudyDescription = "CT CHEST W/O CONTRAST"
    ds.StudyUpdateDateTime = "20200311090000"
    ref = Dataset()
    ref.ReferencedSOPClassUID = CTImageStorage
    ref.ReferencedSOPInstanceUID = REF_UID
    ds.ReferencedImageSequence = Sequence([ref])
    source = Dataset()
    source.ReferencedSOPClassUID = CTImageStorage
    source.ReferencedSOPInstanceUID = REF_UID
    source.PatientName = PHI["PatientName"]  # unlisted place: nested copy of the name
    ds.SourceImageSequence = Sequence([source])
    block = ds.private_block(0x0009, "ACME_PRIVATE 1.0", create=True)
    block.add_new(0x10, "LO", PHI["PatientName"])
    block.add_new(0x11, "DS", "1.5")
    ds.add_new(0x60003000, "OW", b"\x00\x01" * 8)
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60000011, "US", 4)
    ds.add_new(0x60004000, "LT", "overlay by HIBBERT")
    ds.add_new(0x50000005, "US", 1)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.add_new(0x7FE00010, "OW", bytes(range(32)))
    return ds


def image_dataset(**changes) -> Dataset:
    """``phi_dataset()`` with *changes*; the file meta follows a changed SOP Instance UID."""
    ds = phi_dataset()
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    if "SOPInstanceUID" in ds:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


@pytest.fixture
def phi_ds() -> Dataset:
    return phi_dataset()


#: The test now running (set by :func:`pytest_runtest_setup`), so that :func:`shared_path` can check its markers.
_running: pytest.Item | None = None


def pytest_runtest_setup(item: pytest.Item) -> None:
    global _running
    _running = item


def shared_path(*parts: str) -> Path:
    """A path under ../shared; the test skips when it is absent.

    A test that calls this must carry the ``shared`` marker (``-m "not shared"`` deselects them all on a
    clone without the data), so a missing marker is an error here rather than a silent skip.
    """
    if _running is not None and _running.get_closest_marker("shared") is None:
        pytest.fail(f"{_running.nodeid} reads ../shared: mark it @pytest.mark.shared", pytrace=False)
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared/{'/'.join(parts)} is not available")
    return path


@pytest.fixture(autouse=True)
def _fresh_reading_cache():
    """Each test starts with an empty crop-reading cache: scripted engines reuse names across tests."""
    from medveil.pixels.detect import SERIES_CACHE

    SERIES_CACHE.clear()
    yield
    SERIES_CACHE.clear()
