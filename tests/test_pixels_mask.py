"""Masking pixel boxes: only the bytes of box pixels may change."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import pixel_array
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
)

from medveil.errors import InvalidValueError
from medveil.pixels.mask import (
    MaskBox,
    MaskingNotSupported,
    clear_overlay_bits,
    mask_dataset,
    remove_icon,
    remove_overlays,
)


def make_ds(
    rows=12,
    cols=10,
    *,
    frames=1,
    samples=1,
    bits=8,
    stored=None,
    signed=False,
    photometric="MONOCHROME2",
    planar=0,
    syntax=ExplicitVRLittleEndian,
    seed=0,
):
    """A dataset whose Pixel Data is random bytes (unused high bits set too)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples > 1:
        ds.PlanarConfiguration = planar
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.BitsAllocated = bits
    ds.BitsStored = stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(signed)
    size = rows * cols * samples * frames * bits // 8
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    ds.PixelData = data + b"\0" * (len(data) % 2)
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"
    return ds


def box_bytes(ds, inside):
    """Boolean per byte of Pixel Data: does it belong to a pixel where *inside*?

    *inside* is (frames, rows, cols).  Built from the layout independently of
    the code under test, through numpy reshapes rather than offsets.
    """
    frames, rows, cols = inside.shape
    bps = ds.BitsAllocated // 8
    samples = ds.SamplesPerPixel
    if samples > 1 and ds.PlanarConfiguration == 1:
        per = np.broadcast_to(
            inside[:, None, :, :, None], (frames, samples, rows, cols, bps)
        )
    else:
        per = np.broadcast_to(inside[..., None], (frames, rows, cols, samples * bps))
    flat = per.reshape(-1)
    return np.concatenate([flat, np.zeros(len(ds.PixelData) - flat.size, dtype=bool)])


def inside_of(ds, boxes, padding=0):
    frames = int(ds.get("NumberOfFrames") or 1)
    inside = np.zeros((frames, ds.Rows, ds.Columns), dtype=bool)
    for b in boxes:
        sel = slice(None) if b.frame is None else b.frame
        y1, x1 = max(0, b.y1 - padding), max(0, b.x1 - padding)
        inside[sel, y1 : b.y2 + padding, x1 : b.x2 + padding] = True
    return inside


def check_native(ds, boxes, expected_fill, *, padding=0, fill="min"):
    """Mask, then: outside bytes identical, inside decodes to *expected_fill*."""
    before = np.frombuffer(bytes(ds.PixelData), dtype=np.uint8).copy()
    original = pixel_array(ds, raw=True).copy()
    result = mask_dataset(ds, boxes, padding=padding, fill=fill)
    after = np.frombuffer(bytes(ds.PixelData), dtype=np.uint8)
    inside = inside_of(ds, boxes, padding)
    byte_mask = box_bytes(ds, inside)
    assert after.size == before.size
    assert np.array_equal(after[~byte_mask], before[~byte_mask])
    assert result.changed_bytes == np.count_nonzero(after != before)
    assert result.transfer_syntax_kept and not result.reencoded
    decoded = pixel_array(ds, raw=True).reshape(inside.shape + (-1,))
    original = original.reshape(decoded.shape)
    assert np.array_equal(decoded[~inside], original[~inside])
    assert (decoded[inside] == np.array(expected_fill)).all()
    return result, after, byte_mask


def test_8bit_mono():
    ds = make_ds()
    result, after, byte_mask = check_native(ds, [MaskBox(2, 3, 7, 9)], 0)
    assert (after[byte_mask] == 0).all()
    assert result.frames == 1
    assert result.changed_bytes > 0


def test_16bit_unsigned_12_stored_clears_high_bits_inside_only():
    ds = make_ds(bits=16, stored=12)
    _, after, byte_mask = check_native(ds, [MaskBox(1, 1, 5, 4)], 0)
    assert (after[byte_mask] == 0).all()  # overlay bits above HighBit gone too
    words = np.frombuffer(ds.PixelData, dtype="<u2")
    assert (words[~byte_mask[::2]] > 0x0FFF).any()  # outside still has them


