"""Inside the per-file core: what a curator will want to see of one file, made while it is at hand.

Two things, both cheap enough to make for every file:

- **Header differences.**  :class:`HeaderSnapshot` notes the header before
  de-identification.  It keeps references to the elements pydicom has not
  converted yet (they are immutable and the engine replaces rather than edits
  them) and a digest of the value of those already converted, never a copy of
  a value.  After de-identification :meth:`HeaderSnapshot.changes` lists each
  attribute that was removed, emptied, replaced or added, with the value the
  OUTPUT holds.  The original value is never part of the result.
- **Before and after pixels of masked images.**  :func:`pixel_source` keeps
  the input's Pixel Data (shared, not copied) and the few attributes needed to
  decode and display it; :func:`render_views` draws the frames that carry
  masked boxes, before and after, downscaled, plus enlarged crops of the
  boxes.  They are kept as compressed 8-bit pixels (the after picture as its
  difference from the before one) and become PNGs only when someone looks
  (:func:`as_png`): made for every masked file, looked at for a few.  These
  "before" images are original content: they travel only to the coordinator,
  which keeps them in the private workspace.

Nothing here may make a file fail: the caller turns an exception into a note
on the record, and the file is released or quarantined on its own merits.
"""

from __future__ import annotations

import copy
import hashlib
import io
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from PIL import Image
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag

from medveil.dicomio.vr import BINARY_VRS
from medveil.engine.vrs import keyword_of
from medveil.pixels.frames import display_view, iter_frames

#: Pixel Data and its float variants: pixel changes are shown as images, not as header differences.
_PIXEL_GROUP = 0x7FE0
#: At most this many header differences are kept per file (an RT Structure Set can have thousands of
#: remapped references); the rest are counted.
MAX_CHANGES = 1000
#: Longest side of a frame thumbnail, frames shown per file, box crops per file, crop bounds.
THUMBNAIL_SIDE = 512
#: Small frames (a 128-pixel CT) are enlarged to about this size, pixels repeated.
MIN_SIDE = 256
MAX_FRAMES = 3
MAX_CROPS = 6
CROP_WIDTH, CROP_HEIGHT, CROP_ZOOM = 480, 200, 4.0
PREVIEW_CHARS = 64
#: zlib level of the pictures' PNGs (see :func:`png`).
PNG_LEVEL = 1

#: What decoding and displaying Pixel Data needs besides the value itself.
_PIXEL_CONTEXT = tuple(Tag(k) for k in (
    "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "NumberOfFrames", "Rows", "Columns",
    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "RescaleIntercept", "RescaleSlope",
    "RescaleType", "WindowCenter", "WindowWidth", "VOILUTFunction", "VOILUTSequence", "ModalityLUTSequence",
    "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData", "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData"))
_PIXEL_DATA = Tag("PixelData")


@dataclass(frozen=True)
class HeaderChange:
    """One attribute the run changed: where, how, and what the output holds (never the original)."""

    attribute: str  # Keyword, (gggg,eeee) without one, nested as Keyword[0].Keyword
    tag: str  # (gggg,eeee) of the attribute itself
    action: str  # "removed", "emptied", "replaced" or "added"
    value: str = ""  # the output's value, shortened; "" when removed or emptied

    def as_dict(self) -> dict:
        return {"attribute": self.attribute, "tag": self.tag, "action": self.action, "value": self.value}


@dataclass(frozen=True)
class Picture:
    """A before/after pair of one region of one frame, shown at ``width`` x ``height``.

    ``before`` and ``after`` are the pixels as :func:`pack` keeps them (the
    after picture as its difference from the before one), not PNGs: a run
    makes these for every masked file and a curator looks at a few, so the
    PNG is made when one is looked at (:func:`as_png`).
    """

    region: tuple[int, int, int, int]  # x1, y1, x2, y2 in the frame's pixels
    width: int  # of each picture as shown
    height: int
    before: bytes = field(repr=False)
    after: bytes = field(repr=False)

    @property
    def before_png(self) -> bytes:
        return as_png(self.before)

    @property
    def after_png(self) -> bytes:
        return as_png(self.after, self.before)


@dataclass(frozen=True)
class FrameView:
    """A frame with masked boxes: the whole frame downscaled, and each box enlarged."""

    frame: int
    rows: int
    columns: int
    boxes: tuple[tuple[int, int, int, int], ...]
    whole: Picture
    crops: tuple[Picture, ...] = ()


