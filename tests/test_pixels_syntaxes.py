"""Every kind of pixel data in pydicom's test files goes through Clean Pixel Data end to end.

A scripted engine "reads" the patient's name in the top-left corner of every
image it is shown, so each file really gets a box masked; the run must write
the file, keep or losslessly change its transfer syntax as documented, and
leave every decoded sample outside the box as it was.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit, RLELossless

from medveil import deidentify_path, get_profile
from medveil.pixels import ocr
from medveil.pixels.frames import iter_frames
from medveil.pixels.ocr import Word
from medveil.pseudonym import generate_key_file
from medveil.synth.corpus import pydicom_data_files, pydicom_files


def find(name: str):
    """A test file from pydicom's bundled set or the pydicom-data package, never a download."""
    for folder in (pydicom_files(), pydicom_data_files()):
        if folder is not None and (folder / name).is_file():
            return folder / name
    return None


class CornerEngine:
    """Reads the patient's surname in the top-left corner of any image."""

    name = "corner"

    def read(self, image, *, line=False):
        height, width = image.shape[:2]
        return [Word("QUIMBY", (0, 0, max(2, width // 4), max(2, height // 8)), 0.99)]


@pytest.fixture(scope="module", autouse=True)
def corner_engine():
    ocr.register_engine("corner", CornerEngine)
    yield
    ocr._REGISTERED.pop("corner", None)
    ocr.get_engine.cache_clear()


POLICY = get_profile("tcia")
# The scripted engine "reads" every image whole: no screen (the screen has its own tests).
POLICY = dataclasses.replace(POLICY, pixels=dataclasses.replace(POLICY.pixels, engines=("corner",),
                                                                shipped_rules=False, screen="off"))

#: (file, what the transfer syntax becomes: None = unchanged)
CASES = [
    ("CT_small.dcm", None),                          # 16-bit signed MONOCHROME2
    ("RG1_UNCI.dcm", None),                          # MONOCHROME1 16-bit
    ("SC_rgb.dcm", None),                            # RGB 8-bit
    ("SC_rgb_16bit_2frame.dcm", None),               # RGB multi-frame
    ("SC_ybr_full_422_uncompressed.dcm", None),      # YBR_FULL_422 native
    ("emri_small_RLE.dcm", None),                    # multi-frame RLE Lossless
    ("MR_small_bigendian.dcm", None),                # Explicit VR Big Endian
    ("JPEG-LL.dcm", RLELossless),                    # JPEG Lossless (no encoder): RLE Lossless
    ("emri_small_jpeg_2k_lossless.dcm", JPEG2000Lossless),  # multi-frame JPEG 2000 Lossless: kept
    ("MR2_J2KI.dcm", ExplicitVRLittleEndian),        # lossy JPEG 2000: stored uncompressed
    ("SC_rgb_dcmtk_+eb+cy+np.dcm", None),           # JPEG Baseline YBR_FULL_422: masked block by block
    ("color3d_jpeg_baseline.dcm", None),            # multi-frame JPEG Baseline, block by block
]


@pytest.mark.parametrize("name, becomes", CASES)
def test_masked_through_the_runner(tmp_path, name, becomes):
    source = find(name)
    if source is None:
        pytest.skip(f"{name} is neither in pydicom nor in pydicom-data")
    original = pydicom.dcmread(source)
    original.PatientName = "QUIMBY^JOSEPH"
    folder = tmp_path / "in"
    folder.mkdir()
    original.save_as(folder / name)
    original = pydicom.dcmread(folder / name)
    summary = deidentify_path(folder, tmp_path / "out", policy=POLICY, key=generate_key_file(tmp_path / "k"))
    assert summary.written == 1, summary.reasons
    (out,) = sorted((tmp_path / "out").rglob("*.dcm"))
    after = pydicom.dcmread(out)

    syntax = original.file_meta.TransferSyntaxUID
    assert after.file_meta.TransferSyntaxUID == (becomes or syntax)
    assert after.BurnedInAnnotation == "NO"
    with sqlite3.connect(summary.workspace / "audit.sqlite") as db:
        rows = db.execute("SELECT category, detail FROM events WHERE category LIKE 'pixel%'").fetchall()
    # Large images are read in tiles, and this engine finds a "name" in each tile's corner.
    events = [json.loads(detail) for category, detail in rows if category == "pixel-box"]
    boxes = [event["box"] for event in events]
    assert boxes
    if becomes and becomes != syntax:
        assert "pixel-reencoded" in {category for category, _ in rows}
    pad = POLICY.pixels.padding
    frames_before = list(iter_frames(original))
    frames_after = list(iter_frames(after))
    assert len(frames_before) == len(frames_after) == int(original.get("NumberOfFrames") or 1)
    # YBR_FULL_422 shares chroma between pixel pairs: one pixel of slack at the box's sides;
    # JPEG Baseline is masked in whole blocks, whose chroma blends into the next block.
    slack = 1 if str(original.PhotometricInterpretation).endswith("422") else 0
    if syntax == JPEGBaseline8Bit:
        slack = pad = 32
    for index, (old, new) in enumerate(zip(frames_before, frames_after, strict=True)):
        # Each frame's masks follow its own text, so each frame is checked against its own boxes.
        mine = [event["box"] for event in events if event.get("frame") in (index, None)]
        assert mine, f"frame {index} has no masked box"
        outside = np.ones(old.shape[:2], dtype=bool)
        for x1, y1, x2, y2 in mine:
            outside[max(0, y1 - pad):y2 + pad, max(0, x1 - pad - slack):x2 + pad + slack] = False
        assert np.array_equal(old[outside], new[outside])
        x1, y1, x2, y2 = mine[0]
        inside = new[y1:y2, x1:x2]
        if syntax == JPEGBaseline8Bit:  # flat black blocks, up to rounding of the colour transform
            assert inside.size and int(inside.max()) <= 8
        else:
            assert inside.size and len(np.unique(inside.reshape(-1, *inside.shape[2:]), axis=0)) == 1


def test_undecodable_pixel_data_is_quarantined_not_released(tmp_path):
    source = find("JPEG-lossy.dcm")  # 12-bit JPEG Extended: no installed decoder reads it
    if source is None:
        pytest.skip("JPEG-lossy.dcm is not installed")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(source, folder / "x.dcm")
    summary = deidentify_path(folder, tmp_path / "out", policy=POLICY, key=generate_key_file(tmp_path / "k"))
    assert summary.written == 0 and summary.quarantined == 1
    (reason,) = summary.reasons
    assert "pixel data could not be cleaned" in reason or "cannot be masked" in reason
