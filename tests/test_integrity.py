"""Structural completeness checks: ``medveil.runner.integrity.check_complete``.

pydicom reads truncated files without complaint, so these tests cut real
files at many points and require a fail-closed outcome for each: either
pydicom itself refuses the bytes, or the cut leaves no SOP Instance UID (the
processor quarantines that), or ``check_complete`` raises QuarantineError.

Cuts exactly at a top-level element boundary leave a well-formed (shorter)
dataset that no structural check can tell from a complete one; they are left
out of the sweeps, except for the one boundary that is detectable: just before
Pixel Data, in an object whose Image Pixel description is present.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.filereader import _read_file_meta_info, data_element_generator, read_preamble

from conftest import PHI, image_dataset
from medveil.errors import QuarantineError
from medveil.quiet import silenced
from medveil.runner.integrity import check_complete, out_of_order

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
_LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
PIXEL_DATA_LE = b"\xe0\x7f\x10\x00"


def bundled(name: str) -> bytes:
    return (TEST_FILES / name).read_bytes()


def encode(ds: Dataset, **kwargs) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True, **kwargs)
    return buffer.getvalue()


def read(data: bytes) -> Dataset:
    with silenced():
        return pydicom.dcmread(BytesIO(data), force=True)


def outcome(data: bytes) -> tuple[str, str | None]:
    """What the processor would see: ("read-error"|"no-sop"|"quarantined"|"passed", message)."""
    try:
        ds = read(data)
    except Exception:
        return "read-error", None
    if "SOPInstanceUID" not in ds:
        return "no-sop", None
    try:
        check_complete(data, ds)
    except QuarantineError as exc:
        return "quarantined", str(exc)
    return "passed", None


def top_level_offsets(data: bytes) -> tuple[set[int], dict[int, int]]:
    """Start offsets of the top-level data set elements, found by pydicom (not medveil's walker).

    Returns (offsets, {tag: offset}).
    """
    implicit, little = read(data).original_encoding
    fp = BytesIO(data)
    read_preamble(fp, True)
    _read_file_meta_info(fp)
    offsets: dict[int, int] = {}
    with silenced():
        elements = data_element_generator(fp, implicit, little)
        while True:
            start = fp.tell()
            elem = next(elements, None)
            if elem is None:
                break
            offsets[int(elem.tag)] = start
    return set(offsets.values()), offsets


def undefined_lengths(ds: Dataset) -> Dataset:
    """Make pydicom write every sequence and item of *ds* with undefined length."""
    for elem in ds:
        if elem.VR == "SQ":
            elem.is_undefined_length = True
            for item in elem.value:
                item.is_undefined_length_sequence_item = True
                undefined_lengths(item)
    return ds


# -- complete files pass --------------------------------------------------------------------


@pytest.mark.parametrize("name, syntax", [
    ("CT_small.dcm", "1.2.840.10008.1.2.1"),            # explicit VR little endian
    ("MR_small_implicit.dcm", "1.2.840.10008.1.2"),     # implicit VR little endian
    ("MR_small_bigendian.dcm", "1.2.840.10008.1.2.2"),  # explicit VR big endian
    ("JPEG2000.dcm", "1.2.840.10008.1.2.4.91"),         # encapsulated
    ("MR_small_RLE.dcm", "1.2.840.10008.1.2.5"),        # encapsulated, RLE
    ("rtplan.dcm", "1.2.840.10008.1.2"),                # nested sequences, no pixels
    ("SC_rgb_small_odd.dcm", "1.2.840.10008.1.2.1"),    # odd-length native pixels
])
def test_complete_bundled_files_pass(name, syntax):
    data = bundled(name)
    ds = read(data)
    assert ds.file_meta.TransferSyntaxUID == syntax
    check_complete(data, ds)  # must not raise


def test_complete_file_with_undefined_length_sequences_passes():
    data = encode(undefined_lengths(image_dataset()))
    # pydicom writes sequences and their items with undefined length: make sure the
    # delimiters really are there, or this test would not test what it claims.
    assert b"\xfe\xff\xdd\xe0" in data and b"\xfe\xff\x0d\xe0" in data
    check_complete(data, read(data))


@pytest.mark.parametrize("implicit_vr, little_endian", [(True, True), (False, True), (False, False)])
def test_complete_written_file_passes_in_every_native_encoding(implicit_vr, little_endian):
    ds = undefined_lengths(image_dataset())
    ds.file_meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit_vr else
                                      ExplicitVRLittleEndian if little_endian else ExplicitVRBigEndian)
    data = encode(ds)
    back = read(data)
    assert back.original_encoding == (implicit_vr, little_endian)
    check_complete(data, back)


def test_preamble_stripped_file_passes_and_its_truncation_is_detected():
    data = bundled("CT_small.dcm")[128:]
    assert data[:4] == b"DICM"
    ds = read(bytes(128) + data)  # what the processor parses
    check_complete(data, ds)
    with pytest.raises(QuarantineError):
        check_complete(data[:-1000], ds)


def test_complete_file_returns_the_encoded_pixel_values():
    data = bundled("CT_small.dcm")
    regions = check_complete(data, read(data))
    pixels = bytes(read(data).get_item(0x7FE00010).value)
    assert len(pixels) == 128 * 128 * 2
    assert regions.get(0x7FE00010) == pixels


# -- truncations are detected -------------------------------------------------------------


SWEEP = [
    # name, stride inside element values (every byte of every element header is cut)
    ("CT_small.dcm", 331),
    ("MR_small_implicit.dcm", 41),
    ("MR_small_bigendian.dcm", 41),
    ("JPEG2000.dcm", 7),
    ("MR_small_RLE.dcm", 17),
    ("rtplan.dcm", 2),       # nested defined-length sequences, implicit VR
    ("rtstruct.dcm", 2),     # no file meta at all
    ("SC_rgb_small_odd.dcm", 1),
]


def _cut_points(data: bytes, stride: int) -> list[int]:
    """Every byte of each element's header and a few points of its value; a stride elsewhere.

    Top-level element boundaries are left out (see the module docstring).
    """
    boundaries, by_tag = top_level_offsets(data)
    starts = sorted(boundaries) + [len(data)]
    cuts = set(range(1, starts[0] + 1, 3))  # preamble and meta group
    for start, end in zip(starts, starts[1:]):
        cuts.update(range(start + 1, min(start + 13, end)))  # tag, VR, length
        cuts.update({(start + end) // 2, end - 2, end - 1})
        cuts.update(range(start + 13, end, stride))  # nested items, fragments, pixel data
    return sorted(c for c in cuts if 0 < c < len(data) and c not in boundaries)


@pytest.mark.parametrize("name, stride", SWEEP)
def test_truncation_at_every_cut_point_fails_closed(name, stride):
    data = bundled(name)
    assert outcome(data) == ("passed", None)
    cuts = _cut_points(data, stride)
    assert len(cuts) > 100
    seen = {"read-error": 0, "no-sop": 0, "quarantined": 0}
    passed = []
    for cut in cuts:
        result, _ = outcome(data[:cut])
        if result == "passed":
            passed.append(cut)
        else:
            seen[result] += 1
    assert passed == [], f"{name}: cuts at {passed[:10]} were not detected"
    assert seen["quarantined"] > 0  # check_complete itself did the work, not only pydicom


def test_truncation_of_a_written_phi_file_fails_closed_and_messages_carry_no_values():
    ds = undefined_lengths(image_dataset())
    data = encode(ds)
    boundaries, _ = top_level_offsets(data)
    values = [v for v in PHI.values()] + ["SMITHERS", "WAYLON", "HIBBERT", "SPRINGFIELD",
                                           str(ds.SOPInstanceUID), str(ds.StudyInstanceUID),
                                           str(ds.SeriesInstanceUID), str(ds.FrameOfReferenceUID)]
    messages = set()
    for cut in range(1, len(data)):
        if cut in boundaries:
            continue
        result, message = outcome(data[:cut])
        assert result != "passed", f"cut at {cut} was not detected"
        if message:
            messages.add(message)
    assert messages
    for message in messages:
        for value in values:
            assert value.upper() not in message.upper()


def test_cut_inside_an_undefined_length_sequence_is_detected():
    """pydicom refuses these cuts itself; the walker must refuse them on its own too."""
    data = encode(undefined_lengths(image_dataset()))
    ds = read(data)
    name_end = data.index(PHI["PatientName"].encode()) + len(PHI["PatientName"])  # nested copy
    item_end = data.index(b"\xfe\xff\x0d\xe0")
    seq_end = data.index(b"\xfe\xff\xdd\xe0")
    for cut in (name_end - 3, name_end, item_end, item_end + 4, seq_end, seq_end + 6):
        with pytest.raises(QuarantineError):
            check_complete(data[:cut], ds)
    check_complete(data, ds)


@pytest.mark.parametrize("name", ["MR_truncated.dcm", "rtplan_truncated.dcm"])
def test_bundled_truncated_files_fail_closed(name):
    result, _ = outcome(bundled(name))
    assert result in ("read-error", "no-sop", "quarantined")
    assert result != "passed"


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_implicit.dcm", "JPEG2000.dcm"])
def test_cut_exactly_before_pixel_data_is_detected(name):
    data = bundled(name)
    _, by_tag = top_level_offsets(data)
    cut = by_tag[0x7FE00010]
    truncated = data[:cut]
    ds = read(truncated)
    assert "PixelData" not in ds and "Rows" in ds and "SOPInstanceUID" in ds
    with pytest.raises(QuarantineError):
        check_complete(truncated, ds)


def test_declared_length_beyond_the_end_is_detected_even_when_pydicom_accepts_it():
    data = bundled("CT_small.dcm")
    _, by_tag = top_level_offsets(data)
    cut = data[: by_tag[0x7FE00010] + 12 + 128 * 128 * 2 - 1]  # one byte short of the pixels
    ds = read(cut)  # pydicom keeps the short value without complaint
    assert "PixelData" in ds and len(ds.get_item(0x7FE00010).value) == 128 * 128 * 2 - 1
    with pytest.raises(QuarantineError, match="truncated"):
        check_complete(cut, ds)


# -- native Pixel Data against the image description -------------------------------------------


def test_native_pixel_data_shorter_than_the_description_is_detected():
    ds = image_dataset()
    ds.PixelData = bytes(16)  # Rows*Columns*BitsAllocated/8 = 32; the element itself is well formed
    data = encode(ds)
    back = read(data)
    assert len(back.PixelData) == 16
    with pytest.raises(QuarantineError, match="shorter") as info:
        check_complete(data, back)
    assert "16" not in str(info.value) and "32" not in str(info.value)


def test_missing_frames_are_detected():
    ds = image_dataset(NumberOfFrames=2)  # two frames of 32 bytes declared, one present
    data = encode(ds)
    with pytest.raises(QuarantineError, match="shorter"):
        check_complete(data, read(data))
    ds.PixelData = bytes(64)
    data = encode(ds)
    check_complete(data, read(data))


def test_pixel_data_without_an_image_description_is_refused():
    ds = image_dataset()
    del ds.Rows
    data = encode(ds)
    with pytest.raises(QuarantineError, match="description"):
        check_complete(data, read(data))


def test_odd_length_native_pixels_padded_to_even_pass():
    ds = image_dataset(Rows=3, Columns=3, BitsAllocated=8, BitsStored=8, HighBit=7)
    ds.PixelData = bytes(range(9))
    data = encode(ds)
    back = read(data)
    assert len(back.PixelData) == 10  # padded on write
    check_complete(data, back)
    back.PixelData = bytes(8)  # one byte short of 9
    with pytest.raises(QuarantineError):
        check_complete(data, back)


def test_encapsulated_pixel_data_is_not_measured_against_the_native_size():
    data = bundled("JPEG2000.dcm")
    ds = read(data)
    assert len(ds.PixelData) < ds.Rows * ds.Columns * ds.BitsAllocated // 8
    check_complete(data, ds)


def test_error_messages_do_not_quote_values():
    ds = image_dataset(PatientName="ZYXWVUTS^QWERTY", PatientID="PID-98765")
    ds.PixelData = bytes(16)
    data = encode(ds)
    for broken in (data, data[:-3], data[: data.index(b"ZYXWVUTS") + 4]):
        result, message = outcome(broken)
        assert result == "quarantined"
        for value in ("ZYXWVUTS", "QWERTY", "PID-98765", str(ds.SOPInstanceUID)):
            assert value not in message


# -- values that swallow the elements after them (issue 13, item 1) ------------------------------------

from medveil.runner.integrity import inspect  # noqa: E402


def _defined_length_sr() -> bytes:
    ds = read(bundled("test-SR.dcm"))
    for elem in ds.iterall():
        if elem.VR == "SQ":
            elem.is_undefined_length = False
    return encode(ds, implicit_vr=False, little_endian=True)


def test_defined_length_sequences_are_walked_item_by_item():
    data = _defined_length_sr()
    inspection = inspect(data, read(data))
    assert inspection.nonconforming == []
    text_value = data.find(b"\x40\x00\x60\xa1UT")
    (length,) = __import__("struct").unpack_from("<I", data, text_value + 8)
    swollen = bytearray(data)
    __import__("struct").pack_into("<I", swollen, text_value + 8, length + 40)
    with pytest.raises(QuarantineError, match="lengths"):
        inspect(bytes(swollen), read(data))


def test_a_short_value_stretched_over_the_next_elements_is_found():
    ds = read(bundled("MR_small.dcm"))
    data = bytearray(encode(ds, implicit_vr=False, little_endian=True))
    modality = data.find(b"\x08\x00\x60\x00CS")
    institution = data.find(b"\x08\x00\x80\x00LO")
    end = institution + 8 + int.from_bytes(data[institution + 6:institution + 8], "little")
    data[modality + 6:modality + 8] = (end - modality - 8).to_bytes(2, "little")
    inspection = inspect(bytes(data), read(bytes(data)))
    assert not [f for f in inspection.nonconforming if f.hides_data]
    (found,) = inspection.swallowed  # the elements it covered are whole, and are found again
    assert found.path == (0x00080060,) and found.keep == 2  # "MR"
    assert found.start == modality + 8 + 2 and found.end == end


def test_over_long_values_in_real_exports_are_noted_not_refused():
    ds = read(bundled("MR_small.dcm"))
    ds.StudyID = "X" * 30  # SH allows 16
    data = encode(ds)
    (finding,) = inspect(data, read(data)).nonconforming
    assert finding.what == "longer than SH allows" and not finding.hides_data


def _explicit(ds) -> bytearray:
    return bytearray(encode(ds, implicit_vr=False, little_endian=True))


def test_a_flipped_tag_shows_as_a_vr_the_dictionary_does_not_give():
    """A bit flipped in Patient's Name's tag puts the name under another attribute (here Contrast/Bolus
    Route, LO), still written PN: the mismatch is a finding that hides data."""
    ds = read(bundled("CT_small.dcm"))
    data = _explicit(ds)
    name = data.find(b"\x10\x00\x10\x00PN")
    data[name:name + 4] = b"\x18\x00\x40\x10"  # (0018,1040) Contrast/Bolus Route
    (finding,) = [f for f in inspect(bytes(data), read(bytes(data))).nonconforming if f.hides_data]
    assert finding.path == (0x00181040,) and "another VR" in finding.what


def test_letters_in_a_number_hide_data():
    ds = read(bundled("CT_small.dcm"))
    ds.AcquisitionNumber = "12"
    data = _explicit(ds)
    number = data.find(b"\x20\x00\x12\x00IS")
    data[number + 8:number + 10] = b"JD"
    (finding,) = [f for f in inspect(bytes(data), read(bytes(data))).nonconforming if f.hides_data]
    assert finding.path == (0x00200012,) and "cannot hold" in finding.what


def test_elements_hidden_at_the_end_of_a_stream_are_found():
    """A lookup table's length stretched over the next elements: they are found again at its end."""
    ds = read(bundled("CT_small.dcm"))
    ds.add_new(0x00281203, "OW", bytes(64))  # Blue Palette Color Lookup Table Data
    ds.add_new(0x00281221, "OW", bytes(16))  # Segmented Red Palette ... (a sibling after it)
    ds.add_new(0x00281222, "OW", bytes(16))
    data = _explicit(ds)
    lut = data.find(b"\x28\x00\x03\x12OW")
    length = int.from_bytes(data[lut + 8:lut + 12], "little")
    following = data.find(b"\x28\x00\x22\x12OW")
    end = following + 12 + 16
    data[lut + 8:lut + 12] = (end - lut - 12).to_bytes(4, "little")
    inspection = inspect(bytes(data), read(bytes(data)))
    (found,) = inspection.swallowed
    assert found.path == (0x00281203,) and found.keep == length


@pytest.mark.parametrize("flipped", [b"\x14\x00\x40\x10", b"\x08\x00\x40\x10"],
                         ids=["EnvironmentalConditions (higher)", "InstitutionalDepartmentName (lower)"])
def test_a_flipped_tag_out_of_order_hides_data_in_implicit_vr(flipped):
    """Implicit VR has no VR to disagree with the dictionary: a bit flipped in Patient's Address's tag
    moves the address under a kept attribute, and only the broken tag order gives it away."""
    ds = read(bundled("CT_small.dcm"))
    ds.PatientAddress = "12 Marker Road"
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    data = bytearray(encode(ds))
    where = data.find(b"\x10\x00\x40\x10")
    data[where:where + 4] = flipped
    tag = int.from_bytes(flipped[:2], "little") << 16 | int.from_bytes(flipped[2:], "little")
    found = [f for f in inspect(bytes(data), read(bytes(data))).nonconforming if f.hides_data]
    assert [f.path for f in found] == [(tag,)] and "tag order" in found[0].what


def test_out_of_order_names_the_tag_whose_removal_restores_order():
    assert out_of_order([1, 2, 9, 3, 4]) == [9]
    assert out_of_order([1, 2, 0, 3, 4]) == [0]
    assert out_of_order([1, 5, 3, 7]) == [5, 3]  # either restores order: both are repaired
    assert out_of_order([1, 2, 3]) == [] and out_of_order([]) == []


def test_a_flipped_tag_releases_nothing_of_the_value():
    from medveil.policy import get_profile
    from medveil.pseudonym.keys import throwaway_key
    from medveil.runner.core import deidentify_bytes

    ds = read(bundled("CT_small.dcm"))
    ds.PatientAddress = "12 Marker Road"
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    data = bytearray(encode(ds))
    where = data.find(b"\x10\x00\x40\x10")
    data[where:where + 4] = b"\x14\x00\x40\x10"  # (0014,1040) Environmental Conditions, kept
    out, record = deidentify_bytes(bytes(data), get_profile("tcia"), throwaway_key())
    assert record.status == "written" and b"Marker" not in out
    assert any(category == "repair" and "EnvironmentalConditions" in detail for category, detail in record.events)


def test_a_value_still_holding_elements_after_the_split_refuses_the_file():
    """A private number's length stretched over a Patient's Name, stray bytes and a Patient ID: the
    elements found at its end (the ID) are put back, but the name stays inside the value, where the
    text cleaner would never learn it. The file is refused (robustness bench, seed 2, mutant 2794)."""
    ds = read(bundled("CT_small.dcm"))
    ds.add_new(0x00090010, "LO", "ACME")
    ds.add_new(0x00091023, "SL", 7)
    ds.PatientName = "QUIMBY^JOSEPH"
    ds.PatientID = "ID123456"
    data = bytearray(_explicit(ds))
    number = data.find(b"\x09\x00\x23\x10SL")
    name = data.find(b"\x10\x00\x10\x00PN")
    patient_id = data.find(b"\x10\x00\x20\x00LO")
    id_end = patient_id + 8 + int.from_bytes(data[patient_id + 6:patient_id + 8], "little")
    stray = (-(id_end - (number + 8))) % 4 or 4  # keeps the stretched length whole SL values
    data[patient_id:patient_id] = b"\x01" * stray  # bytes no element starts with
    id_end += stray
    data[number + 6:number + 8] = (id_end - (number + 8)).to_bytes(2, "little")
    assert name < patient_id and (id_end - (number + 8)) % 4 == 0
    found = inspect(bytes(data), read(bytes(data))).nonconforming
    assert any(f.refuses_file and f.path == (0x00091023,) and "element headers" in f.what for f in found)