@dataclass
class ReviewMaterial:
    """What the core hands the coordinator for the workspace's review database."""

    changes: list[HeaderChange] = field(default_factory=list)
    changes_left_out: int = 0
    #: Rendered only for images whose pixels were masked; holds original pixels (never logged).
    views: list[FrameView] = field(default_factory=list, repr=False)
    #: Why something could not be made (an exception's type, never a value).
    note: str | None = None


def review_material(snapshot: HeaderSnapshot, ds: Dataset, source: Dataset | None,
                    masked: Iterable = ()) -> ReviewMaterial:
    """The header differences of *ds* since *snapshot*, and pictures of its *masked* regions.

    Never raises: what cannot be made is left out with a note naming the
    exception's type.
    """
    material = ReviewMaterial()
    try:
        material.changes, material.changes_left_out = snapshot.changes(ds)
    except Exception as exc:  # noqa: BLE001  (review material must never fail a file)
        material.note = f"header differences could not be listed ({type(exc).__name__})"
    masked = list(masked)
    if masked and source is not None:
        try:
            material.views = render_views(source, ds, masked)
        except Exception as exc:  # noqa: BLE001
            material.note = f"masked pixels could not be rendered ({type(exc).__name__})"
    return material


# -- header ------------------------------------------------------------------------------------


def _label(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _digest(elem: DataElement) -> bytes:
    value = elem.value
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        data = repr(value).encode("utf-8", "backslashreplace")
    return hashlib.blake2b(data, digest_size=16).digest()


class HeaderSnapshot:
    """The header of one dataset (and its file meta) as it was, without copying values."""

    def __init__(self, ds: Dataset) -> None:
        self._encoding = list(getattr(ds, "_character_set", None) or ["iso8859"])
        self._body = self._snap(ds)
        meta = getattr(ds, "file_meta", None)
        self._meta = self._snap(meta) if meta is not None else {}

    def _snap(self, ds: Dataset) -> dict:
        """tag -> the raw element itself, ("seq", [item snapshots]) or ("value", digest)."""
        out: dict = {}
        for tag, elem in ds._dict.items():
            if tag >> 16 == _PIXEL_GROUP:
                continue  # never compared; a reference would keep pydicom's copy of the pixels alive
            if isinstance(elem, RawDataElement):
                out[int(tag)] = elem
            elif elem.VR == "SQ":
                out[int(tag)] = ("seq", [self._snap(item) for item in elem.value or ()])
            else:
                out[int(tag)] = ("value", _digest(elem))
        return out

    def changes(self, ds: Dataset, limit: int = MAX_CHANGES) -> tuple[list[HeaderChange], int]:
        """What differs between the snapshot and *ds* now: ``(changes, how many more were left out)``."""
        found: list[HeaderChange] = []
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            self._diff(self._meta, meta, "", found)
        self._diff(self._body, ds, "", found)
        return found[:limit], max(0, len(found) - limit)

    # The walk compares each element of the snapshot with the dataset's element under the same tag.
    def _diff(self, before: dict, ds: Dataset, prefix: str, found: list[HeaderChange]) -> None:
        # BaseTag is an int (same hash, same equality): looking up by int finds the same entries.
        after = cast("dict[int, DataElement | RawDataElement]", ds._dict)
        for tag in sorted(set(before) | {int(t) for t in after}):
            if tag >> 16 == _PIXEL_GROUP or tag & 0xFFFF == 0:
                continue
            keyword = keyword_of(tag)
            name = prefix + (keyword or _label(tag))
            old, new = before.get(tag), after.get(tag)
            if new is None:
                found.append(HeaderChange(name, _label(tag), "removed"))
                continue
            if old is new:  # an element nobody converted or replaced
                continue
            new = self._converted(new)
            if old is None:
                found.append(HeaderChange(name, _label(tag), "added", _preview(new)))
                continue
            if new.VR == "SQ":
                self._diff_sequence(old, new, name, tag, found)
                continue
            if isinstance(old, RawDataElement) and isinstance(after.get(tag), RawDataElement) \
                    and bytes(old.value or b"") == bytes(after[tag].value or b""):
                continue
            old_digest = old[1] if isinstance(old, tuple) and old[0] == "value" else \
                _digest(self._converted(old)) if isinstance(old, RawDataElement) else None
            if old_digest == _digest(new):
                continue
            found.append(HeaderChange(name, _label(tag), "emptied" if _is_empty(new) else "replaced",
                                      "" if _is_empty(new) else _preview(new)))

    def _diff_sequence(self, old, new: DataElement, name: str, tag: int, found: list[HeaderChange]) -> None:
        if isinstance(old, RawDataElement):
            converted = self._converted(old)
            old_items = [self._snap(item) for item in converted.value] if converted.VR == "SQ" else None
        else:
            old_items = old[1] if old[0] == "seq" else None
        new_items = list(new.value or ())
        if old_items is None:
            found.append(HeaderChange(name, _label(tag), "replaced", _preview(new)))
            return
        if not new_items and old_items:
            found.append(HeaderChange(name, _label(tag), "emptied"))
            return
        if len(new_items) != len(old_items):
            found.append(HeaderChange(name, _label(tag), "replaced", _preview(new)))
        for index, (old_item, new_item) in enumerate(zip(old_items, new_items, strict=False)):
            self._diff(old_item, new_item, f"{name}[{index}].", found)

    def _converted(self, elem) -> DataElement:
        if not isinstance(elem, RawDataElement):
            return elem
        try:
            return convert_raw_data_element(elem, encoding=self._encoding)
        except Exception:  # noqa: BLE001  (an unreadable value still counts as a value)
            return DataElement(elem.tag, "UN", bytes(elem.value or b""))


def _is_empty(elem: DataElement) -> bool:
    value = elem.value
    return value is None or (hasattr(value, "__len__") and len(value) == 0)


def _preview(elem: DataElement) -> str:
    """The output's value as a short, printable string."""
    if elem.VR == "SQ":
        return f"<{len(elem.value or ())} item(s)>"
    if elem.VR in BINARY_VRS or isinstance(elem.value, (bytes, bytearray, memoryview)):
        return f"<{len(elem.value or b'')} bytes>"
    value = elem.value
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)
    else:
        text = "" if value is None else str(value)
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"


