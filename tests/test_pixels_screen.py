"""The text-presence screen, crop-reading reuse and the masking fill, on small synthetic frames.

Nothing here depends on time: the screen is judged by what it keeps, reuse by
how many times a recogniser is called.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from medveil.pixels import ocr
from medveil.pixels.clean import clean_pixels, fill_value
from medveil.pixels.detect import ReadingCache, scan_frames
from medveil.pixels.frames import iter_frames
from medveil.pixels.ocr import Word
from medveil.pixels.screen import screen_frame, whole_frame
from medveil.policy import PixelSettings

PIL = pytest.importorskip("PIL")
cv2 = pytest.importorskip("cv2")
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

SIZE = 160
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
DEPTHS = {8: (np.uint8, 255), 12: (np.uint16, 4095), 16: (np.uint16, 65535)}


def anatomy(bits: int, seed: int = 3) -> np.ndarray:
    """A smooth blob on a noisy background, in the stored range of *bits*."""
    dtype, top = DEPTHS[bits]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    blob = np.exp(-(((yy - 80) / 45.0) ** 2 + ((xx - 80) / 55.0) ** 2))
    values = 0.15 * top + 0.45 * top * blob + rng.normal(0, 0.01 * top, blob.shape)
    return np.clip(values, 0, top).astype(dtype)


def burn(frame: np.ndarray, bits: int, size: int, corner: str, bright: bool) -> tuple[np.ndarray, tuple]:
    """Draw one line of text of glyph *size* in *corner*: brightest value (or darkest) on the frame."""
    _dtype, top = DEPTHS[bits]
    font = ImageFont.load_default(size=size)
    text = "DOE JANE 4711"
    canvas = Image.new("L", (SIZE, SIZE), 0)
    draw = ImageDraw.Draw(canvas)
    x1, y1, x2, y2 = draw.textbbox((0, 0), text, font=font)
    width, height = x2 - x1, y2 - y1
    x = 3 if "left" in corner else SIZE - width - 3
    y = 3 if "top" in corner else SIZE - height - 3
    draw.text((x - x1, y - y1), text, fill=255, font=font)
    ink = np.asarray(canvas) > 127
    out = frame.copy()
    out[ink] = top if bright else 0
    return out, (x, y, x + width, y + height)


def covered(candidates, box) -> bool:
    x1, y1, x2, y2 = box
    inside = np.zeros((SIZE, SIZE), dtype=bool)
    for c in candidates:
        inside[c.y1:c.y2, c.x1:c.x2] = True
    return bool(inside[y1:y2, x1:x2].all())


@pytest.mark.parametrize("bits", sorted(DEPTHS))
@pytest.mark.parametrize("size", [8, 10, 12, 16])
@pytest.mark.parametrize("corner", CORNERS)
@pytest.mark.parametrize("bright", [True, False], ids=["bright", "dark"])
def test_screen_never_drops_a_burned_in_line(bits, size, corner, bright):
    frame, box = burn(anatomy(bits), bits, size, corner, bright)
    candidates = screen_frame(frame)
    assert candidates, "the screen dropped a frame with text"
    assert covered(candidates, box), "a candidate region must hold the whole line"


@pytest.mark.parametrize("bits", sorted(DEPTHS))
def test_screen_passes_a_frame_without_text(bits):
    assert screen_frame(anatomy(bits)) == []


def test_screen_finds_coloured_text_on_an_rgb_screen():
    frame = np.full((SIZE, SIZE, 3), 20, dtype=np.uint8)
    canvas = Image.fromarray(frame)
    ImageDraw.Draw(canvas).text((5, 140), "MRN 40981237", fill=(255, 255, 0), font=ImageFont.load_default(size=11))
    assert screen_frame(np.asarray(canvas))


def test_screen_off_is_the_whole_frame():
    frame = anatomy(8)
    assert screen_frame(frame, "off") == whole_frame(frame) == [whole_frame(frame)[0]]
    assert whole_frame(frame)[0].area == SIZE * SIZE


# -- reading reuse: count recogniser calls ----------------------------------------------------------------


class CountingEngine:
    """Says every crop it is shown reads "DOE JANE", and counts how many crops it was shown."""

    name = "counting"

    def __init__(self) -> None:
        self.crops = 0

    def read(self, image, *, line=False):
        self.crops += 1
        height, width = image.shape[:2]
        return [Word("DOE JANE", (0, 0, width, height), 0.99)]


def slice_ds(frame: np.ndarray, bits: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.Rows, ds.Columns = frame.shape[:2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(frame).tobytes()
    return ds


def series(count: int, bits: int = 12) -> list[Dataset]:
    """Slices whose anatomy differs and whose corner text (over the padding) is identical."""
    slices = []
    for index in range(count):
        body = anatomy(bits, seed=10 + index)
        body[110:, :90] = 0  # the padding outside the field of view, where scanners put text
        frame, _box = burn(body, bits, 10, "bottom-left", True)
        slices.append(slice_ds(frame, bits))
    return slices


def test_a_repeated_crop_is_read_once_per_series():
    engine = CountingEngine()
    cache = ReadingCache()
    scans = [scan_frames(ds, engines=[engine], cache=cache, both_polarities=False) for ds in series(6)]
    assert all(scan.boxes for scan in scans), "every slice keeps its boxes"
    assert engine.crops == 1
    assert sum(scan.crops_read for scan in scans) == 1
    assert sum(scan.crops_reused for scan in scans) == 5


def test_a_changed_crop_is_read_again():
    engine = CountingEngine()
    cache = ReadingCache()
    first, second = series(2)
    data = bytearray(second.PixelData)
    # one more stroke inside the text region: different bytes at the same place
    frame = np.frombuffer(bytes(data), dtype=np.uint16).reshape(SIZE, SIZE).copy()
    frame[150, 10:20] = 4095
    second.PixelData = frame.tobytes()
    scan_frames(first, engines=[engine], cache=cache, both_polarities=False)
    scan_frames(second, engines=[engine], cache=cache, both_polarities=False)
    assert engine.crops == 2


def test_reading_cache_drops_the_oldest_beyond_capacity():
    cache = ReadingCache(capacity=2)
    for key in (b"a", b"b", b"c"):
        cache.put(key, ())
    assert len(cache) == 2 and cache.get(b"a") is None and cache.get(b"c") == ()


# -- masking: pixels outside unchanged, fill from the image ----------------------------------------------


@pytest.fixture
def counting():
    engine = CountingEngine()
    ocr.register_engine("counting", lambda: engine)
    yield engine
    ocr._REGISTERED.pop("counting", None)
    ocr.get_engine.cache_clear()


@pytest.mark.parametrize("bits", sorted(DEPTHS))
def test_pixels_outside_the_boxes_are_unchanged(counting, bits):
    ds = series(1, bits)[0]
    before = next(iter_frames(ds)).copy()
    report = clean_pixels(ds, PixelSettings(engines=("counting",), policy="all-text", shipped_rules=False))
    after = next(iter_frames(ds))
    assert report.masked
    inside = np.zeros(before.shape, dtype=bool)
    pad = PixelSettings().padding
    for region in report.masked:
        inside[max(0, region.y1 - pad):region.y2 + pad, max(0, region.x1 - pad):region.x2 + pad] = True
    assert np.array_equal(before[~inside], after[~inside])
    assert not np.array_equal(before[inside], after[inside])


def test_fill_is_the_darkest_value_the_image_uses(counting):
    ds = series(1, 16)[0]
    frame = np.frombuffer(ds.PixelData, dtype=np.uint16).reshape(SIZE, SIZE).copy()
    frame[frame < 900] = 900  # nothing in this image is darker than 900
    frame[150, 10:60] = 65535
    ds.PixelData = frame.tobytes()
    report = clean_pixels(ds, PixelSettings(engines=("counting",), policy="all-text", shipped_rules=False))
    assert report.fill == 900
    after = next(iter_frames(ds))
    region = report.masked[0]
    assert after[region.y1 + 1, region.x1 + 1] == 900
    assert after.min() == 900, "masking must not bring in a value darker than the image"


def test_fill_is_the_pixel_padding_value_when_present():
    ds = series(1, 16)[0]
    ds.PixelPaddingValue = 7
    assert fill_value(ds, PixelSettings(), None) == 7


def test_fill_on_signed_ct_is_not_the_type_minimum():
    ds = series(1, 12)[0]  # 0..4095 stored, signed 16-bit after the shift: -1024..3071
    frame = np.frombuffer(ds.PixelData, dtype=np.uint16).reshape(SIZE, SIZE).astype(np.int32) - 1024
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 15, 1
    ds.PixelData = frame.astype(np.int16).tobytes()
    value = fill_value(ds, PixelSettings(), None)
    assert value == int(frame.min()) and value > -32768


# -- nothing masked: nothing transcoded -------------------------------------------------------------------


def _encapsulated(syntax, photometric: str) -> bytes:
    rng = np.random.default_rng(0)
    ds = slice_ds(anatomy(8), 8)
    ds.PatientName, ds.PatientID = "DOE^JANE", "ID4711"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    if photometric != "MONOCHROME2":
        grey = np.frombuffer(ds.PixelData, dtype=np.uint8).reshape(SIZE, SIZE)
        rgb = np.stack([grey, np.roll(grey, 3, axis=1), (grey // 2 + rng.integers(0, 5, grey.shape)).astype(np.uint8)],
                       axis=-1)
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
        ds.PhotometricInterpretation = "RGB"
        ds.PixelData = np.ascontiguousarray(rgb).tobytes()
    kwargs = {"use_mct": True} if photometric == "YBR_RCT" else {}
    ds.compress(syntax, generate_instance_uid=False, **kwargs)
    if photometric == "YBR_RCT":
        ds.PhotometricInterpretation = "YBR_RCT"  # RGB coded with the reversible colour transform
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("syntax, photometric", [
    (RLELossless, "MONOCHROME2"),
    (RLELossless, "RGB"),
    (JPEG2000Lossless, "MONOCHROME2"),
    (JPEG2000Lossless, "YBR_RCT"),
])
def test_pixels_without_text_keep_their_encoding(syntax, photometric, counting):
    from dataclasses import replace

    from medveil.pipeline import deidentify_bytes
    from medveil.policy.profiles import get_profile
    from medveil.pseudonym import Key

    try:
        data = _encapsulated(syntax, photometric)
    except Exception as exc:  # noqa: BLE001  (no encoder installed for this combination)
        pytest.skip(f"cannot encode {photometric} as {syntax.name}: {type(exc).__name__}")
    source = pydicom.dcmread(io.BytesIO(data))
    policy = get_profile("tcia")
    policy = replace(policy, pixels=replace(policy.pixels, engines=("counting",)))
    out, record = deidentify_bytes(data, policy, Key(bytes(range(32))))
    assert record.status == "written", record.reason
    result = pydicom.dcmread(io.BytesIO(out))
    assert not [e for e in record.events if e[0] == "pixel-box"]
    assert result.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
    assert result.PhotometricInterpretation == source.PhotometricInterpretation
    assert result.PixelData == source.PixelData


# -- the screen on full-size frames: sparse strokes, solid backgrounds ---------------------------------


def ct_like(size: int = 512, seed: int = 7) -> np.ndarray:
    """A signed CT-like slice: a noisy disc of tissue inside padding at the type's low end."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    frame = (900 + rng.normal(0, 8, (size, size))).astype(np.int16)
    frame[(yy - size // 2) ** 2 + (xx - size // 2) ** 2 > (0.45 * size) ** 2] = -2000
    return frame


def draw_line(frame: np.ndarray, text: str, at: tuple[int, int], value: int, size: int = 11) -> tuple:
    canvas = Image.new("L", (frame.shape[1], frame.shape[0]), 0)
    draw = ImageDraw.Draw(canvas)
    draw.text(at, text, fill=255, font=ImageFont.load_default(size=size))
    ink = np.asarray(canvas) > 127
    frame[ink] = value
    ys, xs = np.nonzero(ink)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def holds(candidates, box) -> bool:
    x1, y1, x2, y2 = box
    return any(c.x1 <= x1 and c.y1 <= y1 and c.x2 >= x2 and c.y2 >= y2 for c in candidates)


def test_text_in_the_padding_of_a_ct_slice_is_found_beside_scattered_specks():
    """Specks all over the frame make the stroke maps' bounding rectangle the whole frame: the
    map is then labelled region by region, and the line in the corner is still one candidate."""
    frame = ct_like()
    rng = np.random.default_rng(1)
    for y, x in rng.integers(40, 470, size=(40, 2)):
        frame[y, x] = 3071  # isolated hot pixels: no line
    box = draw_line(frame, "DOE^JANE 40981237", (8, 490), 3071)
    candidates = screen_frame(frame)
    assert holds(candidates, box)
    assert all(c.y1 >= 440 for c in candidates), "isolated specks are no line"


def test_text_touching_a_solid_background_of_the_same_value_is_found():
    """Dark text at the padding value, over tissue, touching the padding: the extreme layer is
    mostly background; its strokes are kept apart from it, and the line is a candidate."""
    frame = ct_like()
    box = draw_line(frame, "ST MARY HOSP", (205, 28), -2000, size=12)  # its top row touches the padding
    assert frame[box[1] - 1, box[0]:box[2]].min() == -2000
    assert holds(screen_frame(frame), box)


def test_a_slice_without_text_has_no_candidate_in_its_padding():
    assert not [c for c in screen_frame(ct_like()) if c.y1 > 470 or c.y2 < 40]


def test_identifiers_are_collected_only_when_text_is_found(counting):
    """Collecting the header's identifiers walks it all; a frame without text does not need them."""
    from medveil.pixels.detect import SERIES_CACHE
    from medveil.text import KnownIdentifiers

    calls = []

    def collect():
        calls.append(1)
        return KnownIdentifiers()

    settings = PixelSettings(engines=("counting",), policy="phi-only")
    clean_pixels(slice_ds(anatomy(12), 12), settings, known=collect)
    assert calls == []
    SERIES_CACHE.clear()
    clean_pixels(series(1)[0], settings, known=collect)
    assert calls == [1]


# -- what the screen leaves out, and what it reuses --------------------------------------------------


@pytest.mark.parametrize("size", [10, 12, 16])
@pytest.mark.parametrize("bright", [True, False], ids=["bright", "dark"])
def test_screen_finds_text_after_lossy_jpeg(size, bright):
    frame, box = burn(anatomy(8), 8, size, "bottom-left", bright)
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=50)
    compressed = np.asarray(Image.open(buffer))
    assert covered(screen_frame(compressed), box), "text drawn in one value, then compressed, is still text"


def test_screen_leaves_anatomy_that_merely_reaches_the_top_of_the_range():
    """Two bone-like bars side by side whose values spread over the top tenth of a CT's range: in
    the extreme layer they look like two glyphs, but text is drawn in one value."""
    rng = np.random.default_rng(8)
    frame = rng.normal(40, 6, (256, 256)).astype(np.int16)
    _yy, xx = np.mgrid[:16, :5]
    ramp = (2700 + 40 * xx).astype(np.int16)  # 2700..2860 of a 0..3000 range: in its top tenth, spread
    for x in (100, 112):
        frame[120:136, x:x + 5] = ramp
    frame[0, 0] = 3000
    assert screen_frame(frame) == []
    flat = frame.copy()
    for x in (100, 112):
        flat[120:136, x:x + 5] = 3000  # the same shapes drawn in one value: a line of text
    assert screen_frame(flat)


def test_background_layers_are_reused_across_slices(monkeypatch):
    """A CT's padding outside its field of view is the same on every slice: its layer's lines are
    found once and reused, and they are the lines found afresh."""
    from medveil.pixels import screen

    memo = screen.BackgroundLines()
    monkeypatch.setattr(screen, "BACKGROUNDS", memo)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    outside = (yy - 80) ** 2 + (xx - 80) ** 2 > 70 ** 2
    slices = []
    for seed in (1, 2, 3):
        frame = anatomy(12, seed=seed)
        frame[outside] = 0  # padding at the minimum: the dark extreme layer is mostly background
        slices.append(burn(frame, 12, 8, "top-left", True)[0])
    found = [screen_frame(frame) for frame in slices]
    assert memo.reused == 2
    monkeypatch.setattr(screen, "BACKGROUNDS", screen.BackgroundLines())
    assert found == [screen_frame(frame) for frame in slices]
    assert all(found)
