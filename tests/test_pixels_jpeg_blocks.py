"""Block-level masking of JPEG Baseline codestreams: only masked MCUs may change."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames

from medveil.pixels.jpeg import (
    JpegBlockError,
    mask_jpeg_blocks,
    masked_pixel_region,
    read_coefficients,
)
from medveil.pixels.jpeg.parse import parse

# ----------------------------------------------------------------------------- helpers


def _picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A colour picture with gradients, hard-edged 'text' rectangles and some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack(
        [
            x * 255 // max(width - 1, 1),
            y * 255 // max(height - 1, 1),
            (x * 3 + y * 5) % 256,
        ],
        axis=-1,
    ).astype(np.int16)
    for _ in range(max(4, width * height // 4000)):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        img[y0 : y0 + int(rng.integers(2, 12)), x0 : x0 + int(rng.integers(2, 30))] = (
            rng.integers(0, 256, 3)
        )
    img += rng.integers(-6, 7, img.shape, dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def _pillow_jpeg(
    width: int, height: int, mode: str = "RGB", subsampling: int = 0, **kw
) -> bytes:
    arr = _picture(width, height)
    im = Image.fromarray(arr) if mode == "RGB" else Image.fromarray(arr).convert("L")
    buf = io.BytesIO()
    if mode == "RGB":
        im.save(buf, format="JPEG", quality=90, subsampling=subsampling, **kw)
    else:
        im.save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


def _dicom_frame(name: str, index: int = 0) -> bytes:
    path = get_testdata_file(name)
    if path is None:  # pragma: no cover - pydicom always bundles these
        pytest.skip(f"{name} not bundled")
    ds = dcmread(path)
    frames = generate_frames(
        ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)
    )
    for i, frame in enumerate(frames):
        if i == index:
            return frame
    raise AssertionError("frame index out of range")


def _decode(codestream: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(codestream)))


def _luma(codestream: bytes, ycbcr: bool) -> np.ndarray:
    """Luminance as the codestream holds it (no colour conversion for YCbCr)."""
    im = Image.open(io.BytesIO(codestream))
    if ycbcr:
        im.draft("YCbCr", im.size)
        assert im.mode == "YCbCr"
        return np.asarray(im)[..., 0]
    return np.asarray(im)


def _dilate_cells(cells: np.ndarray) -> np.ndarray:
    out = cells.copy()
    padded = np.pad(cells, 1)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out |= padded[
                1 + dy : 1 + dy + cells.shape[0], 1 + dx : 1 + dx + cells.shape[1]
            ]
    return out


def _check(
    codestream: bytes,
    boxes,
    fill: int,
    *,
    exact_outside: bool = False,
    ycbcr: bool | None = None,
) -> bytes:
    """Mask, then prove: unmasked coefficients identical, pixels identical away from the
    masked MCUs, masked blocks flat with luminance ~ fill, headers unchanged."""
    masked = mask_jpeg_blocks(codestream, boxes, fill=fill, ycbcr=ycbcr)
    parsed = parse(codestream)
    is_ycbcr = parsed.ycbcr if ycbcr is None else ycbcr
    region = masked_pixel_region(codestream, boxes)
    cw, ch = 8 * parsed.hmax, 8 * parsed.vmax
    cells = region[::ch, ::cw]
    assert cells.shape == (parsed.mcuy, parsed.mcux)
    assert cells.any()

    # Headers (everything up to the end of the first scan header) are copied unchanged.
    first = parsed.scans[0].data_start
    assert masked[:first] == codestream[:first]
    assert b"\xff\xd9" in masked[-4:]  # EOI (DICOM fragments may add a pad byte)
    # The same number of restart markers.
    for n in range(8):
        marker = bytes((0xFF, 0xD0 + n))
        assert masked.count(marker) == codestream.count(marker)

    # 1. Quantised coefficients: unmasked blocks identical, masked blocks flat.
    before, after = read_coefficients(codestream), read_coefficients(masked)
    q0 = {}
    for scan in parsed.scans:
        q0.update(scan.q0)
    for comp, c0, c1 in zip(parsed.comps, before, after, strict=True):
        assert c0.shape == c1.shape
        grid = np.repeat(np.repeat(cells, comp.v, axis=0), comp.h, axis=1)[
            : c0.shape[0], : c0.shape[1]
        ]
        assert grid.shape == c0.shape[:2]
        np.testing.assert_array_equal(c0[~grid], c1[~grid])
        flat = c1[grid].reshape(-1, 64)
        assert flat.shape[0] > 0
        assert not flat[:, 1:].any()
        level = 128 if (is_ycbcr and comp.index > 0) else fill
        expected_dc = int(np.floor((level - 128) * 8 / q0[comp.index] + 0.5))
        assert (flat[:, 0] == expected_dc).all()

    # 2. Decoded pixels: identical more than one MCU away from the masked MCUs (chroma
    #    upsampling may bleed across an MCU edge), or everywhere outside them.
    a0, a1 = _decode(codestream), _decode(masked)
    assert a0.shape == a1.shape
    near = np.repeat(np.repeat(_dilate_cells(cells), ch, axis=0), cw, axis=1)
    near = near[: region.shape[0], : region.shape[1]]
    np.testing.assert_array_equal(a0[~near], a1[~near])
    if exact_outside:
        np.testing.assert_array_equal(a0[~region], a1[~region])

    # 3. Inside the masked MCUs the luminance is the fill (every channel for RGB-coded).
    y = _luma(masked, is_ycbcr and len(parsed.comps) == 3)
    inside = y[region].astype(int)
    assert inside.size
    assert np.abs(inside - fill).max() <= 2

    # Masking is idempotent: masking the result again changes nothing.
    assert mask_jpeg_blocks(masked, boxes, fill=fill, ycbcr=ycbcr) == masked
    return masked


BOXES = [(10, 10, 30, 20), (60, 33, 61, 34), (150, 100, 400, 400), (-20, 90, 5, 95)]

# ----------------------------------------------------------------------------- Pillow-made JPEGs


@pytest.mark.parametrize("subsampling", [0, 1, 2], ids=["444", "422", "420"])
@pytest.mark.parametrize("fill", [0, 128, 255])
def test_pillow_colour(subsampling: int, fill: int) -> None:
    jpeg = _pillow_jpeg(203, 141, subsampling=subsampling)
    _check(jpeg, BOXES, fill, exact_outside=subsampling == 0)


@pytest.mark.parametrize("fill", [0, 77, 255])
def test_pillow_greyscale(fill: int) -> None:
    jpeg = _pillow_jpeg(197, 131, mode="L")
    assert len(read_coefficients(jpeg)) == 1
    _check(jpeg, BOXES, fill, exact_outside=True)


@pytest.mark.parametrize(
    ("mode", "subsampling", "option", "value"),
    [
        ("RGB", 2, "restart_marker_blocks", 3),
        ("RGB", 1, "restart_marker_rows", 1),
        ("RGB", 0, "restart_marker_blocks", 1),
        ("L", 0, "restart_marker_blocks", 7),
    ],
)
def test_restart_intervals(
    mode: str, subsampling: int, option: str, value: int
) -> None:
    jpeg = _pillow_jpeg(211, 120, mode=mode, subsampling=subsampling, **{option: value})
    assert b"\xff\xdd" in jpeg  # DRI written
    assert b"\xff\xd7" in jpeg  # RST markers cycle past 7
    _check(jpeg, BOXES, 0, exact_outside=subsampling == 0)


def test_optimised_tables_that_can_code_the_fill() -> None:
    # optimize=True writes minimal tables; a fill the tables can code still works.
    arr = _picture(128, 96)
    arr[:, :64] = 128  # flat mid-grey half: DC differences of 0 and EOB-only blocks
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90, optimize=True)
    _check(buf.getvalue(), [(8, 8, 40, 40)], 128, exact_outside=True)


# ----------------------------------------------------------------------------- block geometry


def _cells_of(jpeg: bytes, boxes) -> np.ndarray:
    parsed = parse(jpeg)
    return masked_pixel_region(jpeg, boxes)[:: 8 * parsed.vmax, :: 8 * parsed.hmax]


def test_box_touching_a_block_masks_the_whole_block() -> None:
    jpeg = _pillow_jpeg(64, 48, subsampling=0)
    cells = _cells_of(jpeg, [(15, 15, 16, 16)])  # one pixel, the last of block (1, 1)
    assert np.argwhere(cells).tolist() == [[1, 1]]
    cells = _cells_of(jpeg, [(15, 15, 17, 16)])  # two pixels straddling two blocks
    assert np.argwhere(cells).tolist() == [[1, 1], [1, 2]]
    cells = _cells_of(jpeg, [(0, 0, 8, 8)])  # x2/y2 exclusive
    assert np.argwhere(cells).tolist() == [[0, 0]]
    region = masked_pixel_region(jpeg, [(15, 15, 16, 16)])
    assert region.sum() == 64 and region[8:16, 8:16].all()
    _check(jpeg, [(15, 15, 16, 16)], 0, exact_outside=True)


def test_subsampled_masks_whole_mcus() -> None:
    jpeg = _pillow_jpeg(64, 48, subsampling=2)  # 4:2:0: MCU is 16x16
    region = masked_pixel_region(jpeg, [(17, 1, 18, 2)])
    assert region.sum() == 256 and region[0:16, 16:32].all()
    _check(jpeg, [(17, 1, 18, 2)], 0)


def test_boxes_outside_the_image_are_clipped() -> None:
    jpeg = _pillow_jpeg(100, 70, subsampling=2)
    # Entirely outside, or empty: nothing to mask, the codestream is returned unchanged.
    assert (
        mask_jpeg_blocks(
            jpeg, [(100, 0, 200, 50), (0, 70, 10, 90), (-9, -9, 0, 0), (5, 5, 5, 9)]
        )
        == jpeg
    )
    assert mask_jpeg_blocks(jpeg, []) == jpeg
    # Partly outside: clipped to the image, the edge MCUs (partial ones included) are masked.
    boxes = [(-50, -50, 3, 3), (90, 60, 10_000, 10_000)]
    region = masked_pixel_region(jpeg, boxes)
    assert region.shape == (70, 100)
    assert region[:16, :16].all() and region[48:, 80:].all()
    assert region.sum() == 16 * 16 + 22 * 20
    _check(jpeg, boxes, 0)


def test_whole_image() -> None:
    jpeg = _pillow_jpeg(40, 24, subsampling=1)
    masked = _check(jpeg, [(0, 0, 40, 24)], 0)
    assert (_luma(masked, True) <= 2).all()


# ----------------------------------------------------------------------------- pydicom's files


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("SC_rgb_jpeg_dcmtk.dcm", 0),
        ("SC_rgb_dcmtk_+eb+cy+np.dcm", 0),  # YBR_FULL_422
        ("color3d_jpeg_baseline.dcm", 0),  # multi-frame, 4:2:2, tables before SOF
        ("color3d_jpeg_baseline.dcm", 119),
        ("SC_jpeg_no_color_transform.dcm", 0),  # ids 0,1,2, no marker: decoded as YCbCr
        ("SC_rgb_jpeg_lossy_gdcm.dcm", 0),
    ],
)
@pytest.mark.parametrize("fill", [0, 128])
def test_pydicom_files(name: str, index: int, fill: int) -> None:
    frame = _dicom_frame(name, index)
    _check(frame, [(5, 7, 40, 22), (70, 60, 91, 75)], fill)


def test_adobe_rgb_coded_fills_every_component() -> None:
    frame = _dicom_frame("SC_jpeg_no_color_transform_2.dcm")  # Adobe transform 0: RGB
    assert not parse(frame).ycbcr
    masked = _check(frame, [(5, 7, 40, 22)], 200, exact_outside=True)
    rgb = _decode(masked)[masked_pixel_region(frame, [(5, 7, 40, 22)])]
    assert np.abs(rgb.astype(int) - 200).max() <= 2


def test_explicit_colour_transform_override() -> None:
    frame = _dicom_frame("SC_jpeg_no_color_transform.dcm")
    assert parse(frame).ycbcr  # libjpeg's guess
    masked = mask_jpeg_blocks(frame, [(0, 0, 16, 16)], fill=50, ycbcr=False)
    after = read_coefficients(masked)
    q0 = parse(frame).scans[0].q0
    for comp in range(3):  # every component now gets the fill level
        assert after[comp][0, 0, 0, 0] == int(np.floor((50 - 128) * 8 / q0[comp] + 0.5))
        assert not after[comp][0, 0].ravel()[1:].any()


# ----------------------------------------------------------------------------- refusals


def _refuses(codestream: bytes, reason: str, **kw) -> None:
    with pytest.raises(JpegBlockError, match=reason):
        mask_jpeg_blocks(codestream, [(0, 0, 8, 8)], **kw)


def test_refuses_12_bit() -> None:
    _refuses(_dicom_frame("JPEG-lossy.dcm"), "12-bit")


def test_refuses_lossless() -> None:
    _refuses(_dicom_frame("SC_rgb_jpeg_gdcm.dcm"), "lossless")


def test_refuses_progressive() -> None:
    buf = io.BytesIO()
    Image.fromarray(_picture(64, 48)).save(
        buf, format="JPEG", quality=90, progressive=True
    )
    _refuses(buf.getvalue(), "progressive")


def test_refuses_arithmetic_and_hierarchical() -> None:
    jpeg = _pillow_jpeg(32, 32)
    sof = jpeg.index(b"\xff\xc0")
    for marker, reason in [
        (0xC9, "arithmetic"),
        (0xC5, "hierarchical"),
        (0xC3, "lossless"),
    ]:
        _refuses(jpeg[:sof] + bytes((0xFF, marker)) + jpeg[sof + 2 :], reason)


def test_refuses_cmyk() -> None:
    buf = io.BytesIO()
    Image.fromarray(_picture(32, 32)).convert("CMYK").save(buf, format="JPEG")
    _refuses(buf.getvalue(), "4 colour components")


def test_refuses_missing_tables() -> None:
    jpeg = _pillow_jpeg(32, 32, subsampling=0)
    # Drop every DHT segment.
    out, pos = bytearray(jpeg[:2]), 2
    while jpeg[pos + 1] != 0xDA:
        length = int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
        if jpeg[pos + 1] != 0xC4:
            out += jpeg[pos : pos + 2 + length]
        pos += 2 + length
    out += jpeg[pos:]
    _refuses(bytes(out), "missing Huffman table")
    no_dqt = jpeg.replace(b"\xff\xdb", b"\xff\xfe", 2)  # DQT -> COM
    _refuses(no_dqt, "missing quantisation table")


def test_refuses_a_symbol_the_tables_cannot_code() -> None:
    # A flat bright picture with optimised tables: only DC categories for small
    # differences and only EOB in the AC table; a black fill needs a big DC jump.
    buf = io.BytesIO()
    Image.new("L", (64, 64), 200).save(buf, format="JPEG", quality=90, optimize=True)
    _refuses(buf.getvalue(), "no code in the Huffman table")
    # A fill equal to the content needs nothing new.
    assert mask_jpeg_blocks(buf.getvalue(), [(0, 0, 8, 8)], fill=200) == buf.getvalue()


def test_refuses_dicom_file_whose_optimised_dc_table_lacks_a_category() -> None:
    # dcmtk wrote optimised tables without DC category 10: a white fill next to dark
    # blocks needs a difference of ~640, which those tables cannot code.
    frame = _dicom_frame("SC_rgb_jpeg_dcmtk.dcm")
    with pytest.raises(JpegBlockError, match="DC difference category has no code"):
        mask_jpeg_blocks(frame, [(5, 7, 40, 22), (70, 60, 91, 75)], fill=255)


def test_refuses_corrupt_data() -> None:
    jpeg = _pillow_jpeg(64, 48, subsampling=2)
    sos = jpeg.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(jpeg[sos + 2 : sos + 4], "big")
    # Truncated entropy-coded data (EOI kept).
    with pytest.raises(JpegBlockError):
        mask_jpeg_blocks(jpeg[: start + 40] + b"\xff\xd9", [(0, 0, 8, 8)])
    # No EOI / no marker at all after the scan.
    with pytest.raises(JpegBlockError):
        mask_jpeg_blocks(jpeg[: start + 40], [(0, 0, 8, 8)])
    # Not a JPEG.
    _refuses(b"\x00\x01\x02\x03" * 10, "no SOI")
    _refuses(b"", "no SOI")
    # Restart markers where the header defines none.
    rst = jpeg[:start] + jpeg[start : start + 30] + b"\xff\xd0" + jpeg[start + 30 :]
    with pytest.raises(JpegBlockError):
        mask_jpeg_blocks(rst, [(0, 0, 8, 8)])
    # Garbage bytes in the scan: either undecodable or the wrong length; never silent.
    rng = np.random.default_rng(1)
    noise = (
        rng.integers(0, 255, 200, dtype=np.uint8).tobytes().replace(b"\xff", b"\x00")
    )
    with pytest.raises(JpegBlockError):
        mask_jpeg_blocks(jpeg[:start] + noise + jpeg[start + 200 :], [(0, 0, 8, 8)])


def test_error_messages_name_reasons_only() -> None:
    jpeg = _dicom_frame("JPEG-lossy.dcm")
    with pytest.raises(JpegBlockError) as info:
        mask_jpeg_blocks(jpeg, [(0, 0, 8, 8)])
    assert str(info.value) == "not handled: 12-bit sample precision"


def test_bad_arguments() -> None:
    jpeg = _pillow_jpeg(32, 32)
    for fill in (-1, 256, 1.5, True):
        with pytest.raises(ValueError, match="fill"):
            mask_jpeg_blocks(jpeg, [(0, 0, 8, 8)], fill=fill)
    with pytest.raises(ValueError, match="box"):
        mask_jpeg_blocks(jpeg, [(0, 0, 8)])


# ----------------------------------------------------------------------------- size


def test_large_colour_image_is_fast() -> None:
    width, height = 2048, 1536
    jpeg = _pillow_jpeg(width, height, subsampling=2)
    boxes = [(0, 0, 600, 64), (1500, 1400, 2048, 1536), (900, 700, 1000, 760)]
    t0 = time.perf_counter()
    masked = mask_jpeg_blocks(jpeg, boxes, fill=0)
    elapsed = time.perf_counter() - t0
    assert elapsed < 30, elapsed  # ~2-4 s on a busy 2-core machine
    region = masked_pixel_region(jpeg, boxes)
    parsed = parse(jpeg)
    cells = region[:: 8 * parsed.vmax, :: 8 * parsed.hmax]
    near = np.repeat(np.repeat(_dilate_cells(cells), 16, axis=0), 16, axis=1)
    a0, a1 = _decode(jpeg), _decode(masked)
    np.testing.assert_array_equal(a0[~near], a1[~near])
    assert np.abs(_luma(masked, True)[region].astype(int)).max() <= 2
