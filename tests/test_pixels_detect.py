"""Burned-in text detection on synthetic images whose text position is known."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.pixels import convert_color_space
from pydicom.uid import ExplicitVRLittleEndian

from medveil.pixels import detect, frames
from medveil.pixels.detect import TextBox, detect_text, merge_boxes, tiles
from medveil.pixels.ocr import OcrUnavailable

PIL = pytest.importorskip("PIL")
from PIL import Image, ImageDraw, ImageFont


def draw_text(shape, text, at, *, size=24, value=255, background=0, mode="L"):
    """An image with ``text`` drawn at ``at``, and the text's (x1, y1, x2, y2) box."""
    height, width = shape
    image = Image.new(mode, (width, height), background)
    font = ImageFont.load_default(size=size)
    ImageDraw.Draw(image).text(at, text, fill=value, font=font)
    box = ImageDraw.Draw(image).textbbox(at, text, font=font)
    return np.asarray(image), box


def dataset(pixels: np.ndarray, *, photometric="MONOCHROME2", bits_stored=8, frames_=1) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    colour = photometric not in ("MONOCHROME1", "MONOCHROME2")
    shape = pixels.shape[1:] if frames_ > 1 else pixels.shape
    ds.Rows, ds.Columns = shape[0], shape[1]
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits_stored <= 8 else 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    if frames_ > 1:
        ds.NumberOfFrames = frames_
    dtype = np.uint8 if bits_stored <= 8 else np.uint16
    ds.PixelData = np.ascontiguousarray(pixels, dtype=dtype).tobytes()
    return ds


def overlaps(found: TextBox, box) -> bool:
    x1, y1, x2, y2 = box
    return found.x1 < x2 and x1 < found.x2 and found.y1 < y2 and y1 < found.y2


# -- frames: no OCR engine needed ------------------------------------------------------


def test_monochrome1_display_matches_monochrome2_polarity():
    pixels, box = draw_text((64, 200), "ID 42", (10, 10), value=0, background=4095, mode="I;16")
    ds = dataset(pixels.astype(np.uint16), photometric="MONOCHROME1", bits_stored=12)
    frame = next(frames.iter_frames(ds))
    view = frames.display_view(frame, ds)
    assert view.dtype == np.uint8
    x1, y1, x2, y2 = box
    assert view[y1:y2, x1:x2].max() == 255  # text white, as on a MONOCHROME2 screen
    assert view[0, 0] == 0


def test_window_scales_deep_data():
    data = np.full((32, 32), 1000, dtype=np.uint16)
    data[4:8, 4:20] = 4095  # a label far above the window
    ds = dataset(data, bits_stored=12)
    ds.WindowCenter, ds.WindowWidth = 1000, 400
    display = frames.display_view(data, ds)
    assert display[0, 0] in (127, 128) and display[5, 5] == 255


def test_ybr_frames_come_back_as_rgb():
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    ds = dataset(ybr, photometric="YBR_FULL")
    frame = next(frames.iter_frames(ds))
    assert frame.shape == (8, 8, 3)
    assert abs(int(frame[0, 0, 0]) - 200) <= 2 and frame[0, 0, 2] <= 2


def test_identical_frames_share_a_digest():
    a = np.zeros((4, 4), np.uint8)
    b = a.copy()
    b[0, 0] = 1
    assert frames.frame_digest(a) == frames.frame_digest(a.copy())
    assert frames.frame_digest(a) != frames.frame_digest(b)
    assert frames.frame_digest(a) != frames.frame_digest(a.reshape(2, 8))


def test_tiles_cover_with_overlap():
    found = tiles(1100, 2500, size=1024, overlap=64)
    covered = np.zeros((1100, 2500), bool)
    for x1, y1, x2, y2 in found:
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    assert tiles(500, 700) == [(0, 0, 700, 500)]


