"""Finding text burned into pixel data: where it is, not yet what to do about it.

Every frame is decoded once and screened (:mod:`medveil.pixels.screen`), a
cheap classical test that names the regions where text could be; a frame
with no candidate region is not read at all, which is most CT and MR slices.
Each candidate region is cut out, stretched to its own range, enlarged by
how small its glyphs are and read in both polarities by the recognisers;
only crops are ever enlarged, never whole frames. A crop identical to one
read before (same place, same bytes: the overlay every slice of a series
repeats) reuses that reading (:class:`ReadingCache`). What the engines read
is kept only in memory: it is PHI.

With the screen ``off`` the whole frame is the one region, read in tiles:
slow, and the old behaviour.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from pydicom import Dataset

from medveil.pixels.frames import frame_digest, iter_frames
from medveil.pixels.ocr import OcrEngine, Word, available_engines, get_engine, to_uint8
from medveil.pixels.screen import Candidate, screen_frame

#: Tiles for large images: engines scale big inputs down before detecting,
#: so a 3000-pixel radiograph would lose its 15-pixel labels.
TILE_SIZE = 1024
TILE_OVERLAP = 64

#: Images smaller than this (in rows or columns) cannot hold a legible word; they are not read.
MIN_SIDE = 16

#: Reading both polarities doubles the cost; above this many pixels per view
#: (after enlarging) only the dark-on-light polarity that engines prefer is read.
BOTH_POLARITIES_MAX_PIXELS = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TextBox:
    """Text found in frame ``frame`` (0-based), in the frame's own pixel coordinates.

    ``x2`` and ``y2`` are exclusive. ``text`` is PHI: keep it in memory, never log it.
    """

    frame: int
    x1: int
    y1: int
    x2: int
    y2: int
    engine: str
    confidence: float
    text: str

    def __repr__(self) -> str:  # the text stays out of logs and tracebacks
        return (f"TextBox(frame={self.frame}, x1={self.x1}, y1={self.y1}, x2={self.x2}, "
                f"y2={self.y2}, engine={self.engine!r}, confidence={self.confidence:.2f})")

    @property
    def area(self) -> int:
        return max(0, self.x2 - self.x1) * max(0, self.y2 - self.y1)


#: Decoded frames are kept for the masking step's check while they fit in this many bytes.
KEEP_FRAMES_BYTES = 256 * 1024 * 1024
#: Glyphs are enlarged towards this height: recognisers read 20-30 pixel glyphs best.
GLYPH_TARGET = 24
#: The most a candidate region is enlarged.
MAX_ENLARGE = 4
#: Glyphs this tall are read at their own size: the detector finds them as they are, the
#: recogniser resizes every line to its own height anyway, and enlarging a region by 2 costs
#: the detector 4 times as much (most such regions on CT are anatomy, not text).
NATIVE_GLYPH = 14
#: Frames no larger than this (rows and columns) have their candidate regions enlarged the most.
SMALL_FRAME = 320


@dataclass
class Scan:
    """What reading an object's frames found, and what it cost (counts, never times)."""

    boxes: list[TextBox] = field(default_factory=list)
    #: The decoded frames, kept for masking when they fit (see KEEP_FRAMES_BYTES); None otherwise.
    frames: list[np.ndarray] | None = None
    frames_screened: int = 0
    candidates: int = 0
    crops_read: int = 0
    crops_reused: int = 0
    #: The darkest and brightest stored value of any greyscale frame (masking fills with one of them).
    darkest: float | None = None
    brightest: float | None = None