def test_16bit_signed_full_and_12_stored():
    ds = make_ds(bits=16, signed=True)
    _, after, byte_mask = check_native(ds, [MaskBox(0, 0, 3, 3)], -32768)
    assert set(after[byte_mask].reshape(-1, 2).tobytes()[:2]) == {0x00, 0x80}

    ds = make_ds(bits=16, stored=12, signed=True)
    _, after, byte_mask = check_native(ds, [MaskBox(0, 0, 3, 3)], -2048)
    assert after[byte_mask].reshape(-1, 2).tolist()[0] == [0x00, 0x08]


def test_monochrome1_fill_is_largest_stored_value():
    ds = make_ds(bits=16, stored=12, photometric="MONOCHROME1")
    _, after, byte_mask = check_native(ds, [MaskBox(4, 4, 8, 8)], 4095)
    assert after[byte_mask].reshape(-1, 2).tolist()[0] == [0xFF, 0x0F]


@pytest.mark.parametrize("planar", [0, 1])
def test_rgb_interleaved_and_planar(planar):
    ds = make_ds(samples=3, photometric="RGB", planar=planar)
    check_native(ds, [MaskBox(3, 2, 9, 6)], (0, 0, 0))
    ds = make_ds(samples=3, photometric="RGB", planar=planar, seed=1)
    check_native(ds, [MaskBox(0, 5, 4, 12)], (200, 200, 200), fill=200)


def test_rgb_16bit_planar_multiframe():
    ds = make_ds(samples=3, photometric="RGB", planar=1, bits=16, frames=2)
    check_native(ds, [MaskBox(1, 1, 4, 4, frame=1)], (0, 0, 0))


def test_three_frames_frame_specific_and_all_frames():
    ds = make_ds(bits=16, frames=3)
    boxes = [MaskBox(0, 0, 2, 2), MaskBox(5, 5, 9, 11, frame=1)]
    result, _, _ = check_native(ds, boxes, 0)
    assert result.frames == 3

    ds = make_ds(bits=32, frames=3)
    result, _, _ = check_native(ds, [MaskBox(5, 5, 9, 11, frame=2)], 0)
    assert result.frames == 1


def test_padding_is_clipped_to_the_image():
    ds = make_ds(rows=8, cols=8)
    boxes = [MaskBox(0, 0, 2, 2), MaskBox(6, 6, 8, 8)]
    check_native(ds, boxes, 0, padding=3)
    decoded = pixel_array(ds)
    assert (decoded[:5, :5] == 0).all() and (decoded[3:, 3:] == 0).all()


def test_box_outside_image_changes_nothing():
    ds = make_ds()
    before = bytes(ds.PixelData)
    result = mask_dataset(ds, [MaskBox(50, 50, 60, 60)])
    assert result.changed_bytes == 0 and bytes(ds.PixelData) == before
    assert mask_dataset(ds, []).changed_bytes == 0


def test_implicit_little_and_big_endian():
    ds = make_ds(bits=16, stored=12, syntax=ImplicitVRLittleEndian)
    check_native(ds, [MaskBox(1, 2, 6, 7)], 0)
    path = get_testdata_file("MR_small_bigendian.dcm")
    ds = dcmread(path)
    before = pixel_array(dcmread(path), raw=True)
    mask_dataset(ds, [MaskBox(10, 20, 30, 25)])
    assert_outside_identical(ds, before, [MaskBox(10, 20, 30, 25)], -32768)


def test_8bit_ow_big_endian_is_byte_swapped():
    path = get_testdata_file("SC_rgb_small_odd_big_endian.dcm")
    ds = dcmread(path)
    assert ds["PixelData"].VR == "OW" and ds.BitsAllocated == 8
    before = pixel_array(dcmread(path), raw=True)
    raw_before = bytes(ds.PixelData)
    mask_dataset(ds, [MaskBox(1, 1, 2, 2)])
    assert_outside_identical(ds, before, [MaskBox(1, 1, 2, 2)], (0, 0, 0))
    # pixel (1,1) is logical bytes 12..14, physically at 12^1, 13^1, 14^1
    diff = {i for i, (a, b) in enumerate(zip(raw_before, ds.PixelData, strict=False)) if a != b}
    assert diff <= {13, 12, 15}