# -- pixels ------------------------------------------------------------------------------------


def pixel_source(ds: Dataset) -> Dataset | None:
    """The input's Pixel Data and what decoding it needs, sharing the value (no copy).

    Masking assigns a new Pixel Data value rather than editing the old one, so the
    value shared here stays the input's.
    """
    pixels = ds._dict.get(_PIXEL_DATA)
    if pixels is None:
        return None
    source = Dataset()
    for tag in _PIXEL_CONTEXT:
        elem = ds._dict.get(tag)
        if elem is not None:
            source._dict[tag] = elem if isinstance(elem, RawDataElement) else copy.deepcopy(elem)
    if isinstance(pixels, RawDataElement):
        source._dict[_PIXEL_DATA] = pixels
    else:
        value = pixels.value if isinstance(pixels.value, (bytes, memoryview)) else bytes(pixels.value)
        source._dict[_PIXEL_DATA] = DataElement(pixels.tag, pixels.VR, value,
                                                is_undefined_length=pixels.is_undefined_length)
    source.file_meta = FileMetaDataset()
    source.file_meta.TransferSyntaxUID = ds.file_meta.TransferSyntaxUID
    return source


def render_views(before: Dataset, after: Dataset, regions: Iterable) -> list[FrameView]:
    """Before/after pictures of the frames that carry masked *regions* (``MaskedRegion``-like).

    A region without a frame applies to every frame and is shown on the first.
    """
    by_frame: dict[int, list[tuple[int, int, int, int]]] = {}
    every: list[tuple[int, int, int, int]] = []
    for region in regions:
        box = (int(region.x1), int(region.y1), int(region.x2), int(region.y2))
        if region.frame is None:
            every.append(box)
        else:
            by_frame.setdefault(int(region.frame), []).append(box)
    wanted = sorted(by_frame)[:MAX_FRAMES] if by_frame else []
    if every and 0 not in wanted:
        wanted = sorted([0, *wanted])[:MAX_FRAMES]
    if not wanted:
        return []
    old_frames = frames_at(before, wanted)
    new_frames = frames_at(after, wanted)
    views: list[FrameView] = []
    crops_left = MAX_CROPS
    for index in wanted:
        if index not in old_frames or index not in new_frames:
            continue
        old = displayable(old_frames[index], before)
        new = shown_after(new_frames[index], after, old_frames[index], old)
        if old.shape[:2] != new.shape[:2]:
            continue
        boxes = tuple(by_frame.get(index, []) + every)
        rows, columns = old.shape[:2]
        crops = [_picture(old, new, region, CROP_WIDTH, CROP_HEIGHT, CROP_ZOOM)
                 for region in crop_regions(boxes, rows, columns)[:crops_left]]
        crops_left -= len(crops)
        views.append(FrameView(frame=index, rows=rows, columns=columns, boxes=boxes,
                               whole=_picture(old, new, (0, 0, columns, rows), THUMBNAIL_SIDE, THUMBNAIL_SIDE,
                                              min(4.0, max(1.0, MIN_SIDE / max(rows, columns)))),
                               crops=tuple(crops)))
    return views