class ReadingCache:
    """Readings of crops already read, by place and bytes, so a series' repeated overlay is read once.

    A reading is what the engines saw in a crop (boxes and text), a pure
    function of the crop's pixels, its place and the reading settings: which
    of it is PHI is decided afterwards, for each file with its own
    identifiers, so a reading may be shared between files while a decision
    never is. Entries hold PHI, in memory only, in one worker process; the
    oldest are dropped beyond ``capacity``.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[bytes, tuple[TextBox, ...]] = OrderedDict()

    def get(self, key: bytes) -> tuple[TextBox, ...] | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: bytes, boxes: Sequence[TextBox]) -> None:
        self._entries[key] = tuple(boxes)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


#: This process's cache (each worker process has its own).
SERIES_CACHE = ReadingCache()


def detect_text(
    ds: Dataset,
    *,
    engines: Sequence[str | OcrEngine] | str | None = None,
    min_confidence: float = 0.5,
    upscale_small: bool = True,
    both_polarities: bool | None = None,
    screen: str = "recall",
    cache: ReadingCache | None = None,
) -> list[TextBox]:
    """Boxes around text burned into any frame of ``ds``, overlapping boxes merged.

    ``engines``: names (``ppocr``, ``rapidocr``, ``tesseract``, ``auto`` for
    every installed one) or engine objects; None means ``ppocr``.
    ``min_confidence`` is on a 0-1 scale for every engine (Tesseract's 0-100
    is rescaled). ``both_polarities``: None reads the inverted crop as well
    when it is small enough to be cheap. ``screen``: ``recall`` (default),
    ``balanced`` or ``off`` (read every frame whole). ``cache``: where
    readings are shared (default: this process's :data:`SERIES_CACHE`).
    """
    return scan_frames(ds, engines=engines, min_confidence=min_confidence, upscale_small=upscale_small,
                       both_polarities=both_polarities, screen=screen, cache=cache).boxes


def scan_frames(
    ds: Dataset,
    *,
    engines: Sequence[str | OcrEngine] | str | None = None,
    min_confidence: float = 0.5,
    upscale_small: bool = True,
    both_polarities: bool | None = None,
    screen: str = "recall",
    cache: ReadingCache | None = None,
    keep_frames: bool = False,
) -> Scan:
    """Decode each frame once, screen it, read its candidate regions; see :func:`detect_text`.

    ``keep_frames`` keeps the decoded frames in the result (when they fit in
    :data:`KEEP_FRAMES_BYTES`) so masking can check its work without decoding
    the input again.
    """
    readers = _resolve_engines(engines)
    cache = SERIES_CACHE if cache is None else cache
    scan = Scan(frames=[] if keep_frames else None)
    if min(int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)) < MIN_SIDE:
        scan.frames = None
        return scan  # nothing legible fits: a word needs more pixels than the image has
    # Engines are named and identified: a site may register another engine under a name already used.
    settings = (tuple((engine.name, id(engine)) for engine in readers), min_confidence, upscale_small,
                both_polarities, screen)
    seen: dict[bytes, list[TextBox]] = {}
    multi_frame = _frame_count(ds) > 1
    kept = 0
    for index, frame in enumerate(iter_frames(ds)):
        scan.frames_screened += 1
        if scan.frames is not None:
            kept += frame.nbytes
            scan.frames = scan.frames + [frame] if kept <= KEEP_FRAMES_BYTES else None
        if frame.ndim == 2 and frame.size:
            low, high = _value_range(frame)
            scan.darkest = low if scan.darkest is None else min(scan.darkest, low)
            scan.brightest = high if scan.brightest is None else max(scan.brightest, high)
        # Identical frames (a cine loop's still) are read once; one frame needs no digest.
        digest = frame_digest(frame) if multi_frame else b""
        if digest not in seen:
            seen[digest] = _read_frame(frame, readers, settings, cache, scan, min_confidence=min_confidence,
                                       upscale_small=upscale_small, both_polarities=both_polarities,
                                       screen=screen)
        scan.boxes.extend(replace(box, frame=index) for box in seen[digest])
    return scan


def _value_range(frame: np.ndarray) -> tuple[float, float]:
    """The lowest and highest value of a greyscale frame, in one pass where OpenCV can."""
    if frame.dtype in (np.uint8, np.int8, np.uint16, np.int16, np.float32, np.float64):
        try:
            import cv2
        except ImportError:
            pass
        else:
            low, high = cv2.minMaxLoc(np.ascontiguousarray(frame))[:2]
            return float(low), float(high)
    return float(frame.min()), float(frame.max())


def _frame_count(ds: Dataset) -> int:
    try:
        return int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        return 2  # unreadable: treat as many, which only costs a digest per frame


def _read_frame(frame: np.ndarray, readers: Sequence[OcrEngine], settings: tuple, cache: ReadingCache,
                scan: Scan, *, min_confidence: float, upscale_small: bool, both_polarities: bool | None,
                screen: str) -> list[TextBox]:
    """Merged boxes for one frame (numbered 0): its candidate regions read, or reused."""
    candidates = screen_frame(frame, screen)
    scan.candidates += len(candidates)
    found: list[TextBox] = []
    pending: list[tuple[bytes, Candidate, list[tuple[np.ndarray, int]]]] = []
    for candidate in candidates:
        crop = np.ascontiguousarray(frame[candidate.y1:candidate.y2, candidate.x1:candidate.x2])
        key = _crop_key(settings, candidate, crop)
        reading = cache.get(key)
        if reading is not None:
            scan.crops_reused += 1
            found.extend(reading)
            continue
        scan.crops_read += 1
        pending.append((key, candidate, _crop_views(crop, candidate, upscale_small, both_polarities,
                                                    small_frame=max(frame.shape[:2]) <= SMALL_FRAME)))
    for (key, candidate, _views), boxes in zip(pending, _read_crops(pending, readers, min_confidence),
                                               strict=True):
        height, width = frame.shape[:2]
        placed = [box for box in (_clip(replace(b, x1=b.x1 + candidate.x1, y1=b.y1 + candidate.y1,
                                                  x2=b.x2 + candidate.x1, y2=b.y2 + candidate.y1), width, height)
                                  for b in boxes) if box.area > 0]
        cache.put(key, placed)
        found.extend(placed)
    return join_lines(found)


def join_lines(boxes: list[TextBox]) -> list[TextBox]:
    """Words of one line joined into one box where the gap between them is under two line heights
    (the grouping :func:`medveil.pixels.select.group_lines` judges lines by).

    Recognisers split a line at spaces unevenly; a name split in two leaves
    the gap between its halves unmasked, and masking a gap hides nothing
    clinical. Boxes join when they overlap vertically by half the smaller
    height; boxes of two lines that merely touch (a detector's boxes reach a
    pixel or two into the next line) stay apart, so each line can be masked
    on its own.
    """
    result = merge_boxes(boxes, same_line=True)
    joined = True
    while joined:
        joined = False
        result.sort(key=lambda b: (b.frame, b.x1))
        for i, left in enumerate(result):
            for j in range(i + 1, len(result)):
                right = result[j]
                height = min(left.y2 - left.y1, right.y2 - right.y1)
                overlap = min(left.y2, right.y2) - max(left.y1, right.y1)
                gap = right.x1 - left.x2
                if (right.frame == left.frame and height > 0 and overlap >= height / 2
                        and gap <= 2 * max(left.y2 - left.y1, right.y2 - right.y1)):
                    result[i] = _union([left, right])
                    del result[j]
                    joined = True
                    break
            if joined:
                break
    return result


def _crop_key(settings: tuple, candidate: Candidate, crop: np.ndarray) -> bytes:
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr((settings, candidate.x1, candidate.y1, candidate.x2, candidate.y2, candidate.glyph,
                        crop.shape, crop.dtype.str)).encode())
    digest.update(crop.tobytes())
    return digest.digest()


def _crop_views(crop: np.ndarray, candidate: Candidate, upscale_small: bool,
                both_polarities: bool | None, *, small_frame: bool = False) -> list[tuple[np.ndarray, int]]:
    """The 8-bit images a crop is read in, each with its enlargement factor.

    The crop is stretched over its own range (text drawn at the top of a
    16-bit range reaches full contrast whatever the window), turned dark on
    light, enlarged until its glyphs are about :data:`GLYPH_TARGET` pixels
    tall, and offered inverted too where that is cheap. A whole frame (no
    glyph height known) is enlarged by its size, at two factors when small.
    """
    grey = _dark_on_light(to_uint8(crop))
    if not upscale_small:
        factors: tuple[int, ...] = (1,)
    elif candidate.glyph:
        # On a small frame (a 256-pixel MR slice) labels are 4 to 6 pixels tall whatever strokes
        # of anatomy the region also holds, and enlarging its small crops is cheap.
        floor = MAX_ENLARGE if small_frame else 1
        wanted = 1 if candidate.glyph >= NATIVE_GLYPH else round(GLYPH_TARGET / candidate.glyph)
        factors = (max(floor, min(MAX_ENLARGE, wanted)),)
    else:
        factors = upscale_factors(grey.shape)
    views = []
    for factor in factors:
        image = _enlarge(grey, factor)
        views.append((image, factor))
        cheap = image.size <= BOTH_POLARITIES_MAX_PIXELS
        if both_polarities or (both_polarities is None and cheap and _ambiguous(grey)):
            views.append((255 - image, factor))
    return views


def _ambiguous(grey: np.ndarray) -> bool:
    """Whether a crop's polarity is in doubt: its background (median) is neither dark nor light.

    A crop stretched over its own range has text at one end and background
    near the other; where the median sits mid-range (text over anatomy, a
    grey band) either polarity may be the text, and both are read.
    """
    return 64 <= float(np.median(grey)) <= 191


def _read_crops(pending: list, readers: Sequence[OcrEngine], min_confidence: float) -> list[list[TextBox]]:
    """Each pending crop's boxes in crop coordinates; engines that batch get every crop at once."""
    results: list[list[TextBox]] = [[] for _ in pending]
    for engine in readers:
        batched = getattr(engine, "read_many", None)
        if batched is not None:
            jobs = [(number, image, factor, tile) for number, (_key, _candidate, views) in enumerate(pending)
                    for image, factor in views for tile in tiles(*image.shape[:2])]
            words = batched([np.ascontiguousarray(image[y0:y1, x0:x1])
                             for _number, image, _factor, (x0, y0, x1, y1) in jobs]) if jobs else []
            for (number, _image, factor, (x0, y0, _x1, _y1)), read in zip(jobs, words, strict=True):
                results[number].extend(_boxes(engine.name, read, factor, x0, y0, min_confidence))
            continue
        for number, (_key, _candidate, views) in enumerate(pending):
            for image, factor in views:
                results[number].extend(_read_tiled(image, engine, factor, min_confidence))
    return results


def _boxes(engine: str, words: Iterable[Word], factor: int, x0: int, y0: int,
           min_confidence: float) -> list[TextBox]:
    boxes = []
    for word in words:
        confidence = _normalised_confidence(engine, word.confidence)
        if confidence < min_confidence or not any(ch.isalnum() for ch in word.text):
            continue
        bx1, by1, bx2, by2 = word.box
        boxes.append(TextBox(
            frame=0,
            x1=int(np.floor((bx1 + x0) / factor)),
            y1=int(np.floor((by1 + y0) / factor)),
            x2=int(np.ceil((bx2 + x0) / factor)),
            y2=int(np.ceil((by2 + y0) / factor)),
            engine=engine,
            confidence=confidence,
            text=word.text,
        ))
    return boxes


def _resolve_engines(engines: Sequence[str | OcrEngine] | str | None) -> list[OcrEngine]:
    if engines is None:
        return [get_engine("ppocr")]
    if isinstance(engines, str):
        return available_engines(engines)
    readers: list[OcrEngine] = []
    for engine in engines:
        readers.extend(available_engines(engine) if isinstance(engine, str) else [engine])
    return readers


def detect_in_image(
    image: np.ndarray,
    *,
    engines: Sequence[str | OcrEngine] | str | None = None,
    min_confidence: float = 0.5,
) -> list[TextBox]:
    """Merged text boxes in one 8-bit greyscale image (an overlay plane, an icon).

    The image is enlarged when small and read in both polarities; boxes are
    in the image's own coordinates, frame 0.
    """
    readers = _resolve_engines(engines)
    factor = upscale_factor(image.shape)
    enlarged = _enlarge(np.ascontiguousarray(image, dtype=np.uint8), factor)
    found: list[TextBox] = []
    for candidate in (_dark_on_light(enlarged), 255 - _dark_on_light(enlarged)):
        for engine in readers:
            found.extend(_read_tiled(candidate, engine, factor, min_confidence))
    height, width = image.shape[:2]
    return merge_boxes([box for box in (_clip(b, width, height) for b in found) if box.area > 0])


def upscale_factor(shape: tuple[int, ...]) -> int:
    """How much to enlarge a view so its text is tall enough to read.

    Overlays on 256- and 512-pixel images are drawn 7-10 pixels tall; engines
    read glyphs of 20 pixels or more reliably.
    """
    longest = max(shape[:2])
    if longest <= 320:
        return 3
    if longest <= 640:
        return 2
    return 1


def upscale_factors(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Every enlargement a view is read at: small images twice, at 3x and 5x.

    On a 256-pixel image labels are 6 pixels tall; which lines an engine reads
    at 3x and at 5x differs, and small images are cheap to read twice.
    """
    factor = upscale_factor(shape)
    return (3, 5) if factor == 3 else (factor,)


def tiles(height: int, width: int, size: int = TILE_SIZE,
          overlap: int = TILE_OVERLAP) -> list[tuple[int, int, int, int]]:
    """(x1, y1, x2, y2) tiles covering the image, neighbours overlapping by ``overlap``.

    The overlap lets a word cut by one tile's edge be read whole in the next,
    as long as it is shorter than the overlap; longer lines are read in pieces
    whose boxes merge back together.
    """
    def starts(length: int) -> list[int]:
        if length <= size:
            return [0]
        step = size - overlap
        positions = list(range(0, length - size, step))
        positions.append(length - size)
        return positions

    return [(x, y, min(x + size, width), min(y + size, height))
            for y in starts(height) for x in starts(width)]


def _read_tiled(image: np.ndarray, engine: OcrEngine, factor: int, min_confidence: float) -> list[TextBox]:
    boxes = []
    height, width = image.shape[:2]
    for x0, y0, x1, y1 in tiles(height, width):
        boxes.extend(_boxes(engine.name, engine.read(np.ascontiguousarray(image[y0:y1, x0:x1])), factor, x0, y0,
                            min_confidence))
    return boxes


def _normalised_confidence(engine: str, confidence: float) -> float:
    return confidence / 100.0 if engine == "tesseract" else float(confidence)


def _enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return image
    from PIL import Image

    height, width = image.shape[:2]
    # Bicubic: smooth glyph edges read better than nearest-neighbour blocks.
    return np.asarray(Image.fromarray(image).resize((width * factor, height * factor), Image.Resampling.BICUBIC))


def _dark_on_light(image: np.ndarray) -> np.ndarray:
    """Engines are trained on dark print on paper; most medical images are the reverse."""
    return 255 - image if float(np.median(image)) < 128 else image


def _clip(box: TextBox, width: int, height: int) -> TextBox:
    return replace(box, x1=max(0, box.x1), y1=max(0, box.y1), x2=min(width, box.x2), y2=min(height, box.y2))


def merge_boxes(boxes: Iterable[TextBox], *, same_line: bool = False) -> list[TextBox]:
    """Overlapping boxes of one frame joined into their union, until none overlap.

    The same word is found in several views, polarities, tiles and engines;
    one box per place is what masking needs. Texts of merged boxes are joined
    in reading order, engines by name. With *same_line*, overlapping boxes
    join only when they also share a line (overlap vertically by half the
    smaller height).
    """
    groups: list[list[TextBox]] = [[box] for box in boxes]
    merged = True
    while merged:
        merged = False
        result: list[list[TextBox]] = []
        for group in groups:
            bounds = _bounds(group)
            for other in result:
                if other[0].frame == group[0].frame and _overlaps(bounds, _bounds(other)) \
                        and (not same_line or _share_line(bounds, _bounds(other))):
                    other.extend(group)
                    merged = True
                    break
            else:
                result.append(group)
        groups = result
    return [_union(group) for group in groups]


def _bounds(group: list[TextBox]) -> tuple[int, int, int, int]:
    return (min(b.x1 for b in group), min(b.y1 for b in group),
            max(b.x2 for b in group), max(b.y2 for b in group))


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _share_line(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    height = min(a[3] - a[1], b[3] - b[1])
    return height > 0 and min(a[3], b[3]) - max(a[1], b[1]) >= height / 2


def _union(group: list[TextBox]) -> TextBox:
    x1, y1, x2, y2 = _bounds(group)
    texts: list[str] = []
    for box in sorted(group, key=lambda b: (b.y1, b.x1)):
        if box.text not in texts:
            texts.append(box.text)
    return TextBox(
        frame=group[0].frame, x1=x1, y1=y1, x2=x2, y2=y2,
        engine="+".join(sorted({b.engine for b in group})),
        confidence=max(b.confidence for b in group),
        text=" ".join(texts),
    )