def test_ybr_full_422_masks_whole_pixel_pairs():
    path = get_testdata_file("SC_ybr_full_422_uncompressed.dcm")
    ds = dcmread(path)
    before = pixel_array(dcmread(path), raw=True)
    raw_before = np.frombuffer(ds.PixelData, dtype=np.uint8).copy()
    mask_dataset(ds, [MaskBox(11, 4, 19, 9)])  # odd x1, x2: pairs cover 10..20
    assert_outside_identical(ds, before, [MaskBox(10, 4, 20, 9)], (0, 128, 128))
    raw = np.frombuffer(ds.PixelData, dtype=np.uint8).reshape(100, 50, 4)
    assert (raw[4:9, 5:10] == [0, 0, 128, 128]).all()
    changed = raw != raw_before.reshape(100, 50, 4)
    changed[4:9, 5:10] = False
    assert not changed.any()


def assert_outside_identical(ds, before, boxes, fill):
    after = pixel_array(ds, raw=True)
    frames = int(ds.get("NumberOfFrames") or 1)
    shape = (frames, ds.Rows, ds.Columns, ds.SamplesPerPixel)
    before, after = before.reshape(shape), after.reshape(shape)
    inside = inside_of(ds, boxes)
    assert np.array_equal(after[~inside], before[~inside])
    assert (after[inside] == np.array(fill)).all()


def rle_of(ds):
    ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
    return ds


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bits": 16, "stored": 12, "frames": 3},
        {"bits": 16, "signed": True},
        {"samples": 3, "photometric": "RGB", "frames": 2},
    ],
)
def test_rle_round_trip(kwargs):
    ds = rle_of(make_ds(rows=16, cols=16, **kwargs))
    ds.PixelData  # noqa: B018 - materialise
    before = pixel_array(ds, raw=True).copy()
    boxes = [MaskBox(3, 4, 11, 9)]
    result = mask_dataset(ds, boxes, padding=1)
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    assert result.reencoded and result.transfer_syntax_kept and result.changed_bytes > 0
    fill = -32768 if kwargs.get("signed") else 0
    assert_outside_identical(ds, before, [MaskBox(2, 3, 12, 10)], fill)


@pytest.mark.parametrize("syntax", [JPEGBaseline8Bit, JPEG2000Lossless])
def test_undecodable_encapsulated_data_raises_and_changes_nothing(syntax):
    ds = make_ds()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([b"\xff\xd8fake\xff\xd9"])
    before = bytes(ds.PixelData)
    with pytest.raises(MaskingNotSupported, match="could not be decoded"):
        mask_dataset(ds, [MaskBox(0, 0, 2, 2)])
    assert bytes(ds.PixelData) == before
    assert ds.file_meta.TransferSyntaxUID == syntax


def _decoded(ds):
    return pixel_array(ds, as_rgb=True)


def test_real_jpeg_baseline_is_masked_block_by_block_in_its_own_syntax():
    ds = dcmread(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))
    original = _decoded(ds)
    result = mask_dataset(ds, [MaskBox(0, 0, 20, 10)])
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert result.transfer_syntax_kept and not result.reencoded and "8x8 blocks" in result.note
    after = _decoded(ds)
    # Whole blocks go dark; more than one MCU (16 pixels) away nothing changes at all.
    assert int(after[0:10, 0:20].max()) <= 8
    far = np.ones(original.shape[:2], dtype=bool)
    far[0:10 + 32, 0:20 + 32] = False
    assert np.array_equal(original[far], after[far])


