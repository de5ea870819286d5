"""The pieces of ``medveil synth``: burned-in text, synthetic identities, seeded UIDs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit
from pydicom.valuerep import PersonName

from medveil.synth.burn import burn, sidecar_boxes, unburnable_reason
from medveil.synth.fake import IDEOGRAPHIC_FORM, PN_FORMS, make_patient
from medveil.synth.plant import collides
from medveil.synth.seeds import new_uid

LINES = [("", "SMITH, JOHN"), ("ID: ", "MRN1234567"), ("DOB: ", "03/21/1960")]


def _image(rows=256, columns=320, *, photometric="MONOCHROME2", bits=16, stored=12, signed=False,
           frames=1, planar=0, syntax=ExplicitVRLittleEndian) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.Rows, ds.Columns = rows, columns
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, stored, stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.SamplesPerPixel = 3 if photometric == "RGB" else 1
    if photometric == "RGB":
        ds.PlanarConfiguration = planar
    if frames > 1:
        ds.NumberOfFrames = frames
    rng = np.random.default_rng(0)
    if photometric == "RGB":
        pixels = rng.integers(60, 120, size=(frames, rows, columns, 3), dtype=np.uint8)
        if planar:
            pixels = pixels.transpose(0, 3, 1, 2)
    elif bits == 8:
        pixels = rng.integers(50, 150, size=(frames, rows, columns), dtype=np.uint8)
    else:
        low, high = (-500, 1500) if signed else (100, 2000)
        pixels = rng.integers(low, high, size=(frames, rows, columns)).astype("<i2" if signed else "<u2")
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


@pytest.mark.parametrize("kind", [
    {"photometric": "MONOCHROME2", "bits": 16, "stored": 12},
    {"photometric": "MONOCHROME2", "bits": 16, "stored": 16, "signed": True},
    {"photometric": "MONOCHROME1", "bits": 8, "stored": 8},
    {"photometric": "RGB", "bits": 8, "stored": 8, "planar": 0},
    {"photometric": "RGB", "bits": 8, "stored": 8, "planar": 1},
    {"photometric": "MONOCHROME2", "bits": 16, "stored": 12, "frames": 3},
])
def test_burned_text_lands_in_its_boxes_in_frame_zero_only(kind):
    ds = _image(**kind)
    before = ds.pixel_array.copy()
    boxes = burn(ds, LINES)
    after = ds.pixel_array
    assert [box.text for box in boxes] == [value for _, value in LINES]
    frames = int(kind.get("frames", 1))
    if frames > 1:
        assert np.array_equal(before[1:], after[1:])
        before, after = before[0], after[0]
    changed = np.argwhere(np.any(before != after, axis=-1) if kind["photometric"] == "RGB" else before != after)
    assert changed.size
    # every change is in the drawn band at the top left, and each value box holds changed pixels
    assert changed[:, 0].max() < ds.Rows // 2 and changed[:, 1].max() < ds.Columns
    for box in boxes:
        (x1, y1), (x2, y2) = box.top_left, box.bottom_right
        assert 0 <= x1 < x2 < ds.Columns and 0 <= y1 < y2 < ds.Rows
        region = (before != after)[y1:y2 + 1, x1:x2 + 1]
        assert region.any()
        spec = json.loads(box.to_json())
        assert spec == {"text": box.text, "top_left": [x1, y1], "bottom_right": [x2, y2]}


def test_text_uses_the_frames_extremes_so_it_survives_windowing():
    ds = _image(photometric="MONOCHROME2", bits=16, stored=12)
    low, high = int(ds.pixel_array.min()), int(ds.pixel_array.max())
    burn(ds, LINES)
    values = set(np.unique(ds.pixel_array).tolist())
    assert high in values and low in values
    mono1 = _image(photometric="MONOCHROME1", bits=8, stored=8)
    low1 = int(mono1.pixel_array.min())
    burn(mono1, LINES)
    assert low1 in set(np.unique(mono1.pixel_array[:60]).tolist())  # bright text is low in MONOCHROME1


@pytest.mark.parametrize(("ds", "reason"), [
    (_image(rows=64, columns=64), "smaller"),
    (_image(syntax=JPEGBaseline8Bit), "native"),
    (_image(photometric="PALETTE COLOR", bits=8, stored=8), "photometric"),
])
def test_unburnable_images_say_why(ds, reason):
    assert reason in unburnable_reason(ds)
    with pytest.raises(ValueError):
        burn(ds, LINES)


def test_sidecar_boxes_keep_identifying_values_only(tmp_path):
    image = tmp_path / "a.dcm"
    image.write_bytes(b"")
    (tmp_path / "a.json").write_text(json.dumps({"filename": "a.dcm", "annotation": [
        {"key": {"text": "Name", "bbox": [1, 1, 5, 5]}, "value": {"text": "DOE JANE", "bbox": [6, 1, 40, 9]}},
        {"key": {"text": "Age", "bbox": [1, 10, 5, 15]}, "value": {"text": "67", "bbox": [6, 10, 12, 15]}},
    ]}))
    boxes = sidecar_boxes(image)
    assert [(b.text, b.top_left, b.bottom_right) for b in boxes] == [("DOE JANE", (6, 1), (40, 9))]
    assert sidecar_boxes(tmp_path / "none.dcm") == []


def test_patients_cycle_through_every_pn_form_and_are_reproducible():
    patients = [make_patient(5, n) for n in range(len(PN_FORMS))]
    assert {p.name_form for p in patients} == set(PN_FORMS)
    for patient in patients:
        name = PersonName(patient.pn)
        assert name.family_name.upper() == patient.name.family.upper()
        assert len(patient.name.family) >= 3 and patient.name.family.isalpha()
        if patient.name_form == IDEOGRAPHIC_FORM:
            assert patient.needs_unicode and len(patient.pn.split("=")) == 3
    assert make_patient(5, 2) == patients[2]
    assert make_patient(6, 2) != patients[2]


def test_seeded_uids_are_valid_and_stable():
    uid = new_uid(1, "series", "1.2.3")
    assert UID(uid).is_valid and uid.startswith("2.25.")
    assert uid == new_uid(1, "series", "1.2.3") != new_uid(2, "series", "1.2.3")


def test_collisions_are_substring_based_like_the_checks():
    assert collides("Dom Smith", "CT ABDOMEN")  # "dom" occurs inside "abdomen"
    assert not collides("Mary Smith 20140321", "CT CHEST W/O CONTRAST for")