def frames_at(ds: Dataset, wanted: list[int]) -> dict[int, np.ndarray]:
    """Decode frames up to the last wanted one, keeping only the wanted ones."""
    found: dict[int, np.ndarray] = {}
    last = max(wanted)
    for index, frame in enumerate(iter_frames(ds)):
        if index in wanted:
            found[index] = frame
        if index >= last:
            break
    return found


def displayable(frame: np.ndarray, ds: Dataset) -> np.ndarray:
    """8-bit grey as a viewer shows it, or 8-bit RGB as stored."""
    if frame.ndim == 3 and frame.dtype == np.uint8 and frame.shape[2] >= 3:
        return np.ascontiguousarray(frame[..., :3])
    return display_view(frame, ds)


def displayed_like(frame: np.ndarray, ds: Dataset, reference: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """*frame* through the same grey mapping that turned *reference* into *shown*.

    Displaying each frame on its own would stretch the masked one differently
    (the mask's fill value moves its percentiles), and the two would not look
    alike outside the boxes.  The mapping is monotonic, so it is carried over
    value by value, by interpolation between the reference's values.
    """
    if frame.ndim != 2 or shown.ndim != 2 or frame.shape != reference.shape:
        return displayable(frame, ds)
    values, first = np.unique(reference.ravel(), return_index=True)
    levels = shown.ravel()[first].astype(np.float64)
    if values.size == 1:
        return np.full(frame.shape, levels[0], dtype=np.uint8)
    mapped = np.interp(frame.ravel().astype(np.float64), values.astype(np.float64), levels)
    return np.clip(np.round(mapped), 0, 255).astype(np.uint8).reshape(frame.shape)


def shown_after(frame: np.ndarray, ds: Dataset, reference: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """The masked *frame* as *reference* was *shown*: the shown pixels where the two agree, and
    the changed ones (the masked boxes) through the same grey mapping.

    Masking is proven to leave every pixel outside its boxes as it was, so
    only the few changed values need mapping; mapping the whole frame
    (:func:`displayed_like`) costs more than the rest of the picture.
    """
    if frame.ndim != 2 or shown.ndim != 2 or frame.shape != reference.shape:
        return displayable(frame, ds)
    changed = frame != reference
    if not changed.any():
        return shown.copy()
    out = shown.copy()
    values = frame[changed]
    levels = np.empty(values.shape, dtype=np.uint8)
    for value in np.unique(values):  # a mask fills with one value or a few
        where = np.flatnonzero(reference == value)
        if not where.size:  # a value the input never held: map the whole frame instead
            return displayed_like(frame, ds, reference, shown)
        levels[values == value] = shown.ravel()[where[0]]
    out[changed] = levels
    return out


def crop_regions(boxes, rows: int, columns: int) -> list[tuple[int, int, int, int]]:
    """The regions shown enlarged: each box with a margin of half its height (8 pixels at least),
    boxes whose regions overlap shown together (the lines of one block of text, masked line by
    line, are one picture)."""
    regions = []
    for x1, y1, x2, y2 in boxes:
        margin = max(8, (y2 - y1) // 2)
        regions.append([max(0, x1 - margin), max(0, y1 - margin), min(columns, x2 + margin), min(rows, y2 + margin)])
    joined = True
    while joined:
        joined = False
        for i, a in enumerate(regions):
            for j in range(i + 1, len(regions)):
                b = regions[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    regions[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del regions[j]
                    joined = True
                    break
            if joined:
                break
    return [tuple(region) for region in regions]


def _picture(old: np.ndarray, new: np.ndarray, region: tuple[int, int, int, int], max_width: int,
             max_height: int, max_zoom: float) -> Picture:
    x1, y1, x2, y2 = region
    width, height = max(1, x2 - x1), max(1, y2 - y1)
    scale = min(max_zoom, max_width / width, max_height / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    before = _fit(old[y1:y2, x1:x2], size)
    return Picture(region=region, width=size[0], height=size[1], before=pack(before, size),
                   after=pack(_fit(new[y1:y2, x1:x2], size), size, base=before))


def png(image: np.ndarray, size: tuple[int, int] | None = None) -> bytes:
    """An 8-bit grey or RGB array as PNG bytes, resized to *size* (width, height) if given.

    Downscaling averages (legible, no aliasing); enlarging repeats pixels, so
    what a box covered is shown as it is, not smoothed.
    """
    picture = Image.fromarray(np.ascontiguousarray(image))
    if size is not None and size != picture.size:
        enlarge = size[0] > picture.size[0]
        picture = picture.resize(size, Image.Resampling.NEAREST if enlarge else Image.Resampling.BOX)
    buffer = io.BytesIO()
    # Level 1: four times faster than zlib's default, for about 20% more bytes.
    picture.save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return buffer.getvalue()


# -- packed pictures ---------------------------------------------------------------------------
#
# What the core keeps of a picture: its 8-bit pixels, reduced to the size shown but never
# enlarged (enlarging repeats pixels, which is done when the PNG is made), compressed with
# zlib's fastest level; an after picture as its difference from the before one, which is
# zero outside the masked boxes and so costs next to nothing. A PNG is made on demand.

_PACKED = b"MVPX1"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_HEADER = struct.Struct("<5sBHHBHH")  # magic, is a difference, rows, columns, samples, shown width, height


def _fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """*image* reduced to *size* (width, height) when it is larger; otherwise as it is."""
    height, width = image.shape[:2]
    if size[0] >= width and size[1] >= height:
        return np.ascontiguousarray(image)
    reduced = Image.fromarray(np.ascontiguousarray(image)).resize(size, Image.Resampling.BOX)
    return np.asarray(reduced)


def pack(image: np.ndarray, size: tuple[int, int], *, base: np.ndarray | None = None) -> bytes:
    """*image* (8-bit grey or RGB, at most *size*) kept compactly, to be shown at *size*.

    With *base* (the before picture, same shape) only the difference is kept.
    """
    image = np.ascontiguousarray(image, dtype=np.uint8)
    difference = base is not None and base.shape == image.shape
    data = (image - base) if difference else image  # uint8 arithmetic wraps: exact both ways
    samples = 1 if image.ndim == 2 else int(image.shape[2])
    header = _HEADER.pack(_PACKED, int(difference), image.shape[0], image.shape[1], samples, *size)
    return header + zlib.compress(np.ascontiguousarray(data).tobytes(), 1)


def unpack(blob: bytes, base: bytes | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """The pixels and shown size of a packed picture (*base*: the before picture of a difference)."""
    magic, difference, rows, columns, samples, width, height = _HEADER.unpack_from(blob)
    if magic != _PACKED:
        raise ValueError("not a packed picture")
    data = np.frombuffer(zlib.decompress(blob[_HEADER.size:]), dtype=np.uint8)
    image = data.reshape((rows, columns) if samples == 1 else (rows, columns, samples))
    if difference:
        if base is None:
            raise ValueError("a difference picture needs its before picture")
        image = image + unpack(base)[0]
    return image, (width, height)


def as_png(blob: bytes, base: bytes | None = None) -> bytes:
    """A stored picture as PNG bytes: packed pixels are encoded (and enlarged) now; a PNG (what
    workspaces of earlier versions hold) is returned as it is."""
    if blob[:len(_PNG_SIGNATURE)] == _PNG_SIGNATURE:
        return blob
    image, size = unpack(blob, base)
    return png(image, size)


__all__ = ["FrameView", "HeaderChange", "HeaderSnapshot", "Picture", "ReviewMaterial", "as_png", "pack",
           "pixel_source", "png", "render_views", "review_material", "unpack"]