def test_jpeg_baseline_falls_back_to_decoding_when_blocks_cannot_be_used():
    ds = dcmread(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))
    original = _decoded(ds)
    result = mask_dataset(ds, [MaskBox(0, 0, 20, 10)], fill="zero")  # block masking fills with "min" only
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert not result.transfer_syntax_kept and result.reencoded
    assert "lossy" in result.note and "uncompressed" in result.note
    assert ds.PhotometricInterpretation == "RGB"
    after = _decoded(ds)
    outside = np.ones(original.shape[:2], dtype=bool)
    outside[0:10, 0:20] = False
    assert np.array_equal(original[outside], after[outside])
    assert not after[0:10, 0:20].any()


@pytest.mark.parametrize("name, kept", [("MR_small_jpeg_ls_lossless.dcm", RLELossless),
                                         ("emri_small_jpeg_2k_lossless.dcm", JPEG2000Lossless),
                                         ("JPEG-LL.dcm", RLELossless)])
def test_lossless_encodings_are_reencoded_losslessly(name, kept):
    ds = dcmread(get_testdata_file(name))
    original = _decoded(ds)
    result = mask_dataset(ds, [MaskBox(1, 1, 9, 5, frame=0)])
    assert ds.file_meta.TransferSyntaxUID == kept
    assert result.reencoded and result.changed_bytes > 0
    after = _decoded(ds)
    outside = np.ones(original.shape, dtype=bool)
    if original.ndim == 2:
        outside[1:5, 1:9] = False
    else:  # frames: only frame 0 was masked
        outside[0, 1:5, 1:9] = False
    assert np.array_equal(original[outside], after[outside])


def test_palette_min_fill_is_the_darkest_entry():
    ds = dcmread(get_testdata_file("OBXXXX1A.dcm"))
    mask_dataset(ds, [MaskBox(0, 0, 4, 4)])
    from pydicom.pixels import apply_color_lut

    rgb = apply_color_lut(pixel_array(ds), ds)
    assert int(rgb[0:4, 0:4].sum(axis=-1).max()) == int(rgb.sum(axis=-1).min())


def test_bits_allocated_1_raises():
    ds = make_ds(rows=8, cols=8)
    ds.BitsAllocated = ds.BitsStored = 1
    ds.HighBit = 0
    with pytest.raises(MaskingNotSupported, match="BitsAllocated 1"):
        mask_dataset(ds, [MaskBox(0, 0, 2, 2)])


def test_bad_arguments():
    ds = make_ds()
    with pytest.raises(InvalidValueError):
        mask_dataset(ds, [MaskBox(0, 0, 2, 2)], fill="black")
    with pytest.raises(InvalidValueError):
        mask_dataset(ds, [MaskBox(0, 0, 2, 2)], fill=256)
    with pytest.raises(InvalidValueError):
        mask_dataset(ds, [MaskBox(0, 0, 2, 2, frame=1)])
    palette = make_ds(photometric="PALETTE COLOR")
    with pytest.raises(MaskingNotSupported, match="palette cannot be read"):
        mask_dataset(palette, [MaskBox(0, 0, 2, 2)])
    assert mask_dataset(palette, [MaskBox(0, 0, 2, 2)], fill="zero").changed_bytes >= 0
    truncated = make_ds(bits=16)
    truncated.PixelData = truncated.PixelData[:-4]
    with pytest.raises(MaskingNotSupported, match="describes"):
        mask_dataset(truncated, [MaskBox(0, 0, 2, 2)])


@pytest.mark.parametrize(
    "name, box",
    [
        ("CT_small.dcm", MaskBox(0, 0, 40, 12)),
        ("MR_small_RLE.dcm", MaskBox(50, 0, 64, 10)),
        ("SC_rgb.dcm", MaskBox(10, 10, 30, 20)),
        ("SC_rgb_rle.dcm", MaskBox(10, 10, 30, 20)),
        ("SC_rgb_rle_16bit_2frame.dcm", MaskBox(90, 95, 100, 100, frame=1)),
        ("emri_small.dcm", MaskBox(0, 50, 64, 64)),
        ("US1_UNCR.dcm", MaskBox(0, 0, 640, 40)),
        ("rtdose_rle.dcm", MaskBox(2, 2, 5, 5)),
    ],
)
def test_real_files_only_box_changes(name, box):
    path = get_testdata_file(name)
    ds = dcmread(path)
    before = pixel_array(dcmread(path), raw=True)
    result = mask_dataset(ds, [box])
    assert result.reencoded == (ds.file_meta.TransferSyntaxUID == RLELossless)
    fill = -32768 if ds.PixelRepresentation and ds.BitsStored == 16 else 0
    assert_outside_identical(ds, before, [box], fill)