def test_merge_joins_overlapping_boxes_of_one_frame_only():
    boxes = [TextBox(0, 0, 0, 10, 10, "a", 0.9, "SECRET"), TextBox(0, 5, 5, 20, 12, "b", 0.8, "y"),
             TextBox(1, 5, 5, 20, 12, "b", 0.8, "y"), TextBox(0, 30, 30, 40, 40, "a", 0.7, "z")]
    merged = sorted(merge_boxes(boxes), key=lambda b: (b.frame, b.x1))
    assert [(b.frame, b.x1, b.y1, b.x2, b.y2, b.engine) for b in merged] == [
        (0, 0, 0, 20, 12, "a+b"), (0, 30, 30, 40, 40, "a"), (1, 5, 5, 20, 12, "b")]
    assert "SECRET" not in repr(merged[0]) and "SECRET" in merged[0].text  # the text is PHI: not in reprs


# -- detection with real engines --------------------------------------------------------


@pytest.fixture(scope="module")
def rapidocr():
    pytest.importorskip("rapidocr_onnxruntime")
    return detect.get_engine("rapidocr")


@pytest.fixture(scope="module")
def tesseract():
    pytest.importorskip("tesserocr")
    try:
        return detect.get_engine("tesseract")
    except OcrUnavailable:
        pytest.skip("no Tesseract model")


def test_monochrome2_8bit(rapidocr):
    pixels, box = draw_text((120, 320), "SMITH JOHN", (20, 40))
    found = detect_text(dataset(pixels), engines=[rapidocr])
    assert any(overlaps(b, box) for b in found)
    assert all(b.frame == 0 and b.engine == "rapidocr" for b in found)


def test_monochrome1_12bit(rapidocr):
    pixels, box = draw_text((120, 320), "ID 4471923", (20, 40), value=0, background=4095, mode="I;16")
    found = detect_text(dataset(pixels.astype(np.uint16), photometric="MONOCHROME1", bits_stored=12),
                        engines=[rapidocr])
    assert any(overlaps(b, box) for b in found)


def test_rgb(rapidocr):
    pixels, box = draw_text((120, 320), "DOE JANE", (20, 40), value=(255, 255, 0), background=(0, 0, 90),
                            mode="RGB")
    found = detect_text(dataset(pixels, photometric="RGB"), engines=[rapidocr], both_polarities=False)
    assert any(overlaps(b, box) for b in found)


def test_identical_frames_are_examined_once(rapidocr, monkeypatch):
    first, box = draw_text((100, 300), "FRAME ONE", (20, 30))
    second, _ = draw_text((100, 300), "OTHER", (20, 30))
    calls = []
    examine = detect._read_frame

    def spy(frame, *args, **kwargs):
        calls.append(frame.shape)
        return examine(frame, *args, **kwargs)

    monkeypatch.setattr(detect, "_read_frame", spy)
    found = detect_text(dataset(np.stack([first, second, first]), frames_=3), engines=[rapidocr],
                        both_polarities=False)
    assert len(calls) == 2
    on_first = sorted((b.x1, b.y1, b.x2, b.y2) for b in found if b.frame == 0)
    on_third = sorted((b.x1, b.y1, b.x2, b.y2) for b in found if b.frame == 2)
    assert on_first and on_first == on_third
    assert any(overlaps(b, box) for b in found if b.frame == 0)


def test_large_image_is_tiled_and_boxes_map_back(tesseract, monkeypatch):
    pixels, box = draw_text((1300, 1500), "ACCESSION 99812", (1100, 1150), size=28)
    shapes = []
    read = tesseract.read

    class Counting:
        name = tesseract.name

        def read(self, image, *, line=False):
            shapes.append(image.shape)
            return read(image, line=line)

    found = detect_text(dataset(pixels), engines=[Counting()], screen="off")  # whole frames are tiled
    assert len(shapes) in (4, 8) and all(max(s) <= detect.TILE_SIZE for s in shapes)
    assert any(overlaps(b, box) for b in found)
    assert all(b.x2 <= 1500 and b.y2 <= 1300 for b in found)


def test_blank_image_has_no_boxes(rapidocr):
    assert detect_text(dataset(np.zeros((128, 256), np.uint8)), engines=[rapidocr], both_polarities=False) == []