def test_remove_overlays():
    ds = make_ds()
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60003000, "OW", b"\0" * 8)
    ds.add_new(0x60020010, "US", 8)
    ds.add_new(0x60023000, "OW", b"\0" * 8)
    ds.add_new(0x60010010, "LO", "private")  # odd group: private, not an overlay
    assert remove_overlays(ds) == 2
    assert not [t for t in ds.keys() if t.group in (0x6000, 0x6002)]  # noqa: SIM118
    assert 0x60010010 in ds


def test_clear_overlay_bits_keeps_stored_bits():
    ds = make_ds(bits=16, stored=12)
    before = np.frombuffer(ds.PixelData, dtype="<u2").copy()
    changed = clear_overlay_bits(ds)
    after = np.frombuffer(ds.PixelData, dtype="<u2")
    assert changed > 0
    assert np.array_equal(after, before & 0x0FFF)
    assert clear_overlay_bits(make_ds()) == 0


def test_remove_icon_top_level_and_nested():
    ds = make_ds()
    icon = Dataset()
    icon.Rows = 1
    ds.IconImageSequence = [icon]
    item = Dataset()
    item.IconImageSequence = [Dataset()]
    ds.ReferencedImageSequence = [item]
    assert remove_icon(ds) is True
    assert "IconImageSequence" not in ds
    assert "IconImageSequence" not in ds.ReferencedImageSequence[0]
    assert remove_icon(ds) is False



@pytest.mark.parametrize("implicit", [False, True])
def test_remove_icon_finds_nested_icons_in_a_file_as_read(implicit):
    """Read from bytes, elements are raw: icons in sequences (and in a private sequence) are
    still found, and elements that cannot hold items are not converted."""
    import io

    from pydicom.dataelem import RawDataElement
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    ds = make_ds()
    ds.PatientName = "Doe^Jane"
    item = Dataset()
    item.IconImageSequence = [Dataset()]
    ds.ReferencedImageSequence = [item]
    private = Dataset()
    private.IconImageSequence = [Dataset()]
    ds.add_new(0x00290010, "LO", "ACME")
    ds.add_new(0x00291001, "SQ", [private])
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=implicit, little_endian=True)
    read = dcmread(io.BytesIO(buffer.getvalue()), force=True)
    assert remove_icon(read) is True
    assert "IconImageSequence" not in read.ReferencedImageSequence[0]
    if not implicit:  # read without its VR, a private sequence stays bytes to pydicom (and here)
        assert "IconImageSequence" not in read[0x00291001].value[0]
    assert isinstance(read._dict[0x00100010], RawDataElement)  # PatientName left as read

def test_rle_planar_header_round_trip():
    ds = rle_of(
        make_ds(rows=16, cols=16, samples=3, photometric="RGB", planar=1, frames=2)
    )
    before = pixel_array(ds, raw=True).copy()
    result = mask_dataset(ds, [MaskBox(3, 4, 11, 9, frame=0)])
    assert result.frames == 1
    assert_outside_identical(ds, before, [MaskBox(3, 4, 11, 9, frame=0)], (0, 0, 0))


def test_rle_failure_leaves_dataset_unchanged(monkeypatch):
    from medveil.pixels import rle

    ds = rle_of(make_ds(rows=16, cols=16))
    before = bytes(ds.PixelData)
    monkeypatch.setattr(
        rle, "_encode", lambda arr, ds, layout: encapsulate([b"\0" * 64])
    )
    with pytest.raises(MaskingNotSupported):
        mask_dataset(ds, [MaskBox(0, 0, 4, 4)])
    assert bytes(ds.PixelData) == before
